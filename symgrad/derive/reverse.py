"""Reverse-mode differentiation of a spec graph.

Every elementwise local derivative is ``sympy.diff`` of the node's formula; the structural nodes use
their exact transpose rules (the VJP of an einsum is an einsum, of a sum a broadcast, of a max a
mask of the arg-max). The result is another graph of the same node kinds, which the lowering turns
into kernels, and a list of ``Step`` records from which ``explain`` prints the chain rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..errors import SpecError
from ..spec import tensor as T
from ..spec.window import Fold, Unfold
from .reductions import ReductionTable, simplify_sum
from .stable import in_terms_of_output


@dataclass
class Step:
    """One application of the chain rule: ``contribution = upstream * local`` for ``node -> arg``."""

    node: T.Node
    arg: T.Node
    upstream: T.Node
    local: sp.Expr | None        # d node / d arg as SymPy computed it (elementwise nodes)
    local_used: sp.Expr | None   # after rewriting in terms of the output, if that applied
    contribution: T.Node
    rule: str                    # "elementwise" | "einsum" | "sum" | "max" | "expand" | "slice" | "unfold" | "fold"
    why: str = "output"          # why local_used differs from local: "output" | "indicator"


@dataclass
class Derivation:
    spec: object
    forward_nodes: list
    grad_inputs: list            # upstream gradients, one per output (dy, or dloss)
    grads: dict                  # input name -> gradient node
    adjoints: dict = field(default_factory=dict)   # forward node id -> total adjoint node
    steps: list = field(default_factory=list)


def derive(spec) -> Derivation:
    outs = spec.outputs
    fwd = T.walk(outs)
    grad_inputs = []
    adj: dict[int, list[T.Node]] = {}
    for o in outs:
        g = T.Input("d" + o.name, o.shape)
        g.upstream_of = o
        grad_inputs.append(g)
        adj.setdefault(o.id, []).append(g)

    needs = _needs_grad(fwd)
    d = Derivation(spec, fwd, grad_inputs, {})
    table = ReductionTable(fwd + grad_inputs)
    for node in reversed(fwd):
        contribs = adj.get(node.id)
        if not contribs:
            continue
        total = _accumulate(contribs, node.shape)
        d.adjoints[node.id] = total
        table.add(total)
        for arg, contrib, step in _vjp(node, total, needs, table):
            adj.setdefault(arg.id, []).append(contrib)
            d.steps.append(step)
    for inp in spec.diff_inputs:
        if inp.id in d.adjoints:
            d.grads[inp.name] = d.adjoints[inp.id]
        else:  # the output does not depend on this input
            d.grads[inp.name] = T.Map(sp.Integer(0), [], shape=inp.shape)
    return d


def _needs_grad(fwd) -> set[int]:
    need = set()
    for n in fwd:
        if isinstance(n, T.Input):
            if n.differentiable:
                need.add(n.id)
        elif n.differentiable and any(a.id in need for a in n.args):
            need.add(n.id)
    return need


def _accumulate(contribs: list[T.Node], shape: tuple) -> T.Node:
    pads = [c for c in contribs if isinstance(c, T.Pad)]
    if pads:  # gradients of slices: one concatenation, zeros where no slice was taken
        contribs = [c for c in contribs if not isinstance(c, T.Pad)] + [_concat(pads, shape)]
    if len(contribs) == 1 and contribs[0].shape == shape:
        return contribs[0]
    return T.elementwise(lambda *cs: sp.Add(*cs), *contribs, shape=shape)


def _concat(pads: list, shape: tuple) -> T.Node:
    pads = sorted(pads, key=lambda p: sp.default_sort_key(p.start))
    parts, pos = [], sp.Integer(0)
    for p in pads:
        gap = sp.simplify(p.start - pos)
        if gap != 0:
            if gap.is_negative:  # overlapping slices: add them as dense tensors instead
                return _accumulate([T.Concat(_fill([q], shape)) for q in pads], shape)
            parts.append(T.Map(sp.Integer(0), [], shape=shape[:-1] + (gap,)))
        parts.append(p.args[0])
        pos = sp.simplify(p.start + p.args[0].shape[-1])
    return T.Concat(_fill_tail(parts, pos, shape))


def _fill(pads, shape):
    p = pads[0]
    parts = []
    if p.start != 0:
        parts.append(T.Map(sp.Integer(0), [], shape=shape[:-1] + (p.start,)))
    parts.append(p.args[0])
    return _fill_tail(parts, sp.simplify(p.start + p.args[0].shape[-1]), shape)


def _fill_tail(parts, pos, shape):
    rest = sp.simplify(shape[-1] - pos)
    if rest != 0:
        parts.append(T.Map(sp.Integer(0), [], shape=shape[:-1] + (rest,)))
    return parts


def _unbroadcast(g: T.Node, shape: tuple, table: ReductionTable) -> T.Node:
    """Sum ``g`` down to ``shape`` (the transpose of NumPy broadcasting)."""
    if g.shape == shape:
        return g
    lead = len(g.shape) - len(shape)
    keep = tuple(lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    if keep:
        g = simplify_sum(g, keep, table)
    if lead:
        g = T.Reduce("sum", g, tuple(range(lead)), False)
    return g


def _vjp(node: T.Node, G: T.Node, needs: set[int], table):
    if isinstance(node, T.Map):
        yield from _vjp_map(node, G, needs, table)
    elif isinstance(node, T.Contract):
        for k, a in enumerate(node.args):
            if a.id not in needs:
                continue
            if len(node.args) == 1:
                c = T.Contract(f"{node.out}->{node.ins[0]}", [G])
            else:
                other = node.args[1 - k]
                c = T.Contract(f"{node.out},{node.ins[1 - k]}->{node.ins[k]}", [G, other])
            yield a, c, Step(node, a, G, None, None, c, "einsum")
    elif isinstance(node, T.Reduce):
        (a,) = node.args
        if a.id not in needs:
            return
        g = G if node.keepdims or not node.axes or len(node.axes) == a.ndim else T.Expand(G, node.axes)
        if node.kind == "sum":
            c = T.elementwise(lambda x: x, g, shape=a.shape)
        else:  # max: the gradient goes to the arg-max, shared equally among ties
            m = node if (node.keepdims or len(node.axes) == a.ndim) else T.Expand(node, node.axes)
            mask = T.elementwise(lambda x, mm: sp.Piecewise((1, sp.Eq(x, mm)), (0, True)), a, m)
            count = T.Reduce("sum", mask, node.axes, True)
            c = T.elementwise(lambda gg, mk, ct: gg * mk / ct, g, mask, count, shape=a.shape)
        yield a, c, Step(node, a, G, None, None, c, node.kind)
    elif isinstance(node, T.Expand):
        (a,) = node.args
        if a.id in needs:
            c = T.Reduce("sum", G, node.axes, False)
            yield a, c, Step(node, a, G, None, None, c, "expand")
    elif isinstance(node, T.Slice):
        (a,) = node.args
        if a.id in needs:
            c = T.Pad(G, node.start, a.shape[-1])
            yield a, c, Step(node, a, G, None, None, c, "slice")
    elif isinstance(node, T.Concat):
        pos = sp.Integer(0)
        for a in node.args:
            width = a.shape[-1]
            if a.id in needs:
                c = T.Slice(G, pos, pos + width)
                yield a, c, Step(node, a, G, None, None, c, "concat")
            pos = pos + width
    elif isinstance(node, Unfold):
        (a,) = node.args
        if a.id in needs:   # the transpose of a read at computed positions: add back to them
            c = Fold(G, node)
            yield a, c, Step(node, a, G, None, None, c, "unfold")
    elif isinstance(node, Fold):
        (a,) = node.args
        if a.id in needs:   # the transpose of a scatter-add: read at the same positions (fill 0)
            like = Unfold(G, node.size, node.stride, node.padding, node.dilation, node.out)
            yield a, like, Step(node, a, G, None, None, like, "fold")
    elif isinstance(node, (T.Input, T.OneHot, T.StopGradient)):
        return
    else:  # pragma: no cover - a new node kind without a rule
        raise SpecError(f"no differentiation rule for node kind {node.op!r}")


def _vjp_map(node: T.Map, G: T.Node, needs: set[int], table):
    targets = [a for a in node.args if a.id in needs]
    y_rewrite = None
    if len(targets) == 1:  # other arguments act as parameters (e.g. the max shift of softmax)
        y = sp.Dummy("y", real=True)
        g = in_terms_of_output(node.expr, targets[0].sym, y)
        if g is not None:
            y_rewrite = g.subs(y, node.sym)
    for a in targets:
        local = sp.diff(node.expr, a.sym)
        if local == 0:
            continue
        if local.has(sp.Derivative, sp.DiracDelta, sp.Subs):
            raise SpecError(f"{node.fn or node.expr} is not differentiable: SymPy gives d/d{a.name or 'arg'} = "
                            f"{local}; use a differentiable formula or symgrad.stop_gradient")
        why = "output"
        if y_rewrite is not None:
            c = T.Map(G.sym * y_rewrite, [G, node] + list(node.args))
            used = y_rewrite
        else:
            used = _indicators(local, node.args)
            why = "indicator" if used != local else why
            c = T.Map(G.sym * used, [G] + list(node.args))
        c = _unbroadcast(c, a.shape, table)
        yield a, c, Step(node, a, G, local, used, c, "elementwise", why)


def _indicators(e: sp.Expr, args) -> sp.Expr:
    """``e`` with each ``Piecewise((1, cond(Y)), (0, True))`` on a one-hot ``Y`` (values 0 and 1)
    replaced by ``Y`` itself, when SymPy finds ``cond`` true at Y = 1 and false at Y = 0: the
    derivative of ``where(Y > 0, z, 0)`` (selecting the target logit) is then ``Y``, as for ``Y z``."""
    onehots = {a.sym for a in args if isinstance(a, T.OneHot)}

    def indicator(p):
        if not (isinstance(p, sp.Piecewise) and len(p.args) == 2 and p.args[0].expr == 1
                and p.args[1].expr == 0 and p.args[1].cond == sp.true):
            return None
        cond = p.args[0].cond
        ys = cond.free_symbols & onehots
        if len(ys) != 1 or cond.free_symbols != ys:
            return None
        (y,) = ys
        return y if cond.subs(y, 1) == sp.true and cond.subs(y, 0) == sp.false else None

    return e.replace(lambda p: indicator(p) is not None, indicator) if onehots else e
