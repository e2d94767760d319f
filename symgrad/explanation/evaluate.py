"""Numeric evaluation of the index-notation expressions an explanation prints.

``evaluate(expr, env, sizes, out)`` computes ``expr`` for every value of the free indices ``out`` with
NumPy: ``Indexed`` elements are array axes labelled by their index symbols, ``Sum`` and ``ReduceMax``
reduce a labelled axis, and everything elementwise in between is compiled by ``sympy.lambdify``. So a
test can run exactly the formulas the document shows and compare them with the generated kernels.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..spec.window import OutDim, Size
from .notation import ReduceMax
from .symbols import Indicator, OnGrid
from .windows import bind

# SymPy functions of symgrad.derive.stable and codegen, as NumPy callables for lambdify
MODULES = [{"Sigmoid": lambda a: np.exp(-np.logaddexp(0, -a)), "Softplus": lambda a: np.logaddexp(0, a),
            "log1p": np.log1p, "Heaviside": lambda a, h=0.5: np.heaviside(a, h)}, "numpy"]


class Labelled:
    """An array whose axes are named by index symbols."""

    def __init__(self, a, labels=()):
        self.a, self.labels = np.asarray(a, dtype=np.float64), tuple(labels)

    def to(self, labels) -> np.ndarray:
        perm = [self.labels.index(l) for l in labels if l in self.labels]
        a = np.transpose(self.a, perm) if perm else self.a
        shape, it = [], iter(a.shape)
        for l in labels:
            shape.append(next(it) if l in self.labels else 1)
        return a.reshape(shape)


def evaluate(expr, env: dict, sizes: dict, out=()) -> np.ndarray:
    """Value of ``expr`` with free indices in the order ``out``.

    ``env`` maps array names to arrays (without size-1 axes) and scalar names to numbers; ``sizes``
    maps dimension symbols to their sizes.
    """
    lab = _ev(sp.sympify(expr), env, sizes)
    extra = set(lab.labels) - set(out)
    if extra:
        raise ValueError(f"free indices {sorted(map(str, extra))} not in {list(map(str, out))}")
    res = lab.to(tuple(out))
    full = [sizes_of(i, sizes) for i in out]
    return np.broadcast_to(res, full).copy()


def sizes_of(i, sizes):
    if i in sizes:
        return int(sizes[i])
    base = sp.Symbol(i.name.rstrip("'"), integer=True)
    return int(sizes[base])


def run(doc, values: dict, dim_sizes: dict, skip=("bptt",)) -> list:
    """Evaluate every defining equation of ``doc`` in order: ``[(equation, value)]``.

    ``values``: the inputs, hyperparameters and upstream gradients by name; ``dim_sizes``: dimension
    symbol -> size. Matrix-form equations are evaluated with ``sympy.lambdify`` on their
    ``MatrixSymbol`` operands; ``skip``: roles not evaluated (a recurrent layer's equations over time
    need the stacked per-step values, see ``tests/test_explain_kinds.py``).
    """
    dim_sizes = bind(doc.dims.values(), dim_sizes)     # size parameters' defaults, window counts
    sizes = dict(dim_sizes)
    for i, d in doc.dims.items():       # a dimension may be an expression of others: 4*H
        v = sp.sympify(sp.sympify(d).xreplace(dim_sizes))
        if v.is_Number:
            sizes[i] = int(v)
    env, out = dict(values), []
    for eq in doc.equations():
        if eq.role in skip or not holds(eq.when, env, sizes):
            continue
        if eq.role == "blocks":     # [a | b | c]: side by side along the last axis
            val = np.concatenate([np.asarray(env[str(a)], dtype=np.float64) for a in eq.rhs.args], axis=-1)
            env[eq.defines] = val
        elif eq.role == "matrix":
            syms = sorted(eq.rhs.free_symbols, key=str)
            f = sp.lambdify(syms, eq.rhs, modules="numpy")
            val = f(*[np.asarray(env[str(x)]) for x in syms])
        elif eq.defines:
            val = evaluate(eq.rhs, env, sizes, eq.indices)
            env[eq.defines] = val
        else:
            continue
        out.append((eq, val))
    return out


def holds(cond, env, sizes) -> bool:
    """Whether an equation's condition (``when``: ``s = 1``, ``training = 1``) holds for these values."""
    if cond is None:
        return True
    vals = {}
    for x in cond.free_symbols:
        if x in sizes:
            vals[x] = sp.Integer(int(sizes[x]))
        elif x.name in env and np.ndim(env[x.name]) == 0:
            vals[x] = sp.sympify(float(env[x.name]))
        else:
            return True
    return bool(cond.xreplace(vals))


def _affine(e) -> bool:
    """An index that is not a plain symbol plus a constant offset: s*i + d*a - p, (h + p - a)/s."""
    js = [s for s in e.free_symbols if s.is_integer and not s.is_positive and not isinstance(s, (Size, OutDim))]
    return not (len(js) == 1 and not (e - js[0]).has(js[0]))


def _gather(a, e, env, sizes) -> Labelled:
    """``a`` read at index expressions of several indices; an index outside an axis or not an integer
    reads 0 (zero padding: the convention the pages state for window reads)."""
    parts = [_ev(i, env, sizes) for i in e.indices]
    labels = []
    for p in parts:
        labels += [l for l in p.labels if l not in labels]
    pos = [np.asarray(p.to(labels), dtype=np.float64) for p in parts]
    shape = np.broadcast_shapes(*[q.shape for q in pos]) if pos else ()
    pos = [np.broadcast_to(q, shape) for q in pos]
    ok = np.ones(shape, dtype=bool)
    at = []
    for k, q in enumerate(pos):
        r = np.round(q)
        ok &= (np.abs(q - r) < 1e-9) & (r >= 0) & (r < a.shape[k])
        at.append(np.clip(r, 0, a.shape[k] - 1).astype(np.int64))
    return Labelled(np.where(ok, a[tuple(at)], 0.0), labels)


