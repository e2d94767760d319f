"""Loop fusion for the C target, decided on the kernel IR alone.

Row groups: consecutive elementwise, one-hot, row-reduction and column-reduction statements that
iterate over the same leading dim, and read only same-row values of each other, run inside ONE loop
over that dim (which is the loop OpenMP parallelizes); a column reduction (``dgamma = sum_rows(..)``)
accumulates one partial row per chunk of rows, summed after the loop (deterministic for any thread
count). Passes: inside a row, each statement runs in the earliest pass over the row its dependencies
allow (a reduction is known after its pass, a per-row value between passes), and statements of one
pass with the same inner domain share one loop (LayerNorm backward: 2 passes; softmax: 3). Per-row
values are read into C locals before a pass so the compiler vectorizes it.
"""
from __future__ import annotations

import sympy as sp

from ...ir import nodes as ir
from ...ir.nodes import is_one, prod
from ...ir.schedule import CHUNK_ROWS, CHUNKS, colred
from .names import PLURAL, comment, describe, pass_text
from .views import cfactor, cint

LANES = 16   # vector lanes of a laned sum (``CBody.laned``) and columns of ``chunk_sums``: one AVX-512
             # register of float32


class Fusion:
    """Mixin of ``CBody``: needs ``self.f`` (the IR function), ``self.shapes`` and ``self.values``."""

    def domain(self, s):
        if isinstance(s, ir.Reduction):
            dom = tuple(s.src_shape)
            if colred(s) and s.out not in self.values:
                return dom
            return dom if len(dom) >= 2 and 0 not in s.axes and not is_one(dom[0]) else None
        if isinstance(s, (ir.Elementwise, ir.OneHot)) and s.out not in self.values:
            dom = tuple(s.shape)
            return dom if len(dom) >= 1 and not is_one(dom[0]) else None
        return None

    def reads(self, s) -> set:
        """Arrays ``s`` reads (``ir.reads``), a view standing for the array it views."""
        alias = getattr(self, "alias", {})
        return {alias.get(n, n) for n in ir.reads(s)}

    def silent(self, s) -> bool:
        """Statements that emit no code: slices (views) and concatenations whose parts were all
        written in place."""
        if isinstance(s, ir.Slice):
            return s.out not in self.copies
        return isinstance(s, ir.Concat) and all(p in self.concat_parts(self.f) for p in s.parts)

    def ordered(self, body) -> list:
        """Elementwise work moves ahead of a matrix product it does not depend on, so it can share
        the row loop of the elementwise work before the product."""
        body = list(body)
        windows = any(isinstance(t, ir.Window) for t in body)   # a copy of x stays in its sample loop
        for j in range(1, len(body)):
            i = j
            s = body[i]
            if not isinstance(s, (ir.Elementwise, ir.Reduction, ir.Expand)):
                continue
            while i > 0 and (isinstance(body[i - 1], (ir.Einsum, ir.Concat, ir.Slice, ir.Window, ir.WindowAdd))
                             or windows and self._argument_copy(body[i - 1])) and \
                    body[i - 1].out not in self.reads(s) and s.out not in self.reads(body[i - 1]) and \
                    not (isinstance(body[i - 1], ir.Concat) and s.out in body[i - 1].parts) and \
                    not (isinstance(body[i - 1], ir.Window) and body[i - 1].src in self.reads(s)):
                # (a statement that reads a window's source stays after the window: the cache's copy of
                # a convolution's x then joins its sample loop, each sample copied as its windows are read)
                body[i - 1], body[i] = body[i], body[i - 1]
                i -= 1
        return body

    def _argument_copy(self, s) -> bool:
        """A cache's copy of an argument (``NAME_forward_kept``): it depends on nothing, so independent
        work may move ahead of it too."""
        return isinstance(s, ir.Elementwise) and isinstance(s.expr, sp.Symbol) \
            and s.expr.name in {a.name for a in self.cf.args} and s.out != s.expr.name

    def groups(self, body=None):
        """Consecutive statements that share one loop over the rows (``body``: a part of the ordered
        function body; default all of it)."""
        out, cur, dim0, written, cols = [], [], None, set(), set()
        for s in (self.ordered(self.f.body) if body is None else body):
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

    def passes(self, group) -> list:
        """Schedule a row group as early as dependencies allow: [(level, kind, stmts)], kind "one"
        (a per-row value or a statement with its own loops, run between passes) or "pass" (statements
        sharing one loop over the row). A value is ready in the pass that computes it (elementwise,
        same inner domain), after it (reductions), or before it (per-row values)."""
        level, kinds = {}, {}
        for s in group:
            inner = self._inner(s)
            scalar = isinstance(s, (ir.Elementwise, ir.Reduction)) and all(is_one(d) for d in self.domain(s)[1:])
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
            for s in group:
                if level[s.out] != lv or kinds[s.out] != "one":
                    continue
                last = out[-1] if out else None
                if last is not None and last[0] == lv and self._same_sums(last[2] + [s]):
                    last[2].append(s)   # another sum over the same axes of the same values: same pass
                else:
                    out.append((lv, "one", [s]))
            inners = []
            for s in group:
                if level[s.out] == lv and kinds[s.out] == "pass" and self._inner(s) not in inners:
                    inners.append(self._inner(s))
            for inner in inners:
                out.append((lv, "pass", [s for s in group if level[s.out] == lv and kinds[s.out] == "pass"
                                         and self._inner(s) == inner]))
        return out

    def _same_sums(self, stmts) -> bool:
        """Whether ``stmts`` are sums over the same axes of one domain, none reading another, none
        with CSE temporaries: ``reductions`` adds them in one loop over the row (BatchNorm's backward
        sums ``dy`` and ``dy*xc`` over each sample's values of a channel: one pass, not two)."""
        first = stmts[0]
        outs = {t.out for t in stmts}
        return all(isinstance(t, ir.Reduction) and t.kind == "sum" and not t.temps and t.keepdims == first.keepdims
                   and tuple(t.src_shape) == tuple(first.src_shape) and tuple(t.axes) == tuple(first.axes)
                   and t.out not in self.values and not (self.reads(t) & outs) for t in stmts)

    def looping(self, passes) -> list:
        """The entries of ``passes`` that loop over the row (not a per-row value between passes)."""
        return [(lv, kind, ss) for lv, kind, ss in passes if kind == "pass" or not (
            isinstance(ss[0], (ir.Elementwise, ir.Reduction)) and all(is_one(d) for d in self.domain(ss[0])[1:]))]

    def group_text(self, group) -> str:
        """The comment of a row group: what its loop over the rows computes, pass by pass below."""
        if len(group) == 1 and not colred(group[0]):
            return describe(group[0], self.glossary)
        n = len(self.looping(self.passes(group)))
        rows = cint(self.domain(group[0])[0])
        cols = [self.cname(s.out) for s in group if colred(s)]
        if n <= 1:
            return f"for each of the {rows} rows: {pass_text(group, self.glossary, self.blocks())}" + (
                ", per chunk of rows, then summed" if cols else "")
        text = f"for each of the {rows} rows: {n} passes over the row"
        if cols:
            kinds = "/".join(sorted({PLURAL.get(s.kind, s.kind) for s in group if colred(s)}))
            text += f"; column {kinds} {', '.join(cols)}: per chunk of rows, then summed"
        return text

    def preload(self, stmts, dom, ivars, depth, bound):
        """Per-row values (an (N, 1) statistic inside a loop over the row) read into C locals before
        the loop: the compiler then vectorizes the loop without proving they do not alias its output."""
        self._row = {}
        locals_ = self.row_values(stmts, dom, ivars, bound)
        if not locals_:
            return depth
        self.emit("{", depth)
        for n, (local, ref) in locals_.items():
            self.emit(f"const {self.real} {local} = {ref};", depth + 1)
            self._row[n] = local
        return depth + 1

    def row_values(self, stmts, dom, ivars, bound, prefix="_r_") -> dict:
        """name -> (C local, its value): the per-row values ``stmts`` read (``preload``)."""
        out = {}
        if bound < 1:
            return out
        written = {s.out for s in stmts}
        r = len(dom)
        for n in sorted(set().union(*[self.reads(s) for s in stmts]) - written):
            shape = tuple(self.shapes.get(n, ()))
            if n in self.values or n not in self.shapes or not shape or len(shape) > r:
                continue
            off = r - len(shape)
            if all(is_one(d) for ax, d in enumerate(shape) if off + ax >= bound):
                out[n] = (f"{prefix}{self.cname(n)}", self.at(n, shape, dom, ivars))
        return out

    def unload(self, d, depth):
        if d > depth:
            self.emit("}", depth)
        self._row = {}

    def streamable(self, group, dom) -> list:
        """The outputs of ``group`` its passes may write with streaming stores (``sg_stream_*``): a
        function's output or cache array of the row loop's 2-d shape, written by an elementwise
        statement and read by no statement of this function (a streamed line would be read back from
        memory), in a loop this function runs on its own OpenMP team. Not a layer output that backward
        reads (dense_sigmoid's ``a``): the runtime copies it for the cache as soon as forward returns."""
        if self.serial or self.team or self.rows is not None or len(dom) != 2 or is_one(dom[1]):
            return []
        copied = set(self.k.backward.saved) & {o.name for o in self.k.outputs}
        outs = {a.name for a in self.cf.args if a.role in ("out", "cache")} - copied
        read = set().union(*(self.reads(s) for s in self.f.body))
        read |= {s.out for s in self.f.body if isinstance(s, ir.Einsum) and self.adds(s)}   # beta 1 reads its output
        return [s.out for s in group if isinstance(s, ir.Elementwise) and s.out in outs and s.out not in read
                and s.out not in self.views and tuple(s.shape) == tuple(dom)
                and tuple(self.shapes.get(s.out, ())) == tuple(dom)]

    def stream_flag(self) -> list[str]:
        """The declaration of ``_sg_nt`` (whether this call streams) for the arrays ``row_group``
        streamed, or nothing: when the loops that would stream move enough memory (the arrays of their
        shape they read or write)."""
        if not self._streamed:
            return []
        size = f"(int64_t)sizeof({self.real})"
        total = cfactor(sp.Add(*[prod(d) for d in self._streamed.values()]))
        rows = " && ".join(dict.fromkeys(f"sg_streams({total}*{size}, {cfactor(d[1])}*{size})"
                                         for d in self._streamed.values()))
        names = ", ".join(self.cname(n) for n in self._stream_names)
        moved = ", ".join(self.cname(n) for n in self._streamed)
        return ["    " + comment(f"streaming stores for {names} when the loops writing them move enough memory "
                                  f"({moved}; sg_streams: SYMGRAD_STREAM_BYTES)"),
                f"    const int _sg_nt = {rows};"]

    def stream_loop(self, names, dom, ivars, depth) -> int:
        """Open the loop over the pieces of a row whose stores to ``names`` stream when ``_sg_nt``: in
        pieces of SG_STREAM_CHUNK elements computed into a buffer in L1 (``_sb_``), each then streamed
        out; otherwise the same loop writes the array itself. Returns the depth at which the loop over
        a piece's elements ``[_s0, _s1)`` goes (the caller's)."""
        row = cint(dom[1])
        for n in names:
            self.emit(f"{self.real} _sb_{self.cname(n)}[SG_STREAM_CHUNK];", depth)
        self.emit(f"for (int64_t _s0 = 0; _s0 < {row}; _s0 += SG_STREAM_CHUNK) {{", depth)
        self.emit(f"const int64_t _s1 = {row} - _s0 < SG_STREAM_CHUNK ? {row} : _s0 + SG_STREAM_CHUNK;", depth + 1)
        self._stream_ref = {}
        for n in names:
            c = self.cname(n)
            self.emit(f"{self.real} *restrict _w_{c} = _sg_nt ? _sb_{c} : {c};", depth + 1)
            self.emit(f"const int64_t _o_{c} = _sg_nt ? -_s0 : {cfactor(dom[1])}*{ivars[0]};", depth + 1)
            self._stream_ref[n] = f"_w_{c}[_o_{c} + {ivars[1]}]"
        return depth + 1

    def stream_close(self, names, dom, ivars, depth):
        """Close ``stream_loop`` (opened at ``depth``): the pieces' buffers streamed out."""
        for n in names:
            c = self.cname(n)
            self.emit(f"if (_sg_nt) sg_stream_{self.sfx}({c} + {cfactor(dom[1])}*{ivars[0]} + _s0, _sb_{c}, _s1 - _s0);",
                      depth + 1)
        self.emit("}", depth)
        self._stream_ref = {}

    def row_group(self, group, dom, work, ivars):
        """One parallel loop over the rows; column reductions accumulate per chunk of rows; outputs
        that may stream (``streamable``) are written per chunk of rows, each chunk's streaming stores
        fenced."""
        cols = [s for s in group if colred(s)]
        lo, hi = ("_lo", "_hi") if self.rows is not None and dom[0] == self.rows else ("0", cint(dom[0]))
        assert not (cols and lo == "_lo"), "a row-split loop has no sums over its rows"
        rows = f"for (int64_t i0 = {lo}; i0 < {hi}; ++i0) {{"
        depth = 1
        stream = self.streamable(group, dom)
        if stream:   # what these loops move: the arrays of the row loop's shape they read or stream
            moved = set(stream) | {n for s in group for n in self.reads(s)
                                   if n not in self.values and tuple(self.shapes.get(n, ())) == tuple(dom)}
            self._streamed.update({n: tuple(dom) for n in sorted(moved)})
            self._stream_names += [n for n in stream if n not in self._stream_names]
        if cols or stream:
            n0 = cfactor(dom[0])
            self.emit("{", 1)
            many = CHUNKS * CHUNK_ROWS   # (the chunks depend on the rows only: the same sums for any thread count)
            self.emit(f"const int64_t _nc = {n0} < {many} ? ({n0} + {CHUNK_ROWS - 1})/{CHUNK_ROWS} : {CHUNKS};", 2)
            self.emit(f"SG_PARALLEL_FOR({cint(work)})", 2)
            self.emit("for (int64_t _c = 0; _c < _nc; ++_c) {", 2)
            for s in cols:
                acc_t, init, _ = self._acc(s)
                size = cint(prod(s.src_shape[1:]))
                c = self.cname(s.out)
                self.emit(f"{self.real} *restrict _p_{c} = _part_{c} + _c*{cfactor(prod(s.src_shape[1:]))};", 3)
                self.emit(f"for (int64_t _i = 0; _i < {size}; ++_i) _p_{c}[_i] = {init};", 3)
            rows = f"for (int64_t i0 = _c*{n0}/_nc; i0 < (_c + 1)*{n0}/_nc; ++i0) {{"
            depth = 3
        else:
            self.emit(f"SG_PARALLEL_FOR({cint(work)})", 1)
        passes = self.passes(group)
        looping = self.looping(passes)
        skew = self.skew(passes, looping, dom) if cols or stream else None
        if skew:
            self.emit(f"int _sg_skew_next = 0;   /* whether {ivars[0]}'s first pass ran beside the row before's last */",
                      depth)
        self.emit(rows, depth)
        self._stream = set(stream)
        for entry in passes:
            _, kind, stmts = entry
            if skew and entry is skew[1]:   # this row's last pass: beside the next row's first, or alone
                end = f"(_c + 1)*{cfactor(dom[0])}/_nc"
                self.emit(f"_sg_skew_next = {'!_sg_nt && ' if stream else ''}{ivars[0]} + 1 < {end} && SG_SKEW;",
                          depth + 1)
                self.note(f"skewed: this row's pass {len(looping)} beside pass 1 of the next row, in one loop",
                          depth + 1)
                self.emit("if (_sg_skew_next) {", depth + 1)
                self.skewed(skew[0][2], stmts, dom, ivars, depth + 2)
                self.emit("}", depth + 1)
            if len(looping) > 1 and entry in looping:
                self.note(f"pass {looping.index(entry) + 1}: {pass_text(stmts, self.glossary, self.blocks())}", depth + 1)
            if skew and entry in skew:   # the first pass unless it ran beside the row before's last; the
                self.emit("if (!_sg_skew_next) {", depth + 1)   # last unless it ran beside the next's first
                self.row_pass(entry, depth + 2, ivars)
                self.emit("}", depth + 1)
            else:
                self.row_pass(entry, depth + 1, ivars)
        self._stream = set()
        self.emit("}", depth)
        if stream:
            self.emit("sg_stream_fence(_sg_nt);   /* this chunk's streaming stores, before the loop's barrier */", 3)
        if cols or stream:
            self.emit("}", 2)
            for s in cols:
                acc_t, init, upd = self._acc(s)
                self.note(f"{self.cname(s.out)} = {s.kind} of the chunks' partial {PLURAL.get(s.kind, s.kind)}", 2)
                self.chunk_sums(self.ptr(s.out), f"_part_{self.cname(s.out)}", prod(s.src_shape[1:]), self._acc(s), 2)
            self.emit("}", 1)

    def row_pass(self, entry, depth, ivars):
        """One entry of ``passes`` for row ``ivars[0]``: a per-row value, or a loop over the row."""
        _, kind, stmts = entry
        if kind == "one" and len(stmts) > 1:
            self.reductions(stmts, depth, 1, ivars)
        elif kind == "one" or (len(stmts) == 1 and not colred(stmts[0]) and stmts[0].out not in self._stream):
            self.statement(stmts[0], depth, 1, ivars)
        else:
            self.fused(stmts, depth, ivars)

    def skew(self, passes, looping, dom):
        """``(first pass, last pass)`` of a row group whose rows may run skewed (``skewed``), or None:
        two or more loops over each row of a 2-d domain, the first of them before anything else of the
        row and made of sums over the row (laned), column sums and elementwise statements, the last
        after everything else and only elementwise. The next row's first pass reads nothing of this
        row (a row group reads only same-row values), and column sums keep their order of rows. Only
        where the first pass also adds column sums (LayerNorm's backward: dgamma, dbeta) or passes
        over cached data run between the first and the last (LayerNorm's forward); not two light
        passes alone (softmax's backward), which each run at the memory bound by themselves
        (``skewed`` has the figures)."""
        if len(dom) != 2 or is_one(dom[1]) or len(looping) < 2 or self.rows is not None:
            return None
        first, last = passes[0], passes[-1]
        if first[2] is not looping[0][2] or last[2] is not looping[-1][2] or first[1] != "pass" or last[1] != "pass":
            return None
        sums = [s for s in first[2] if isinstance(s, ir.Reduction) and not colred(s)]
        if not any(colred(s) for s in first[2]) and len(looping) < 3:
            return None   # (two light passes run at the memory bound by themselves: see skewed)
        if not sums or any(s.kind != "sum" or s.out in self.values for s in sums) or \
                any(self._inner(s) != tuple(dom[1:]) for s in first[2]):
            return None
        if any(type(s) is not ir.Elementwise or s.out in self.values for s in last[2]):
            return None
        return first, last

    def skewed(self, first, last, dom, ivars, depth):
        """Row ``i0``'s last pass (``last``: elementwise) beside row ``i0 + 1``'s first (``first``: sums
        over the row, column sums, elementwise) in one loop over the columns, in blocks of the laned
        sum's LANES*TERMS: the next row's reads from memory overlap this row's writes, where one after
        the other left the memory idle while the row's middle passes ran on cached data. Each value is
        computed as without skewing (the same laned sums, the same order of rows in a column sum), so
        the results are the same bit for bit (``SG_SKEW`` 0 turns it off; tests compare the two).
        Measured at 8192x1024 float32 on the 2-core EPYC (Zen 4): LayerNorm forward+backward through
        the call path (``bench/ab_c.py layernorm``, five runs of 16-24 alternating pairs) 0.88-0.96x
        the time, median 0.91 (0.97 with the backward alone skewed); in a C driver, the backward
        0.92-0.99x, the forward 0.98-1.01x. Softmax's backward (two passes, one product a term)
        1.13-1.30x in the C driver (0.89-1.0x at 512 and 2048 rows): its passes each run at the memory
        bound alone, and mixing the reads with the writes lost. Hence ``skew``'s rule. bench-log.md,
        seventeenth session."""
        nxt = "_sg_skew_row"
        nivars = [nxt] + list(ivars[1:])
        self.emit(f"const int64_t {nxt} = {ivars[0]} + 1;", depth)
        mine = self.row_values(last, dom, ivars, 1)
        theirs = self.row_values(first, dom, nivars, 1, "_rn_")
        for local, ref in [*mine.values(), *theirs.values()]:
            self.emit(f"const {self.real} {local} = {ref};", depth)
        reds = [s for s in first if isinstance(s, ir.Reduction) and not colred(s)]
        accs = [f"_acc_{self.cname(s.out)}" for s in reds]
        for a in accs:
            self.emit(f"double {a} = 0.0;", depth)
        rough = {a for s, a in zip(reds, accs) if s.rough}

        next_row = self.pass_body(first, dom, nivars)

        def body(d, update):   # the next row's first pass, with its per-row locals
            self._row = {n: local for n, (local, _) in theirs.items()}
            next_row(d, update)

        def beside(d, lo, hi):   # this row's last pass over the columns [lo, hi)
            self._row = {n: local for n, (local, _) in mine.items()}
            self.emit("SG_LANES", d)
            self.emit(f"for (int64_t {ivars[1]} = {lo}; {ivars[1]} < {hi}; ++{ivars[1]}) {{", d)
            for s in last:
                self.element(s, dom, ivars, d + 1)
            self.emit("}", d)
        row = cint(dom[1])
        if any(s.out in self._stream for s in first):   # the pieces fused() runs the first pass in
            self.emit(f"for (int64_t _s0 = 0; _s0 < {row}; _s0 += SG_STREAM_CHUNK) {{", depth)
            self.emit(f"const int64_t _s1 = {row} - _s0 < SG_STREAM_CHUNK ? {row} : _s0 + SG_STREAM_CHUNK;", depth + 1)
            self.laned(accs, ivars[1], "_s0", "_s1", depth + 1, body, rough, beside=beside)
            self.emit("}", depth)
        else:
            self.laned(accs, ivars[1], 0, row, depth, body, rough, beside=beside)
        self._row = {}
        for s, a in zip(reds, accs):
            self.emit(f"{self._out_ref(s, nivars)} = ({self.real}){a};", depth)

    def chunk_sums(self, out, part, size, acc, depth):
        """``out[i]`` = the sum (or ``acc``'s other kind) of ``part[k*size + i]`` over the ``_nc``
        chunks k in order, LANES columns at a time (each column's order as one at a time: the same
        values). One at a time, the sums of LayerNorm's dgamma and dbeta over 16 chunks at D 1024
        (GCC does not vectorize a loop around a loop of a run-time length) took 16% of its
        forward+backward at 64 rows: a chain of dependent adds per column."""
        acc_t, init, upd = acc
        size, factor = cint(size), cfactor(size)
        self.emit(f"for (int64_t _i = 0; _i < {size}; _i += {LANES}) {{", depth)
        self.emit(f"const int64_t _w = {size} - _i < {LANES} ? {size} - _i : {LANES};", depth + 1)
        self.emit(f"{acc_t} _acc[{LANES}];", depth + 1)
        self.emit(f"for (int64_t _j = 0; _j < {LANES}; ++_j) _acc[_j] = {init};", depth + 1)
        self.emit("for (int64_t _k = 0; _k < _nc; ++_k) {", depth + 1)
        self.emit("SG_LANES", depth + 2)
        self.emit("for (int64_t _j = 0; _j < _w; ++_j) " +
                  upd.format(acc="_acc[_j]", v=f"{part}[_k*{factor} + _i + _j]"), depth + 2)
        self.emit("}", depth + 1)
        self.emit(f"for (int64_t _j = 0; _j < _w; ++_j) {out}[_i + _j] = ({self.real})_acc[_j];", depth + 1)
        self.emit("}", depth)
