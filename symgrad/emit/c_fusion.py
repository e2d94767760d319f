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


CHUNKS = 16   # row chunks of a loop with column reductions: partial sums per chunk, then summed


def colred(s) -> bool:
    """A reduction over the leading axis only (``dgamma = sum_rows(dy * xhat)``): inside a row loop it
    accumulates into one partial row per chunk of rows (deterministic for any thread count)."""
    return (isinstance(s, ir.Reduction) and tuple(s.axes) == (0,) and len(s.src_shape) >= 2
            and not _is_one(s.src_shape[0]) and tuple(s.shape) != ())


class Fusion:
    """Mixin of ``CBody``: needs ``self.f`` (the IR function), ``self.shapes`` and ``self.values``."""

    def domain(self, s):
        if isinstance(s, ir.Reduction):
            dom = tuple(s.src_shape)
            if colred(s) and s.out not in self.values:
                return dom
            return dom if len(dom) >= 2 and 0 not in s.axes and not _is_one(dom[0]) else None
        if isinstance(s, (ir.Elementwise, ir.OneHot)) and s.out not in self.values:
            dom = tuple(s.shape)
            return dom if len(dom) >= 1 and not _is_one(dom[0]) else None
        return None

    def reads(self, s) -> set:
        """Arrays ``s`` reads (a slice stands for the array it views)."""
        if isinstance(s, ir.OneHot):
            names = {s.index}
        elif isinstance(s, ir.Einsum):
            names = set(s.operands)
        elif isinstance(s, (ir.Slice, ir.Expand)):
            names = {s.src}
        elif isinstance(s, ir.Concat):
            names = {p for p in s.parts if p}
        else:
            names = {x.name for x in s.expr.free_symbols}
            for _, t in getattr(s, "temps", []):
                names |= {x.name for x in t.free_symbols}
        alias = getattr(self, "alias", {})
        return {alias.get(n, n) for n in names}

    def silent(self, s) -> bool:
        """Statements that emit no code: slices (views) and concatenations whose parts were all
        written in place."""
        if isinstance(s, ir.Slice):
            return True
        return isinstance(s, ir.Concat) and all(p in self.concat_parts(self.f) for p in s.parts)

    def ordered(self, body) -> list:
        """Elementwise work moves ahead of a matrix product it does not depend on, so it can share
        the row loop of the elementwise work before the product."""
        body = list(body)
        for j in range(1, len(body)):
            i = j
            s = body[i]
            if not isinstance(s, (ir.Elementwise, ir.Reduction)):
                continue
            while i > 0 and isinstance(body[i - 1], (ir.Einsum, ir.Concat, ir.Slice)) and \
                    body[i - 1].out not in self.reads(s) and s.out not in self.reads(body[i - 1]) and \
                    not (isinstance(body[i - 1], ir.Concat) and s.out in body[i - 1].parts):
                body[i - 1], body[i] = body[i], body[i - 1]
                i -= 1
        return body

    def groups(self):
        out, cur, dim0, written, cols = [], [], None, set(), set()
        for s in self.ordered(self.f.body):
            if self.silent(s):
                continue
            dom = self.domain(s)
            ok = dom is not None and cur and dom[0] == dim0 and not (self.reads(s) & cols) and all(
                len(self.shapes[n]) == len(dom) and self.shapes[n][0] == dim0
                for n in self.reads(s) & written)
            if ok:
                cur.append(s)
                written.add(s.out)
                if colred(s):
                    cols.add(s.out)
                continue
            if cur:
                out.append(cur)
            cur, dim0, written = ([s], dom[0], {s.out}) if dom is not None else ([], None, set())
            cols = {s.out} if dom is not None and colred(s) else set()
            if dom is None:
                out.append([s])
        if cur:
            out.append(cur)
        return out

    def _inner(self, s):
        dom = self.domain(s)
        if colred(s):
            return dom[1:]
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

    def passes(self, group) -> list:
        """Schedule a row group as early as dependencies allow: [(level, kind, stmts)], kind "one"
        (a per-row value or a statement with its own loops, run between passes) or "pass" (statements
        sharing one loop over the row). A value is ready in the pass that computes it (elementwise,
        same inner domain), after it (reductions), or before it (per-row values)."""
        level, kinds = {}, {}
        for s in group:
            inner = self._inner(s)
            scalar = isinstance(s, ir.Elementwise) and all(_is_one(d) for d in tuple(s.shape)[1:])
            kind = "one" if scalar or inner is None else "pass"
            lv = 0
            for n in self.reads(s):
                if n not in level:
                    continue
                d = next(x for x in group if x.out == n)
                if kinds[n] == "one":
                    lv = max(lv, level[n])
                elif isinstance(d, ir.Reduction) or kind == "one" or self._inner(d) != inner:
                    lv = max(lv, level[n] + 1)
                else:
                    lv = max(lv, level[n])
            level[s.out], kinds[s.out] = lv, kind
        out = []
        for lv in sorted(set(level.values())):
            out += [(lv, "one", [s]) for s in group if level[s.out] == lv and kinds[s.out] == "one"]
            inners = []
            for s in group:
                if level[s.out] == lv and kinds[s.out] == "pass" and self._inner(s) not in inners:
                    inners.append(self._inner(s))
            for inner in inners:
                out.append((lv, "pass", [s for s in group if level[s.out] == lv and kinds[s.out] == "pass"
                                         and self._inner(s) == inner]))
        return out
