"""Sliding windows on the pages: the window read ``unfold``, its transpose ``Fold`` and their sizes.

Element forms (``Notation.element`` calls ``unfold_element`` and ``fold_element``)::

    u[n, c, a, b, i, j] = x[n, c, s i + d a - p, s j + d b - p]          (0 outside x: zero padding)
    dx[n, c, h, w] = sum_{a, b, i, j} du[n, c, a, b, i, j]  if s i + d a - p = h and s j + d b - p = w

The second is the definition of the transpose (a scatter-add, col2im): every window cell that read
``x[n, c, h, w]`` sends its gradient back there. The size parameters print as the textbook letters
``s`` (stride), ``p`` (padding), ``d`` (dilation) when those are free, the window positions as
``H_out = floor((H + 2p - d (KH - 1) - 1) / s) + 1``. Reading an array at an index that is not an
integer inside its axis gives 0 (the zero padding); the evaluator (``symgrad.explanation.evaluate``)
follows the same convention, and a window read with another fill (max-pooling's -inf) says so with a
``Piecewise``. ``bind`` gives the sizes (and the computed window counts) for numeric evaluation.
"""
from __future__ import annotations

import sympy as sp

from ..spec import tensor as T
from ..spec.window import Fold, OutDim, Size, Unfold
from .symbols import Indicator

SHORT = {"stride": "s", "padding": "p", "dilation": "d"}
WINDOW_LETTERS = "abef"
OUT_LETTERS = "ijkl"


def window_dims(nodes) -> tuple[list, list]:
    """(window sizes, window counts) of the window reads among ``nodes``, in first-use order."""
    wins, outs = [], []
    for n in nodes:
        if isinstance(n, Unfold):
            wins += [s for s in n.size if s not in wins]
            outs += [o for o in n.out if o not in outs]
    return wins, outs


def size_letters(spec, taken: set) -> dict:
    """``{Size: display symbol}``: stride, padding, dilation as s, p, d unless those names are taken."""
    out = {}
    for s in getattr(spec, "sizes", []):
        want = SHORT.get(s.name, s.name)
        if want in taken:
            want = s.name
        taken.add(want)
        out[s] = Size(want, s.default, s.minimum) if want != s.name else s
    return out


def positions(nt, n, win, out) -> list:
    """``s i + d a - p`` on each windowed axis of the window read (or scatter-add) ``n``."""
    shown = nt.size_sym
    return [(sp.sympify(st) * i + sp.sympify(dl) * a - sp.sympify(pd)).xreplace(shown)
            for st, dl, pd, a, i in zip(n.stride, n.dilation, n.padding, win, out)]


def unfold_element(nt, n, idx, sub):
    """``x[lead, s i + d a - p, ...]``; a fill other than 0 outside x is written as a Piecewise."""
    (x,) = n.args
    k = len(n.size)
    lead, win, out = list(idx[:-2 * k]), list(idx[-2 * k:-k]), list(idx[-k:])
    pos = positions(nt, n, win, out)
    read = sub(x, lead + pos)
    if n.fill == 0 or all(sp.sympify(p) == 0 for p in n.padding):
        return read
    inside = sp.And(*[(q >= 0) & (q < L) for q, L in zip(pos, n.lengths)])
    return sp.Piecewise((read, inside), (n.fill, True))


def fold_element(nt, n, idx, sub, avoid):
    """The sum over the window cells that read ``x[lead, h, w]``: a scatter-add written per element."""
    (g,) = n.args
    k = len(n.size)
    lead, at = list(idx[:-k]), list(idx[-k:])
    used = set(avoid) | {i for i in idx if i is not None}
    win = nt.idx(n.size, used)
    out = nt.idx(n.out, used | set(win))
    pos = positions(nt, n, win, out)
    cond = sp.And(*[sp.Eq(q, h) for q, h in zip(pos, at)])
    read = sub(g, lead + win + out).replace(     # a 0/1 mask as [c]: see symbols.Indicator
        lambda e: isinstance(e, sp.Piecewise) and len(e.args) == 2 and e.args[0].expr == 1
        and e.args[1] == (0, True), lambda e: Indicator(e.args[0].cond))
    body = sp.Piecewise((read, cond), (0, True))
    for j, dim in list(zip(out, n.out))[::-1] + list(zip(win, n.size))[::-1]:
        body = sp.Sum(body, (j, 0, dim - 1))
    return body


def count_formula(o: OutDim, shown: dict) -> sp.Expr:
    """``floor((L + 2p - d (K - 1) - 1) / s) + 1`` with the display letters."""
    length, size, stride, padding, dilation = (sp.sympify(v).xreplace(shown) for v in o.parts)
    num = sp.Add(length, 2 * padding, -dilation * (size - 1), -1)
    return sp.floor(num / stride) + 1


# -- numeric values --------------------------------------------------------------------------------
def bind(symbols, given: dict) -> dict:
    """``given`` plus a value for every ``Size`` (its default) and ``OutDim`` (its formula) that the
    symbols (dimensions, possibly expressions) use; a size named by its name in ``given`` counts too."""
    out = dict(given)
    by_name = {str(k): v for k, v in given.items()}
    pending = set()
    for d in symbols:
        for s in sp.sympify(d).free_symbols:
            pending.add(s)
            if isinstance(s, OutDim):
                pending |= set().union(*(sp.sympify(p).free_symbols for p in s.parts))
    sizes = sorted((s for s in pending if isinstance(s, Size)), key=lambda s: isinstance(s.default, str))
    for s in sizes:
        if s in out:
            continue
        if s.name in by_name:
            out[s] = int(by_name[s.name])
        elif isinstance(s.default, str):
            ref = next((v for k, v in out.items() if str(k) == s.default), None)
            out[s] = int(ref) if ref is not None else int(by_name[s.default])
        else:
            out[s] = s.default
        by_name[s.name] = out[s]
    for o in sorted((s for s in pending if isinstance(s, OutDim)), key=str):
        if o not in out:
            out[o] = int(sp.sympify(o.numerator).xreplace(out)) // int(sp.sympify(o.stride).xreplace(out)) + 1
    return out


def dim_values(spec, sizes: dict, settings: dict | None = None) -> dict:
    """Sizes of every dimension a layer's page uses: ``sizes`` (by dimension), the size parameters
    (``settings`` by name, else their defaults) and the window counts computed from them."""
    given = dict(sizes)
    for s in getattr(spec, "sizes", []):
        if settings and s.name in settings:
            given[s] = int(settings[s.name])
    syms = list(spec.dims) + list(getattr(spec, "sizes", [])) + list(getattr(spec, "out_dims", []))
    return bind(syms, given)


def is_window_graph(nodes) -> bool:
    return any(isinstance(n, (Unfold, Fold)) for n in nodes)


def reads_windows(node) -> bool:
    return any(isinstance(n, Fold) for n in T.walk([node]))
