"""Planning a recurrent kernel: which statements of the derived cell run inside the time loop.

A statement of the cell's forward pass that depends only on the sequence inputs and the
parameters (``x_t W_ih^T``) is computed for every step at once before the loop: one large
contraction instead of T small ones. In the backward pass, the gradients of the parameters
(``dW = sum_t dgates_t^T x_t``) and of the sequence inputs (``dx_t = dgates_t W_ih``) are not needed
to carry the recurrence, so they are computed after the loop from the per-step values stacked
over time. Only what carries the state stays in the loop. The plan is target-neutral; a target may
keep a sequence input's product in the loop (``sequence_products_in_loop``: the C target does, the
product then reads the step's values while they are in cache).
"""
from __future__ import annotations

from dataclasses import dataclass, field


from . import nodes as ir
from .nodes import reads
from .lower import lower


@dataclass
class RecurrentPlan:
    kernel: ir.Kernel
    pre: list = field(default_factory=list)        # forward statements batched over T before the loop
    loop: list = field(default_factory=list)       # forward statements inside the loop
    hoisted: list = field(default_factory=list)    # names computed in ``pre`` and used inside the loop
    bloop: list = field(default_factory=list)      # backward statements inside the reversed loop
    post: list = field(default_factory=list)       # backward statements after the loop
    post_inputs: list = field(default_factory=list)  # per-step values the post statements read
    post_summed: set = field(default_factory=set)  # post outputs summed over time (parameter gradients)
    loop_returns: list = field(default_factory=list)  # backward-loop results: state grads, grads accumulated
    loop_values: list = field(default_factory=list)   # per-step values the loop hands to ``post``


def _matmul_left(s: ir.Einsum, per_step: set, params: set) -> bool:
    """``a @ B`` with ``a`` per step on the left, untransposed, and ``B`` a parameter."""
    if len(s.operands) != 2:
        return False
    a, b = s.operands
    lhs, out = s.subscripts.split("->")
    sa, sb = lhs.split(",")
    return (a in per_step and b in params and len(sb) == 2 and sa[:-1] == out[:-1] and sa[-1] in sb
            and out[-1] in sb)


def plan(spec, sequence_products_in_loop: bool = False) -> RecurrentPlan:
    """``sequence_products_in_loop``: a sequence input's gradient that is one product of a per-step
    value and a parameter (``dx_t = dgates_t W_ih``) stays in the loop, on the step's rows while they
    are in cache, instead of one product over the stacked steps after it (the C target's choice)."""
    k = lower(spec.cell)
    p = RecurrentPlan(k)
    params = {a.name for a in k.inputs if a.name not in spec.state and a.name not in spec.sequence}
    scalars = {str(d) for d in spec.cell.dims} | {n for n, _ in k.hypers}
    batched = set(spec.sequence)  # values known for every step before the loop
    for s in k.forward.body:
        r = reads(s) - scalars
        ok = r <= batched | params and (
            isinstance(s, (ir.Elementwise, ir.Slice)) or
            (isinstance(s, ir.Einsum) and _matmul_left(s, batched, params)))
        if ok and r & batched and s.out not in {o.name for o in k.outputs}:
            p.pre.append(s)
            batched.add(s.out)
        else:
            p.loop.append(s)
    p.hoisted = [s.out for s in p.pre if any(s.out in reads(t) for t in p.loop) or s.out in k.forward.saved]

    # backward: what carries the state must stay in the loop
    roles = {}
    grads = [a for a in k.inputs if a.grad]
    for a, r in zip(grads, k.backward.returns):
        roles[r] = "sequence" if a.name in spec.sequence else "state" if a.name in spec.state else "param"
    body = k.backward.body
    producer = {s.out: s for s in body}
    need = set()
    stack = [r for r, role in roles.items() if role == "state"]
    while stack:
        n = stack.pop()
        if n in need or n not in producer:
            continue
        need.add(n)
        stack.extend(reads(producer[n]))
    per_step = set(k.backward.saved) | {g.name for g in k.grad_outputs}
    post_out = set()
    for s in body:
        r = reads(s) - scalars
        movable = (s.out not in need and s.out in roles and roles[s.out] in ("param", "sequence")
                   and (isinstance(s, ir.Einsum) or (isinstance(s, ir.Reduction) and not s.keepdims
                                                     and s.kind == "sum" and roles[s.out] == "param")))
        if (movable and sequence_products_in_loop and roles[s.out] == "sequence" and isinstance(s, ir.Einsum)
                and _matmul_left(s, per_step, params)):
            movable = False
        copy_of_post = (isinstance(s, ir.Elementwise) and s.out in roles and r and r <= post_out
                        and roles[s.out] == "param")
        if movable or copy_of_post:
            p.post.append(s)
            post_out.add(s.out)
            if roles[s.out] == "param":
                p.post_summed.add(s.out)
        else:
            p.bloop.append(s)
            per_step.add(s.out)
    used = set()
    for s in p.post:
        used |= reads(s) - post_out - params - scalars
    p.post_inputs = [n for n in sorted(used) if n in per_step]
    p.loop_returns = [r for r in k.backward.returns if r not in post_out]
    p.loop_values = [n for n in p.post_inputs if n not in k.backward.saved]
    return p


def time_einsum(s: ir.Einsum, per_step: set, summed: bool) -> str:
    """The subscripts of ``s`` with a time index on its per-step operands (and its output unless
    the result is summed over time)."""
    lhs, out = s.subscripts.split("->")
    letters = set(s.subscripts) - {",", "-", ">"}
    t = next(c for c in "tuvwxyzabcdefghijklmnopqrs" if c not in letters)
    ins = [(t + x if o in per_step else x) for x, o in zip(lhs.split(","), s.operands)]
    return ",".join(ins) + "->" + ("" if summed else t) + out


__all__ = ["RecurrentPlan", "plan", "reads", "time_einsum"]