def _ev(e, env, sizes) -> Labelled:
    if isinstance(e, sp.Indexed) and any(not isinstance(i, sp.Symbol) and _affine(i) for i in e.indices):
        a = np.asarray(env[str(e.base)], dtype=np.float64)
        if a.ndim != len(e.indices):
            raise ValueError(f"{e.base}: {a.ndim} axes, indexed by {e.indices}")
        return _gather(a, e, env, sizes)
    if isinstance(e, sp.Indexed):
        name = str(e.base)
        a = np.asarray(env[name], dtype=np.float64)
        if a.ndim != len(e.indices):
            raise ValueError(f"{name}: {a.ndim} axes, indexed by {e.indices}")
        labels = []
        fixed = [k for k, i in enumerate(e.indices) if i.is_Integer]   # x[0, n, k]: one time step
        if fixed:
            a = a[tuple(int(e.indices[k]) if k in fixed else slice(None) for k in range(a.ndim))]
            e = sp.IndexedBase(name)[tuple(i for k, i in enumerate(e.indices) if k not in fixed)]
        for k, i in enumerate(e.indices):
            if not isinstance(i, sp.Symbol):   # i = j + offset: a slice (x[..., start:stop] of the spec)
                js = [s for s in i.free_symbols if s.is_integer and not s.is_positive]
                if len(js) != 1 or (i - js[0]).has(js[0]):
                    raise NotImplementedError(f"cannot evaluate the index expression {e}")
                off = int(sp.sympify(i - js[0]).xreplace(sizes))
                sl = [slice(None)] * a.ndim
                sl[k] = slice(off, off + sizes_of(js[0], sizes))
                a, i = a[tuple(sl)], js[0]
            elif a.shape[k] > sizes_of(i, sizes):   # gates[n, k], k < H on an axis of 4H: the first block
                sl = [slice(None)] * a.ndim
                sl[k] = slice(0, sizes_of(i, sizes))
                a = a[tuple(sl)]
            labels.append(i)
        if len(set(labels)) != len(labels):
            raise NotImplementedError(f"cannot evaluate the index expression {e}")
        return Labelled(a, labels)
    if isinstance(e, sp.Sum):
        body = _ev(e.function, env, sizes)
        a, labels = body.a, list(body.labels)
        for (j, lo, hi) in e.limits:
            count = int(sp.sympify(hi - lo + 1).xreplace(sizes))
            if j in labels:
                k = labels.index(j)
                a = a.sum(axis=k)
                labels.pop(k)
            else:
                a = a * count
        return Labelled(a, labels)
    if isinstance(e, ReduceMax):
        body = _ev(e.args[0], env, sizes)
        j = e.args[1]
        if j not in body.labels:
            return body
        k = body.labels.index(j)
        return Labelled(body.a.max(axis=k), body.labels[:k] + body.labels[k + 1:])
    if isinstance(e, (Size, OutDim)):     # a size parameter (stride s) or a window count (H_out)
        return Labelled(float(sizes[e]))
    if isinstance(e, sp.Symbol):
        if e.is_integer and not e.is_positive:  # an index used as a value: 0, 1, ..., size - 1
            return Labelled(np.arange(sizes_of(e, sizes)), (e,))
        if e in sizes:
            return Labelled(float(sizes[e]))
        if e.name not in env:
            raise KeyError(f"no value for {e.name!r}")
        return Labelled(env[e.name])
    if e.is_Number or isinstance(e, (sp.logic.boolalg.BooleanTrue, sp.logic.boolalg.BooleanFalse)):
        return Labelled(float(bool(e)) if not e.is_Number else float(e))
    # elementwise: replace maximal structural parts by dummies and lambdify the rest
    e = e.replace(lambda x: isinstance(x, OnGrid), lambda x: x.as_relations())
    e = e.replace(lambda x: isinstance(x, Indicator), lambda x: x.as_piecewise())
    parts: dict = {}

    def cut(x):
        if isinstance(x, (sp.Indexed, sp.Sum, ReduceMax)) or (isinstance(x, sp.Symbol) and not isinstance(x, sp.Dummy)):
            if x not in parts:
                parts[x] = sp.Dummy(f"p{len(parts)}")
            return parts[x]
        if not x.args:
            return x
        if isinstance(x, sp.Piecewise):
            return sp.Piecewise(*[(cut(v), cut(c)) for v, c in x.args])
        return x.func(*[cut(a) for a in x.args], evaluate=False) if x.args else x

    skel = cut(e)
    vals = [(_ev(x, env, sizes), d) for x, d in parts.items()]
    labels = []
    for v, _ in vals:
        labels += [l for l in v.labels if l not in labels]
    f = sp.lambdify([d for _, d in vals], skel, modules=MODULES)
    if not vals:
        return Labelled(f(), labels)
    shape = np.broadcast_shapes(*[v.to(labels).shape for v, _ in vals])
    out = f(*[np.broadcast_to(v.to(labels), shape) for v, _ in vals])   # numpy's logical_and.reduce needs
    return Labelled(np.broadcast_to(out, shape), labels)                  # operands of one shape


__all__ = ["Labelled", "evaluate", "holds", "run"]
