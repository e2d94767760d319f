"""Loop fusion for the C target, decided on the kernel IR alone.

Row groups: consecutive elementwise, one-hot and row-reduction statements that iterate over the same
leading dim, and read only same-row values of each other, run inside ONE loop over that dim (which
is the loop OpenMP parallelizes). Segments: inside a row, statements with the same inner domain share
one pass unless one reads a reduction finished in that pass (softmax: max | exp + sum | divide).
"""
from __future__ import annotations

import sympy as sp

from .. import ir


def _is_one(d) -> bool:
    return sp.sympify(d) == 1


class Fusion:
    """Mixin of ``CBody``: needs ``self.f`` (the IR function), ``self.shapes`` and ``self.values``."""

    def domain(self, s):
        if isinstance(s, ir.Reduction):
            dom = tuple(s.src_shape)
            return dom if len(dom) >= 2 and 0 not in s.axes and not _is_one(dom[0]) else None
        if isinstance(s, (ir.Elementwise, ir.OneHot)) and s.out not in self.values:
            dom = tuple(s.shape)
            return dom if len(dom) >= 1 and not _is_one(dom[0]) else None
        return None

    def reads(self, s) -> set:
        if isinstance(s, ir.OneHot):
            return {s.index}
        e = s.expr
        names = {x.name for x in e.free_symbols}
        for _, t in getattr(s, "temps", []):
            names |= {x.name for x in t.free_symbols}
        return names

    def groups(self):
        out, cur, dim0, written = [], [], None, set()
        for s in self.f.body:
            dom = self.domain(s)
            ok = dom is not None and cur and dom[0] == dim0 and all(
                len(self.shapes[n]) == len(dom) and self.shapes[n][0] == dim0
                for n in self.reads(s) & written)
            if ok:
                cur.append(s)
                written.add(s.out)
                continue
            if cur:
                out.append(cur)
            cur, dim0, written = ([s], dom[0], {s.out}) if dom is not None else ([], None, set())
            if dom is None:
                out.append([s])
        if cur:
            out.append(cur)
        return out

    def _inner(self, s):
        dom = self.domain(s)
        if isinstance(s, ir.Reduction):
            return dom[1:] if tuple(s.axes) == tuple(range(1, len(dom))) else None
        return dom[1:]

    def segments(self, group) -> list:
        """Split a row group into passes over the row: statements with the same inner domain share
        one loop unless one reads a reduction finished in that loop."""
        segs, cur, reduced = [], [], set()
        for s in group:
            inner = self._inner(s)
            if inner is not None and cur and self._inner(cur[0]) == inner and not (self.reads(s) & reduced):
                cur.append(s)
            else:
                if cur:
                    segs.append(cur)
                cur, reduced = [s], set()
                if inner is None:
                    segs.append(cur)
                    cur = []
                    continue
            if isinstance(s, ir.Reduction):
                reduced.add(s.out)
        if cur:
            segs.append(cur)
        return segs
