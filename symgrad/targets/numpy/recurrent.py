"""NumPy target for recurrent layers: the derived cell as two functions, the time loop around them,
and the statements the plan (``symgrad.ir.recurrent``) moves out of the loop."""
from __future__ import annotations

import re

from ...ir import nodes as ir
from ...ir.recurrent import plan, reads, time_einsum
from .layer import NumpyLayerEmitter
from ...codegen.printers import pycode


def batched_matmul(e: NumpyLayerEmitter, s: ir.Einsum, per_step: set, summed: bool) -> str | None:
    """``s`` over values stacked in time, as one 2-D matrix product (time merged into the leading
    axis with ``_flat``), or None. NumPy's (T, N, K) @ (K, M) loops over T: 20x slower here."""
    if len(s.operands) != 2:
        return None
    a, b = s.operands
    code = e.einsum(s)
    lhs, out = s.subscripts.split("->")
    sa, sb = lhs.split(",")
    if not summed and a in per_step and b not in per_step and code in (f"{a} @ {b}", f"{a} @ {b}.T"):
        return f"({_flat(code, a)}).reshape({a}.shape[:-1] + ({pycode(s.shape[-1])},))"
    if summed and a in per_step and b in per_step and sa[0] == sb[0] and sa[0] not in out:
        return _flat(_flat(code, a), b)
    return None


def _flat(code: str, name: str) -> str:
    return re.sub(rf"(?<![\w(]){re.escape(name)}\b", f"_flat({name})", code, count=1)


def _post_lines(e: NumpyLayerEmitter, p, per_step: set) -> list[str]:
    lines = []
    for s in p.post:
        summed = s.out in p.post_summed
        if isinstance(s, ir.Einsum):
            a, b = s.operands
            code = batched_matmul(e, s, per_step, summed)
            if code is None:
                code = f"np.einsum({time_einsum(s, per_step, summed)!r}, {a}, {b}, optimize=True)"
            lines.append(f"{s.out} = {code}")
        elif isinstance(s, ir.Reduction):
            lines += [f"{t.name} = {pycode(x)}" for t, x in s.temps]
            axes = (0,) + tuple(a + 1 for a in s.axes)
            lines.append(f"{s.out} = np.sum({pycode(s.expr)}, axis={axes})")
        else:
            lines += e.statement(s)
    return lines


def _owned_inputs(spec, k, per_step, params, p) -> set:
    """The user inputs that backward reads (through the per-step saved values, whose first state
    is the initial one, or the cache): forward converts them through ``_owned``, so a caller's
    in-place edit between forward and backward cannot change the gradient."""
    saved = set(k.backward.saved)
    owned = {n for n in saved if n in spec.sequence or n in params}
    owned |= {f"{n}0" for n in saved if n in spec.state}
    owned |= {n for n in spec.sequence if n in per_step}
    owned |= {n for st in p.post for n in reads(st)} & params
    return owned


def context(spec) -> dict:
    p = plan(spec)
    k = p.kernel
    params = {a.name for a in k.inputs if a.name not in spec.state and a.name not in spec.sequence}
    e = NumpyLayerEmitter(k)
    user = [ir.Arg(i.name, i.shape, i.kind, i.bound, i.differentiable) for i in spec.inputs]
    binds, checks, order = e.validation(user)
    cell_args = [a.name for a in k.inputs] + p.hoisted
    call = []  # the cell's arguments inside the forward loop
    for a in k.inputs:
        if a.name in spec.sequence:
            call.append(f"{a.name}[t]")
        elif a.name in spec.state:
            call.append(f"{a.name}_t")
        else:
            call.append(a.name)
    call += [f"{h}[t]" for h in p.hoisted]
    grads = [a for a in k.inputs if a.grad]
    role = {a.name: ("sequence" if a.name in spec.sequence else "state" if a.name in spec.state else "param")
            for a in grads}
    ret_of = dict(zip(k.backward.returns, [a.name for a in grads]))
    loop_grads = [(ret_of[r], role[ret_of[r]]) for r in p.loop_returns]
    post_grads = {ret_of[s.out]: s.out for s in p.post}
    saved_index = {n: i for i, n in enumerate(k.backward.saved)}
    stacked = []  # per-step values read after the loop, and where they come from
    for n in p.post_inputs:
        if n in spec.sequence:
            stacked.append((n, f'cache["{n}"]'))
        elif n in saved_index:
            shape = e.shape(k.backward.shapes[n])
            stacked.append((n, f"_stack([s[{saved_index[n]}] for s in steps], {shape}, dtype)"))
        else:
            stacked.append((n, f"{n}_steps"))
    shapes = {**k.backward.shapes, **k.forward.shapes}
    per_step = set(p.post_inputs)
    pre = []
    batched = set(spec.sequence) | {s.out for s in p.pre}
    for st in p.pre:
        code = batched_matmul(e, st, batched, False) if isinstance(st, ir.Einsum) else None
        pre += [f"{st.out} = {code}"] if code else e.statement(st)
    fwd = [l for s in p.loop for l in e.statement(s)]
    bwd = [l for s in p.bloop for l in e.statement(s)]
    post = _post_lines(e, p, per_step)
    outs = {o.name: s for o, s in zip(k.outputs, spec.state)}  # cell output name -> state name
    return dict(
        spec=spec, k=k, p=p, e=e, binds=binds, checks=checks, dims=[str(d) for d in order],
        cell_args=cell_args, call=call, loop_grads=loop_grads, post_grads=post_grads,
        grad_order=[a.name for a in grads], role=role, pre=pre, fwd=fwd, bwd=bwd, post=post, outs=outs,
        stacked=stacked, loop_values=[(n, e.shape(shapes[n])) for n in p.loop_values],
        fwd_eqs=[e.equation(s) for s in k.forward.body],
        bwd_eqs=[e.equation(s) for s in k.backward.body],
        pre_eqs=[e.equation(s) for s in p.pre], post_eqs=[e.equation(s) for s in p.post],
        user=user, real_inputs=[a for a in user if a.kind == "real"],
        uses_sigmoid=any("_sigmoid(" in l for l in pre + fwd + bwd + post),
        hypers=[n for n, _ in k.hypers],
        cell_dims=[str(d) for d in spec.cell.dims],
        owned=_owned_inputs(spec, k, per_step, params, p),
        seq_cached=[n for n in spec.sequence if n in per_step],
        post_params=sorted({n for st in p.post for n in reads(st)} & params),
        step_shapes=[e.shape(k.backward.shapes[n]) for n in k.backward.saved],
        cached_shapes=[(n, f"({spec.time},) + " + e.shape(k.backward.shapes.get(n, k.forward.shapes.get(n))))
                       for n in spec.sequence if n in per_step]
        + [(n, e.shape(shapes[n])) for n in sorted({n for st in p.post for n in reads(st)} & params)],
    )
