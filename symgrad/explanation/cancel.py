"""Terms that vanish when a gradient is summed over a broadcast axis, said on the page.

LayerNorm's lesson: ``dmean = -sum_d dxc`` with ``dxc = 2 dh xc + dxhat rstd``; the first term is
``2 dvar/D * sum_d xc`` and ``sum_d xc = sum_d x - D mean = 0``, so it drops out and
``dmean = -rstd sum_d dxhat``. ``vanishing_terms`` finds such terms from the derivation: a term of the
upstream gradient that is a factor constant along the summed index (after expanding the named
gradients one level) times a forward value whose sum over that index SymPy proves to be 0.
"""
from __future__ import annotations

import sympy as sp

from ..spec import tensor as T


def zero_sum(nt, v, k) -> tuple | None:
    """``(sum_j v, the same with v expanded to the inputs)`` if SymPy proves the sum over axis k is 0."""
    if not isinstance(v, T.Map):
        return None
    idx = nt.idx(v.shape)
    j = idx[k]
    if j is None:
        return None
    full = nt.element(v, idx, stop=lambda n: False)
    if not full.has(sp.Sum):
        return None
    n = nt.dim_of(j)
    total = sp.Sum(full, (j, 0, n - 1))
    if sp.simplify(linear_sum(full, j, n)) != 0:
        return None
    return sp.Sum(nt.ref(v, idx), (j, 0, n - 1)), total


def linear_sum(e, j, n):
    """``sum_{j<n} e`` by linearity, constants taken out, every summation index renamed alike (so equal
    sums cancel): ``sum_d (x_d - sum_d' x_d'/D) = sum_k x_k - D sum_k x_k / D = 0``."""
    k = sp.Symbol("k_", integer=True)
    out = 0
    for t in sp.Add.make_args(sp.expand(e)):
        c = sp.Mul(*[f for f in sp.Mul.make_args(t) if not f.has(j)])
        body = sp.Mul(*[f for f in sp.Mul.make_args(t) if f.has(j)])
        out += c * (sp.Sum(body.xreplace({j: k}), (k, 0, n - 1)) if body != 1 else n)
    return out.replace(lambda x: isinstance(x, sp.Sum), lambda x: x.xreplace({x.limits[0][0]: k}))




def vanishing_terms(B, s, node_idx, arg_idx) -> list:
    """``[(term, v, proof)]`` for the terms of ``s.upstream`` that sum to 0 over the broadcast axes."""
    nt = B.nt
    summed = [k for k, (i, a) in enumerate(zip(node_idx, _padded(arg_idx, node_idx))) if i is not None and a is None]
    if len(summed) != 1:
        return []
    (k,) = summed
    j = node_idx[k]
    up = sp.expand(nt.element(s.upstream, node_idx, stop=B.stop_named))
    grads = {nt.names[t.id]: t for t in B.d.adjoints.values() if t.id in nt.names}
    fwd = {nt.names[n.id]: n for n in B.d.forward_nodes if n.id in nt.names}
    out = []
    for term in sp.Add.make_args(up):
        for f in sp.Mul.make_args(term):
            if not (isinstance(f, sp.Indexed) and str(f.base) in fwd and j in f.indices):
                continue
            rest = term / f
            deeper = rest.replace(lambda e: isinstance(e, sp.Indexed) and str(e.base) in grads,
                                  lambda e: nt.element(grads[str(e.base)], list(e.indices), stop=B.stop_named))
            if deeper.has(j):
                continue
            v = fwd[str(f.base)]
            proof = zero_sum(nt, v, list(nt.idx(v.shape)).index(j) if j in nt.idx(v.shape) else -1)
            if proof is not None:
                out.append((term, deeper, f, proof))
                break
    return out


def _padded(arg_idx, node_idx):
    return [None] * (len(node_idx) - len(arg_idx)) + list(arg_idx)
