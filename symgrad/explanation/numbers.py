"""Worked numbers: the derivation of a layer again, on a tiny input (N = 2, other sizes 3 or 2).

Like the step-by-step backprop worked examples teachers use: the inputs (rounded to one decimal so a
student can follow by hand), every forward value, every local derivative and chain-rule product, the
final gradients and one SGD update of the parameters. Every number is computed twice -- by the
generated NumPy kernel (``symgrad.load``) and by evaluating the very expressions the page prints
(``symgrad.explanation.evaluate``) -- and the page states how far apart they are (a test requires
float64 rounding). ``worked(name)`` returns ``(Document, checks)``; ``checks`` maps each value that
the kernel also returns to ``(printed-expression value, kernel value)``.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..errors import SymgradError
from ..registry import REGISTRY
from ..runtime import load
from .evaluate import evaluate, run
from .model import Document, Equation, Heading, Para
from .strings import Strings
from .symbols import Partial
from .windows import dim_values
from ..spec import tensor as T
from ..spec.window import Unfold

LR = 0.1


def _sizes(spec) -> dict:
    """N = 2, other dims 3 or 2; a window 2 wide over an axis of 3; then the size parameters' defaults
    and the window counts (H_out) they give."""
    wins, lengths = set(), set()
    for n in T.walk(spec.outputs):
        if isinstance(n, Unfold):
            wins |= set(n.size)
            lengths |= set(n.lengths)
    out = {}
    for k, d in enumerate(spec.dims):
        out[d] = 2 if str(d) == "N" else (3 if k % 2 else 2) if str(d) != "n_elems" else 4
        out[d] = 2 if d in wins else 3 if d in lengths else out[d]
    return dim_values(spec, out)


def _matrix(a) -> object:
    a = np.asarray(a, dtype=np.float64)
    f = lambda x: sp.Float(float(x), 4)  # noqa: E731 - 4 significant digits on the page
    if a.ndim == 0:
        return f(a)
    if a.ndim == 1:
        return sp.Matrix([[f(x) for x in a]])
    if a.ndim == 2:
        return sp.Matrix([[f(x) for x in row] for row in a])
    return sp.Matrix([[f(x) for x in a.reshape(a.shape[0], -1)[r]] for r in range(a.shape[0])])


def worked(name, lang: str = "en", seed: int = 0):
    from . import explain      # the package's explain (this module is one of its parts)
    spec = REGISTRY.get(name) if isinstance(name, str) else name
    ex = explain(spec, lang=lang)
    doc0 = ex.doc
    if not doc0.equations("forward") or not doc0.equations("final") or getattr(spec, "cell", None) is not None:
        raise SymgradError(f"--numbers: worked numbers are available for layers, activations and losses, "
                           f"not for {spec.name} ({spec.kind})")
    S = Strings(lang)
    sizes = _sizes(spec)
    rng = np.random.default_rng(seed)
    shape = lambda s: tuple(int(sp.sympify(d).xreplace(sizes)) for d in s)  # noqa: E731
    vals = {}
    for i in spec.inputs:
        vals[i.name] = (rng.integers(0, int(sp.sympify(i.bound).xreplace(sizes)), size=shape(i.shape))
                        if i.kind == "index" else np.round(rng.uniform(-1, 1, size=shape(i.shape)), 1))
    ups = {g.name: (np.float64(1.0) if not g.shape else np.round(rng.uniform(-1, 1, size=shape(g.shape)), 1))
           for g in spec.derivation.grad_inputs}
    k = load(spec.name)
    out, cache = k.forward(*[vals[i.name] for i in spec.inputs])
    outs = list(out) if isinstance(out, tuple) else [out]
    grads = k.backward(cache, *ups.values())
    kernel = {o.name: v for o, v in zip(spec.outputs, outs)}
    kernel.update({"d" + i.name: g for i, g in zip(spec.diff_inputs, grads)})
    env = {**vals, **ups, **{h.name: h.default for h in spec.hypers}}
    results = run(doc0, env, sizes)
    value = {}
    for eq, v in results:
        if eq.defines:
            value[eq.defines] = v

    doc = Document(spec.name, spec.kind, lang, S.text("title_numbers", name=spec.name))
    dims = ", ".join(f"{d} = {v}" for d, v in sizes.items())
    doc.add(Para(S("numbers_intro", dims=dims, seed=seed)))
    doc.add(Heading(2, S.text("h_numbers_inputs")))
    for n, v in {**vals, **ups}.items():
        doc.add(Equation(sp.Symbol(n), _matrix(v), role="number"))
    if any(not g.shape for g in spec.derivation.grad_inputs):
        doc.add(Para(S("numbers_dloss")))
    checks = {}
    shown = set()
    for b in doc0.blocks:
        if isinstance(b, Heading) and b.level == 2 and b.text in (S.text("h_forward"), S.text("h_backward"),
                                                                 S.text("h_final")):
            doc.add(Heading(2, b.text))
        if isinstance(b, Heading) and b.level == 3:
            doc.add(Heading(3, b.text))
        if not isinstance(b, Equation):
            continue
        if b.role == "local" and isinstance(b.lhs, Partial):
            idx, free = [], {i for x in b.rhs.atoms(sp.Indexed) for i in x.indices}
            for a in b.lhs.args:
                idx += [i for i in getattr(a, "indices", ()) if i not in idx and i in free]
            if not b.rhs.atoms(sp.Indexed):
                doc.add(Equation(b.lhs, b.rhs, role="local"))      # a constant: nothing to compute
                continue
            try:
                v = evaluate(b.rhs, env | value, {**sizes, **_dims(doc0, sizes)}, tuple(idx))
            except (KeyError, ValueError, NotImplementedError):
                continue
            doc.add(Equation(b.lhs, b.rhs, role="local"))
            doc.add(Equation(b.lhs, _matrix(v), role="number"))
        elif b.role in ("forward", "chain", "total", "final", "simplified") and b.defines in value:
            if b.role == "simplified" or (b.role == "matrix"):
                continue
            shown.add(b.defines)
            doc.add(Equation(b.lhs, b.rhs, role=b.role, defines=b.defines, indices=b.indices))
            doc.add(Equation(sp.Symbol(b.defines), _matrix(value[b.defines]), role="number"))
            if b.defines in kernel:
                checks[b.defines] = (np.asarray(value[b.defines]), np.asarray(kernel[b.defines]))
    params = [i for i in spec.diff_inputs[1:]]
    if params:
        doc.add(Heading(2, S.text("h_numbers_sgd")))
        doc.add(Para(S("numbers_sgd", lr=LR)))
        for p in params:
            new = vals[p.name] - LR * np.asarray(kernel["d" + p.name]).reshape(vals[p.name].shape)
            doc.add(Equation(sp.Symbol(p.name), _matrix(new), role="number", rel="<-"))
    worst = max((float(np.max(np.abs(np.asarray(a, float).reshape(np.shape(b)) - np.asarray(b, float))))
                 for a, b in checks.values()), default=0.0)
    doc.add(Para(S("numbers_check", names=", ".join(sorted(checks)), err=f"{worst:.1e}")))
    return doc, checks


def _dims(doc, sizes) -> dict:
    out = {}
    for i, d in doc.dims.items():
        v = sp.sympify(sp.sympify(d).xreplace(sizes))
        if v.is_Number:
            out[i] = int(v)
    return out


__all__ = ["worked"]
