"""Lowering: a derivation (forward graph + derived backward graph) -> kernel IR.

Decides what forward saves for backward (every forward value a backward node reads), fuses
elementwise chains (a single-use elementwise node is inlined into its consumer), applies the stable
rewrites, eliminates common subexpressions with ``sympy.cse``, and applies the accuracy rewrites of
``symgrad.ir.accuracy`` (corrected means, balanced powers).
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from . import nodes as ir
from .accuracy import balanced_powers, corrected_means
from ..derive.stable import stabilize
from ..errors import SpecError
from ..spec import tensor as T
from ..spec.layer import LayerSpec
from ..spec.window import Fold, Unfold

RESERVED = {"np", "cache", "dtype", "c", "shape"}


def lower(spec: LayerSpec) -> ir.Kernel:
    return _lower(spec)


@lru_cache(maxsize=None)
def _lower(spec: LayerSpec) -> ir.Kernel:
    d = spec.derivation
    fwd_nodes = d.forward_nodes
    fwd_ids = {n.id for n in fwd_nodes}
    grad_nodes = [d.grads[i.name] for i in spec.diff_inputs]
    bwd_all = T.walk(grad_nodes)
    bwd_nodes = [n for n in bwd_all if n.id not in fwd_ids]
    saved = []
    for n in bwd_nodes:
        for a in n.args:
            a = _resolve(a)
            if a.id in fwd_ids and a not in saved and not isinstance(a, T.Input):
                saved.append(a)
    saved_inputs = [i for i in spec.inputs if any(i in n.args for n in bwd_nodes)]
    for g in grad_nodes:  # a gradient that is itself a forward value (rare)
        if g.id in fwd_ids and g not in saved and not isinstance(g, T.Input):
            saved.append(g)

    namer = _Namer(spec)
    for n in fwd_nodes:
        if isinstance(n, T.StopGradient):
            continue
        if n.name and not isinstance(n, T.Input):
            namer.claim(n, n.name)
    for o in list(spec.outputs) + [v for _, v in spec.updates]:
        namer.claim(o, o.name)
    adj_of = {tot.id: fid for fid, tot in d.adjoints.items()}
    by_id = {n.id: n for n in fwd_nodes}
    for i in spec.diff_inputs:
        g = d.grads[i.name]
        if g.id not in fwd_ids and not isinstance(g, T.Input):
            namer.claim(g, "d" + i.name)
    for n in bwd_nodes:
        f = by_id.get(adj_of.get(n.id))
        if f is not None and f.name and not isinstance(n, T.Input):
            namer.claim(n, "d" + f.name, soft=True)

    new_values = [v for _, v in spec.updates]   # buffers' new values: computed by forward, not derived
    fwd_all = T.walk(list(spec.outputs) + new_values) if new_values else fwd_nodes
    forward = _function("forward", spec.inputs, fwd_all, list(spec.outputs) + new_values, saved, namer, {}, {})
    notes: list = []
    forward = corrected_means(forward, namer.fresh, notes)
    fwd_env = {n.id: sp.Symbol(namer.name(n)) for n in saved + saved_inputs}
    for n in fwd_nodes:
        if isinstance(n, T.Input):
            fwd_env[n.id] = sp.Symbol(n.name)
        elif isinstance(n, T.StopGradient) and _resolve(n).id in fwd_env:
            fwd_env[n.id] = fwd_env[_resolve(n).id]
    fwd_shapes = {namer.name(n): n.shape for n in saved + saved_inputs}
    grads_in = list(d.grad_inputs)
    returns = [d.grads[i.name] for i in spec.diff_inputs]
    backward = _function("backward", grads_in, bwd_nodes, returns, [], namer, fwd_env, fwd_shapes)
    backward.saved = [namer.name(n) for n in saved_inputs + saved]
    for n in saved_inputs + saved:
        backward.shapes[namer.name(n)] = n.shape
    forward, backward = balanced_powers(forward, backward, namer.fresh, lambda e: _cse(e, namer), notes)

    args = [ir.Arg(i.name, i.shape, i.kind, i.bound, i.differentiable, getattr(i, "buffer", False))
            for i in spec.inputs]
    outs = [ir.Arg(o.name, o.shape) for o in spec.outputs]
    gouts = [ir.Arg(g.name, g.shape) for g in grads_in]
    eqs = [(s.out, _stmt_expr(s)) for s in forward.body]
    geqs = [(s.out, _stmt_expr(s)) for s in backward.body]
    for dname in spec.dims:
        if not any(ax == dname for i in spec.inputs for ax in i.shape):
            raise SpecError(f"{spec.name}: dimension {dname} must be the whole size of some input axis")
    hypers = [(h.name, bool(h.default) if isinstance(h, T.Flag) else h.default) for h in spec.hypers]
    return ir.Kernel(spec.name, spec.kind, spec.doc, args, hypers,
                     outs, gouts, spec.kernel_dims, forward, backward, eqs, geqs,
                     {**spec.meta, **({"accuracy": notes} if notes else {})},
                     node_names=dict(namer.names), loss=spec.loss,
                     sizes=[(s.name, s.default, s.minimum) for s in spec.sizes],
                     out_dims=[(str(o), o.numerator, o.stride) for o in spec.out_dims],
                     updates=[(t.name, namer.name(v)) for t, v in spec.updates])


class _Namer:
    def __init__(self, spec):
        self.names: dict[int, str] = {}
        self.taken = set(RESERVED) | {i.name for i in spec.inputs} | {h.name for h in spec.hypers}
        self.taken |= {str(s) for s in spec.kernel_dims} | {"d" + o.name for o in spec.outputs}
        for i in spec.inputs:
            self.names[i.id] = i.name
        self.k = 0

    def claim(self, node, name, soft=False):
        if node.id in self.names:
            return self.names[node.id]
        base, k = name, 2
        while name in self.taken:
            if soft:
                return None
            name = f"{base}_{k}"
            k += 1
        self.taken.add(name)
        self.names[node.id] = name
        return name

    def name(self, node) -> str:
        if node.id not in self.names:
            while f"t{self.k}" in self.taken:
                self.k += 1
            self.claim(node, f"t{self.k}")
        return self.names[node.id]

    def fresh(self, base: str | None = None) -> sp.Symbol:
        """A new name: ``base`` (``base_2``, ... if taken), or the next temporary."""
        if base is None:
            return self.temp()
        name, k = base, 2
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return sp.Symbol(name)

    def temp(self) -> sp.Symbol:
        while f"t{self.k}" in self.taken:
            self.k += 1
        name = f"t{self.k}"
        self.taken.add(name)
        return sp.Symbol(name)


def _resolve(n):
    while isinstance(n, T.StopGradient):
        n = n.args[0]
    return n


def _function(fname, params, nodes, returns, saved, namer, env, env_shapes) -> ir.Function:
    nodes = [n for n in nodes if not isinstance(n, T.Input)]
    must = {n.id for n in returns} | {n.id for n in saved}
    uses: dict[int, list] = {}
    for n in nodes:
        for a in n.args:
            uses.setdefault(a.id, []).append(n)
    expr_of = dict(env)
    for p in params:
        expr_of[p.id] = sp.Symbol(p.name)
    body, shapes = [], {**env_shapes, **{p.name: p.shape for p in params}}
    seen: dict = {}  # structural statements already emitted, by what they compute
    for n in nodes:
        if isinstance(n, T.StopGradient):
            expr_of[n.id] = expr_of[n.args[0].id]
            continue
        if isinstance(n, T.Map):
            e = n.expr.xreplace({a.sym: expr_of[a.id] for a in n.args})
            consumers = uses.get(n.id, [])
            if e == 0 and not n.args and consumers and all(isinstance(c, T.Concat) for c in consumers) \
                    and n.id not in must:
                expr_of[n.id] = sp.Integer(0)
                continue
            inline = (n.id not in must and len(consumers) == 1
                      and isinstance(consumers[0], (T.Map, T.Reduce))
                      and (n.shape == (consumers[0].args[0].shape if isinstance(consumers[0], T.Reduce)
                                       else consumers[0].shape) or n.shape == ()))
            if inline and not (n.name and consumers[0].op == "reduce" and False):
                expr_of[n.id] = e
                continue
            if isinstance(e, sp.Symbol) and shapes.get(e.name) == n.shape and n.id not in must:
                expr_of[n.id] = e  # a plain copy: alias it
                continue
            if n.id not in must and _expr_shape(e, shapes, []) != n.shape and \
                    all(isinstance(c, T.Map) for c in consumers):
                expr_of[n.id] = e  # a broadcast: NumPy broadcasting in the consumers does it
                continue
            name = namer.name(n)
            e = stabilize(e)
            if isinstance(e, sp.Symbol) and e.name in shapes:
                e = _Copy(e)
            temps, e = _cse(e, namer)
            shape_of_e = _expr_shape(e, shapes, temps)
            body.append(ir.Elementwise(name, n.shape, e, temps, broadcast=shape_of_e != n.shape))
        elif isinstance(n, T.Reduce) and _dedupe(n, expr_of, seen, body, namer, must, shapes):
            continue
        elif isinstance(n, T.Reduce):
            (a,) = n.args
            name = namer.name(n)
            e = stabilize(expr_of[a.id])
            temps, e = _cse(e, namer)
            body.append(ir.Reduction(name, n.shape, n.kind, e, a.shape, n.axes, n.keepdims, temps))
        elif isinstance(n, T.Contract) and _dedupe(n, expr_of, seen, body, namer, must, shapes):
            continue
        elif isinstance(n, T.Contract):
            ops = tuple(_materialized(a, expr_of) for a in n.args)
            name = namer.name(n)
            body.append(ir.Einsum(name, n.shape, n.subscripts, ops, tuple(a.shape for a in n.args)))
        elif isinstance(n, T.OneHot):
            name = namer.name(n)
            body.append(ir.OneHot(name, n.shape, _materialized(n.args[0], expr_of), n.classes))
        elif isinstance(n, T.Expand):
            name = namer.name(n)
            body.append(ir.Expand(name, n.shape, _materialized(n.args[0], expr_of), n.axes))
        elif isinstance(n, Unfold):
            name = namer.name(n)
            body.append(ir.Window(name, n.shape, _materialized(n.args[0], expr_of), n.args[0].shape,
                                  n.size, n.stride, n.padding, n.dilation, n.fill))
        elif isinstance(n, Fold):
            name = namer.name(n)
            body.append(ir.WindowAdd(name, n.shape, _materialized(n.args[0], expr_of), n.args[0].shape,
                                     n.size, n.stride, n.padding, n.dilation))
        elif isinstance(n, T.Slice):
            name = namer.name(n)
            body.append(ir.Slice(name, n.shape, _materialized(n.args[0], expr_of), n.start, n.stop))
        elif isinstance(n, T.Concat):
            name = namer.name(n)
            parts = tuple(None if (isinstance(a, T.Map) and a.expr == 0 and not a.args)
                          else _materialized(a, expr_of) for a in n.args)
            body.append(ir.Concat(name, n.shape, parts, tuple(a.shape[-1] for a in n.args)))
        else:
            raise SpecError(f"cannot lower node kind {n.op!r}")
        expr_of[n.id] = sp.Symbol(name)
        shapes[name] = n.shape
    f = ir.Function(fname, params, body, [namer.name(r) if r.id in namer.names or not isinstance(r, T.Input)
                                          else r.name for r in returns],
                    [namer.name(s) for s in saved], shapes)
    return f


class _Copy(sp.Function):
    """A returned array that equals another array: returned as a copy, never aliased."""


def _dedupe(n, expr_of, seen, body, namer, must, shapes) -> bool:
    """A reduction or contraction identical to an earlier one reuses it (returned: as a copy)."""
    if isinstance(n, T.Reduce):
        key = ("reduce", n.kind, expr_of[n.args[0].id], n.axes, n.keepdims)
    else:
        key = ("contract", n.subscripts) + tuple(expr_of[a.id] for a in n.args)
    first = seen.get(key)
    if first is None:
        seen[key] = n
        return False
    sym = expr_of[first.id]
    if n.id in must:
        name = namer.name(n)
        body.append(ir.Elementwise(name, n.shape, _Copy(sym)))
        expr_of[n.id] = sp.Symbol(name)
        shapes[name] = n.shape   # (the C target plans its buffers from the shapes: a KeyError without)
    else:
        expr_of[n.id] = sym
    return True


def _materialized(a, expr_of) -> str:
    e = expr_of[a.id]
    if not isinstance(e, sp.Symbol):
        raise SpecError("internal: operand of a structural node was fused away")
    return e.name


def _cse(e, namer):
    if e.is_Atom:
        return [], e
    reps, (out,) = sp.cse([e], symbols=_TempSymbols(namer), optimizations=None, order="canonical")
    return reps, out


class _TempSymbols:
    def __init__(self, namer):
        self.namer = namer

    def __iter__(self):
        return self

    def __next__(self):
        return self.namer.temp()


def _expr_shape(e, shapes, temps):
    local = dict(shapes)
    for s, t in temps:
        local[s.name] = _expr_shape(t, local, [])
    syms = [local[s.name] for s in e.free_symbols if s.name in local]
    return T.broadcast_shapes(syms) if syms else ()


def _stmt_expr(s):
    if isinstance(s, (ir.Elementwise, ir.Reduction)):
        e = ir.full_expr(s)
        return ("reduce", s.kind, s.axes, e) if isinstance(s, ir.Reduction) else e
    if isinstance(s, ir.Einsum):
        return ("einsum", s.subscripts, s.operands)
    if isinstance(s, ir.OneHot):
        return ("onehot", s.index, s.classes)
    if isinstance(s, ir.Slice):
        return ("slice", s.src, s.start, s.stop)
    if isinstance(s, ir.Concat):
        return ("concat", s.parts)
    if isinstance(s, ir.Window):
        return ("unfold", s.src, s.size, s.stride, s.padding, s.dilation)
    if isinstance(s, ir.WindowAdd):
        return ("fold", s.src, s.size, s.stride, s.padding, s.dilation)
    return ("expand", s.src, s.axes)
