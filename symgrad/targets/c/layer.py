"""C target for layers: kernel IR -> the statements of ``templates/c/layer.{h,c}.j2``.

General over the IR (no per-kernel code): every array is a flat buffer (or a view into one,
``c_views``) indexed by broadcasting against the iteration domain of its statement. Consecutive elementwise, row-reduction
and one-hot statements that iterate over the same leading dim and read only same-row values of each
other are fused into ONE loop over that dim (``SG_PARALLEL_FOR``: an OpenMP parallel for) and share
passes over the row (``c_fusion``); a reduction over trailing axes keeps its accumulator in a register
(``double`` for sums in both variants; the innermost loop laned, ``CBody.laned``); reductions over the rows
accumulate per chunk of rows inside the same loop. Contractions that are a (possibly flattened) matrix product
call ``sg_gemm_*`` (CBLAS with ``SYMGRAD_CBLAS``, else loops); other einsums run as plain loops.
Each pass over memory is preceded by a comment saying what it computes in the derivation's names,
and temporaries carry the names of what they hold (``names``).
"""
from __future__ import annotations

import re

import sympy as sp

from ...ir import nodes as ir
from ...ir.nodes import is_one, prod
from ...ir.rewrite import added_products
from ...ir.schedule import colred
from .channels import Channels
from .fusion import LANES, Fusion
from .windows import Windows
from .names import Glossary, comment, describe
from .plan import gemm_form, looped_gemm_form
from .views import Views, cfactor, cint
from ...codegen.printers import ccode


TERMS = 4    # terms each lane adds pairwise in the working precision before its double sum
SEGMENTS = 4  # rows of a sum over two or more axes read side by side (CBody.summed)
ELEMENT = re.compile(r"\w+\[[^\[\]]*\]")   # a term that is an array element as read: added in double


def pairwise(terms: list) -> str:
    """``(a + b) + (c + d)``: the terms summed as a balanced tree."""
    while len(terms) > 1:
        terms = [f"({a} + {b})" if len(terms) > 2 else f"{a} + {b}" for a, b in zip(terms[::2], terms[1::2])] + (
            [terms[-1]] if len(terms) % 2 else [])
    return terms[0]


class CBody(Fusion, Views, Windows, Channels):
    """C statements of one function for one dtype."""

    def __init__(self, k: ir.Kernel, f: ir.Function, cf, dtype: str, views=None, serial=False, glossary=None,
                 names=None, rows=None, team=False, prepared=(), added=()):
        self.serial = serial         # no OpenMP loops (inside a time loop, next to BLAS's threads)
        self.prepared = frozenset(prepared)   # right operands of products prepared once (sg_prep_b)
        self.added = frozenset(added)   # products added to what their output holds (beta 1), not stored over it
        # and the statements ``add_into_product`` made so (their output is written before them): ``adds``
        self._adds = {id(f.body[i]) for i in added_products(f)}
        self._team_guard = False     # OpenMP loops only when no product goes to BLAS's threads (body)
        self.rows = rows             # the batch dim whose loops run over this thread's rows [_lo, _hi)
        self.team = team             # products on the OpenMP team (sg_gemm_team), never on BLAS's pool
        self.k, self.f, self.cf, self.dtype = k, f, cf, dtype
        self.real = "float" if dtype == "float32" else "double"
        self.sfx = "f32" if dtype == "float32" else "f64"
        self._streamed: dict = {}    # arrays the loops that may stream move -> their shape (``row_group``)
        self._stream_names: list = []   # the arrays those loops may stream (``streamable``)
        self._stream: set = set()    # those of the row group being emitted
        self._stream_ref: dict = {}  # their stores in the pass being emitted (``stream_loop``)
        self.shapes = dict(f.shapes)
        self.values = {a.name for a in cf.args if a.role in ("scalar", "hyper")} | set(cf.locals)
        self.dims = [str(d) for d in k.dims]
        self.lines: list[str] = []
        self._hoisted: set = set()   # temps of the current group computed before its loops
        self._row: dict = {}         # per-row values read once before a pass: name -> C local
        self.names: dict = dict(names or {})   # IR name -> C name of a temporary (``temp_names``)
        self.views: dict = dict(views or {})   # name -> (base pointer, offset, strides)
        self.plan_views()
        if glossary is None:   # the derivation's names of the values this function inlined away
            held = {a.name for a in cf.args} | {s.out for s in f.body} | set(self.views)
            glossary = Glossary(list(k.equations) + list(k.grad_equations), held)
        self.glossary = glossary.renamed(self.names)

    # -- references --------------------------------------------------------------------------
    def refs(self, e, dom, ivars) -> dict:
        out = {d: f"(({self.real}){d})" for d in self.dims}
        for s in e.free_symbols:
            n = s.name
            if n in self.values or n not in self.shapes:
                if n in self.names:
                    out[n] = self.names[n]
                continue
            out[n] = self._row.get(n) or self.at(n, self.shapes[n], dom, ivars)
        return out

    def expr(self, e, dom, ivars, extra=None) -> str:
        r = self.refs(e, dom, ivars)
        r.update(extra or {})
        return ccode(e, self.dtype, r, inline_math=True)

    # -- emission ----------------------------------------------------------------------------
    def emit(self, line, depth):
        if self.serial and line.startswith("SG_PARALLEL_FOR("):
            return
        if self._team_guard and line.startswith("SG_PARALLEL_FOR("):
            line = f"SG_PARALLEL_FOR(_sg_team ? {line[len('SG_PARALLEL_FOR('):-1]} : 0)"
        self.lines.append("    " * depth + line)

    def note(self, text, depth):
        """A comment saying what the pass over memory below computes."""
        self.emit(comment(text), depth)

    def loops(self, dom, axes, ivars, depth, omp=False, simd=None, plain=False) -> int:
        """Open loops over ``axes`` of ``dom``; ``simd``: sum accumulators of the innermost loop
        (``SG_SIMD_SUM``: vectorized with reassociation, which the compiler may not do by itself);
        ``plain``: no SIMD pragma on the last loop (it is not the innermost, or it carries a value
        from one iteration to the next, as a max does: ``omp simd`` would make that undefined)."""
        axes = [ax for ax in axes if not is_one(dom[ax])]  # index() never reads a size-1 axis' variable
        for ax in axes:
            if simd and ax == axes[-1]:
                self.emit(f"SG_SIMD_SUM({', '.join(simd)})", depth)
            elif self.rows is not None and ax == axes[-1] and not plain:   # restrict is lost in a parallel region
                self.emit("SG_SIMD", depth)
            if omp:
                self.emit(f"SG_PARALLEL_FOR({cint(prod(dom))})", depth)
                omp = False
            v = ivars[ax]
            lo, hi = self.bounds(dom, ax)
            self.emit(f"for (int64_t {v} = {lo}; {v} < {hi}; ++{v}) {{", depth)
            depth += 1
        return depth

    def bounds(self, dom, ax) -> tuple:
        """(first, end) of the loop over axis ``ax`` of ``dom``: this thread's rows in a row-split loop."""
        if self.rows is not None and ax == 0 and dom[0] == self.rows:
            return "_lo", "_hi"
        return 0, cint(dom[ax])

    def summed(self, dom, axes, ivars, depth, accs, body, rough=()) -> None:
        """The loops over ``axes`` of ``dom`` whose body (``body(depth, update)``, ``update(acc, value)``
        the line that adds ``value`` to accumulator ``acc``) adds to the double accumulators ``accs``;
        the innermost loop laned (``laned``)."""
        axes = [ax for ax in axes if not is_one(dom[ax])]
        if not axes:
            body(depth, lambda acc, v: f"{acc} += {v};")
            return
        lo, hi = self.bounds(dom, axes[-1])
        if len(axes) == 1:
            d = self.loops(dom, axes[:-1], ivars, depth, plain=True)
            self.laned(accs, ivars[axes[-1]], lo, hi, d, body, rough)
            self.close(d, depth)
            return
        # SEGMENTS rows of the axis next to the innermost at a time, side by side in the laned loop:
        # BatchNorm's per-channel sums read N rows of H*W 256 KB apart, and one row at a time left the
        # hardware prefetcher a new 4 KB stream to find every row (AMD EPYC Zen 4: a channel-order sum
        # at 23-40 GB/s against 60-80 with four rows at once; BatchNorm2d forward at N32 C64 32x32
        # 0.84-0.86x the time with its first sum so, C driver, alternating)
        d = self.loops(dom, axes[:-2], ivars, depth, plain=True)
        v, (jlo, jhi) = ivars[axes[-2]], self.bounds(dom, axes[-2])
        self.in_fours(v, jlo, jhi, d,
                      lambda dd, jv: self.laned(accs, ivars[axes[-1]], lo, hi, dd, body, rough, jam=(v, jv, False)),
                      lambda dd: self.laned(accs, ivars[axes[-1]], lo, hi, dd, body, rough))
        self.close(d, depth)

    def in_fours(self, w, lo, hi, depth, fours, one) -> None:
        """The rows ``w`` in [lo, hi): SEGMENTS at a time (``fours(depth, w0)``, ``w0`` the first row of
        the group, a C variable), then the last ones one at a time (``one(depth)``, ``w`` the row)."""
        w0 = f"_{w}_4"
        self.emit("{", depth)
        self.emit(f"int64_t {w0} = {lo};", depth + 1)
        self.emit(f"for (; {w0} + {SEGMENTS - 1} < {hi}; {w0} += {SEGMENTS}) {{", depth + 1)
        fours(depth + 2, w0)
        self.emit("}", depth + 1)
        self.note(f"the last rows, fewer than {SEGMENTS}", depth + 1)
        self.emit(f"for (int64_t {w} = {w0}; {w} < {hi}; ++{w}) {{", depth + 1)
        one(depth + 2)
        self.emit("}", depth + 1)
        self.emit("}", depth)

    def laned(self, accs, v, lo, hi, depth, body, rough=(), jam=None, beside=None) -> None:
        """The loop ``v`` in [lo, hi) of a body that adds to the double accumulators ``accs``, as sums in
        LANES lanes: each lane adds TERMS terms LANES apart pairwise, then into its double sum; the
        lanes are summed as a tree (``sg_lanes_sum``) and added to the accumulators; the last
        (hi - lo) mod LANES*TERMS terms in the ordinary loop (``SG_SIMD_SUM``). The laned part's order
        is the C's, whether the compiler vectorizes it or not.

        Precision: a term computed in the working precision (``(x - m)^2``, ``dy*gamma``) is added
        pairwise in it: at most 2u of the terms' magnitudes more (u = 2^-24 in float32), beside the
        u or more each term already carries. A term that is an array element as read (``x``, ``dy``)
        carries no rounding of its own, and a sum of them was exact in double: those are added in
        double (``ELEMENT``), at the old cost of a conversion per term, unless ``rough`` holds the
        accumulator (a corrected mean's first sum, ``ir.accuracy``: the correction removes its error).

        Why: an ``omp simd`` reduction of float terms into a double accumulator converts every term
        (two conversions and an extract per 16 floats on the two vector ports, 4.5 cycles), keeps one
        accumulator chain, and GCC sums its lanes one by one after the loop. LayerNorm forward+backward
        at 8192x1024 float32: 6.1-6.2 -> 5.2-5.4 ms (2 threads, Xeon), compute on cached rows 0.99 ->
        0.79 ns an element; with TERMS 2: 5.5-5.6 ms.

        ``jam = (w, w0, apart)``: the body for SEGMENTS rows at once, the outer variable ``w`` = ``w0`` +
        0 .. SEGMENTS - 1 in a block of its own each; each row's TERMS terms are added pairwise as above,
        then the rows' sums in double into the same accumulators (``summed``: the bound stays 2u), or,
        with ``apart``, each row into accumulators of its own, ``{acc}_{r}`` (the caller declares them
        and reads each: ``reduction``'s row sums).

        ``beside(depth, first, end)``: another loop's statements over the same columns, emitted in each
        block before its laned loop and before the last terms (``Fusion.skewed``: the next row's first
        pass beside this row's last)."""
        assert not (jam and beside)
        real, blk = self.real, LANES * TERMS
        segs = [(f"const int64_t {jam[0]} = {jam[1]} + {r};", r) for r in range(SEGMENTS)] if jam else [(None, 0)]
        apart = bool(jam and jam[2])
        own = (lambda a, r: f"{a}_{r}") if apart else (lambda a, r: a)
        lanes = list(dict.fromkeys(own(a, r) for _, r in segs for a in accs))

        def rows(dd, emit_body):
            for decl, r in segs:
                if decl is None:
                    emit_body(dd, r)
                    continue
                self.emit("{", dd)
                self.emit(decl, dd + 1)
                emit_body(dd + 1, r)
                self.emit("}", dd)
        self.emit("{", depth)
        d = depth + 1
        self.emit(f"int64_t _lb = {lo};", d)
        self.emit(f"if ({hi} - _lb >= {blk}) {{", d)
        for a in lanes:
            self.emit(f"double _l{a}[{LANES}] = {{0.0}};", d + 1)
        self.emit(f"for (; _lb + {blk} <= {hi}; _lb += {blk}) {{", d + 1)
        if beside:
            beside(d + 2, "_lb", f"_lb + {blk}")
        self.emit("SG_LANES", d + 2)
        self.emit(f"for (int64_t _lk = 0; _lk < {LANES}; ++_lk) {{", d + 2)
        at, read = len(self.lines), {}
        self.emit(f"for (int64_t _lj = 0; _lj < {TERMS}; ++_lj) {{", d + 3)
        self.emit(f"const int64_t {v} = _lb + {LANES}*_lj + _lk;", d + 4)

        def row(dd, r):
            def term(acc, val):
                read[acc] = bool(ELEMENT.fullmatch(val))
                return f"_t{acc}[{f'{TERMS * r} + ' if r else ''}_lj] = {val};"
            body(dd, term)
        rows(d + 4, row)
        self.emit("}", d + 3)
        self.lines[at:at] = ["    " * (d + 3) + f"{'double' if read.get(a) and a not in rough else real} "
                             f"_t{a}[{TERMS * len(segs)}];" for a in accs]
        for a in accs:
            sums = [pairwise([f"_t{a}[{TERMS * r + k}]" for k in range(TERMS)]) for _, r in segs]
            if apart:
                for (_, r), x in zip(segs, sums):
                    self.emit(f"_l{own(a, r)}[_lk] += {x};", d + 3)
                continue
            if len(sums) > 1:
                sums = [f"(double)({x})" for x in sums]
            self.emit(f"_l{a}[_lk] += {pairwise(sums)};", d + 3)
        self.emit("}", d + 2)
        self.emit("}", d + 1)
        for a in lanes:
            self.emit(f"{a} += sg_lanes_sum(_l{a}, {LANES});", d + 1)
        self.emit("}", d)
        if beside:
            beside(d, "_lb", hi)
        self.note(f"the terms past the last block of {blk}", d)
        if not jam:
            self.emit(f"SG_SIMD_SUM({', '.join(accs)})", d)
            self.emit(f"for (int64_t {v} = _lb; {v} < {hi}; ++{v}) {{", d)
            body(d + 1, lambda acc, val: f"{acc} += {val};")
            self.emit("}", d)
            self.emit("}", depth)
            return
        # the rows' last terms one row after another, the body once (not once per row: BatchNorm2d's C
        # 2,226 -> 2,058 lines, compiled in 4.7 s instead of 5.4; one row at a time, 1,076 lines and 1.8 s)
        if apart:
            for a in accs:
                self.emit(f"double _e{a}[{SEGMENTS}];", d)
        self.emit(f"for (int64_t _r = 0; _r < {SEGMENTS}; ++_r) {{", d)
        self.emit(f"const int64_t {jam[0]} = {jam[1]} + _r;", d + 1)
        for a in accs:
            self.emit(f"double _e{a}_r = 0.0;", d + 1)
        self.emit(f"SG_SIMD_SUM({', '.join(f'_e{a}_r' for a in accs)})", d + 1)
        self.emit(f"for (int64_t {v} = _lb; {v} < {hi}; ++{v}) {{", d + 1)
        body(d + 2, lambda acc, val: f"_e{acc}_r += {val};")
        self.emit("}", d + 1)
        for a in accs:
            self.emit(f"_e{a}[_r] = _e{a}_r;" if apart else f"{a} += _e{a}_r;", d + 1)
        self.emit("}", d)
        if apart:
            for a in accs:
                for _, r in segs:
                    self.emit(f"{own(a, r)} += _e{a}[{r}];", d)
        self.emit("}", depth)

    def close(self, depth, to):
        while depth > to:
            depth -= 1
            self.emit("}", depth)

    def temps(self, s, dom, ivars, depth, hoisted):
        for sym, t in getattr(s, "temps", []):
            if sym.name not in hoisted:
                self.emit(f"const {self.real} {self.cname(sym.name)} = {self.expr(t, dom, ivars)};", depth)

    def hoist(self, s, depth) -> set:
        """Temps that read no array element are computed once, before the loops."""
        out = set()
        for sym, t in getattr(s, "temps", []):
            if all(x.name in self.values or x.name in self.dims or x.name in out for x in t.free_symbols):
                self.emit(f"const {self.real} {self.cname(sym.name)} = {self.expr(t, (), [])};", depth)
                out.add(sym.name)
        return out

    def adds(self, s) -> bool:
        """Whether product ``s`` adds into what its output holds (beta 1) instead of overwriting it."""
        return s.out in self.added or id(s) in self._adds

    def element(self, s, dom, ivars, depth) -> None:
        """The per-element line of an elementwise or one-hot statement (its loops are open)."""
        self.temps(s, dom, ivars, depth, self._hoisted)
        if isinstance(s, ir.OneHot):
            idx = self.at(s.index, self.shapes[s.index], dom[:-1], ivars)
            one, zero = ("1.0F", "0.0F") if self.dtype == "float32" else ("1.0", "0.0")
            cls = "0" if is_one(dom[-1]) else ivars[len(dom) - 1]
            self.emit(f"{self.at(s.out, dom, dom, ivars)} = ({idx} == {cls}) ? {one} : {zero};",
                      depth)
        else:
            ref = self._stream_ref.get(s.out) or self.at(s.out, dom, dom, ivars)
            self.emit(f"{ref} = {self.expr(s.expr, dom, ivars)};", depth)

    def statement(self, s, depth, bound: int, ivars) -> None:
        """Emit statement ``s`` with the first ``bound`` axes of its domain already looped over."""
        if isinstance(s, (ir.Elementwise, ir.OneHot)):
            dom = tuple(s.shape)
            if s.out in self.values:  # a scalar local
                self.temps(s, (), [], depth, self._hoisted)
                self.emit(f"{self.cname(s.out)} = {self.expr(s.expr, (), [])};", depth)
                return
            inner = any(not is_one(x) for x in dom[bound:])
            d0 = self.preload([s], dom, ivars, depth, bound) if inner else depth
            d = self.loops(dom, range(bound, len(dom)), ivars, d0, omp=bound == 0)
            self.element(s, dom, ivars, d)
            self.close(d, d0)
            self.unload(d0, depth)
        elif isinstance(s, ir.Reduction):
            self.reduction(s, depth, bound, ivars)
        elif isinstance(s, ir.Expand):
            n = cint(prod(s.shape))
            self.emit(f"for (int64_t _i = 0; _i < {n}; ++_i) {self.ptr(s.out)}[_i] = {self.ptr(s.src)}[_i];", depth)
        elif isinstance(s, ir.Slice):
            if s.out in self.copies:
                self.slice_copy(s, depth)  # else a view (plan_views)
        elif isinstance(s, ir.Concat):
            self.concat(s, depth)
        elif isinstance(s, ir.Einsum):
            self.einsum(s, depth)
        elif isinstance(s, ir.Window):
            self.window(s, depth)
        elif isinstance(s, ir.WindowAdd):
            self.window_add(s, depth)
        else:  # pragma: no cover
            raise TypeError(s)

    def _acc(self, s):
        """(accumulator type, initial value, update format) of a reduction."""
        if s.kind == "sum":  # sums accumulate in double in both variants
            return "double", "0.0", "{acc} += {v};"
        return self.real, "-INFINITY", "{acc} = sg_max_%s({acc}, {v});" % ("f32" if self.dtype == "float32" else "f64")

    def _out_ref(self, s, ivars):
        dom, kept = tuple(s.src_shape), [a for a in range(len(s.src_shape)) if a not in s.axes]
        if s.out in self.values:
            return self.cname(s.out)
        if s.keepdims:
            return self.at(s.out, tuple(s.shape), dom, ivars)
        return self.at(s.out, tuple(s.shape), tuple(dom[a] for a in kept), [ivars[a] for a in kept])

    def reduction(self, s, depth, bound, ivars):
        dom, axes = tuple(s.src_shape), tuple(s.axes)
        acc_t, init, upd = self._acc(s)
        out_ref = self._out_ref(s, ivars)
        kept, _, suffix = self._kept_axes(s)
        # kept axes outside, the reduced ones inside with the innermost contiguous (a row statistic,
        # or BatchNorm's per-channel statistics over N, H, W): one register accumulator per output
        # element, double for sums, the first kept axis in parallel
        inner = bool(kept) and len(dom) - 1 in axes and bound == 0 and s.out not in self.values
        row = self._row_sum_form(s, bound)
        if row is not None:
            self._row_sums([s], dom, row[0], row[1], ivars, depth, bound == 0, [out_ref])
            return
        if suffix or inner:
            d = self.loops(dom, [a for a in kept if a >= bound], ivars, depth, omp=bound == 0 and bool(kept))
            self.emit("{", d)
            self.emit(f"{acc_t} _acc = {init};", d + 1)
            if s.kind == "sum":
                self.summed(dom, axes, ivars, d + 1, ["_acc"], self._sum_body([s], dom, ivars),
                            {"_acc"} if s.rough else ())
            else:
                d2 = self.loops(dom, axes, ivars, d + 1, plain=True)
                self.temps(s, dom, ivars, d2, self._hoisted)
                self.emit(upd.format(acc="_acc", v=self.expr(s.expr, dom, ivars)), d2)
                self.close(d2, d + 1)
            self.emit(f"{out_ref} = ({self.real})_acc;", d + 1)
            self.emit("}", d)
            self.close(d, depth)
            return
        # general: initialise the output (inside a loop over rows: this row's part), then accumulate
        # in source memory order
        if s.out in self.values:
            self.emit(f"{self.cname(s.out)} = {init};", depth)
        elif bound:
            assert bound == 1 and 0 not in axes, "a reduction inside a row loop keeps the row axis"
            row = cint(prod(tuple(s.shape)[1:]))
            self.note(f"this row of {self.cname(s.out)} starts at {init}", depth)
            self.emit(f"for (int64_t _i = 0; _i < {row}; ++_i) {self.ptr(s.out)}[{ivars[0]} * {row} + _i] = {init};",
                      depth)
            self.note(f"then takes the {s.kind} over axes {', '.join(map(str, axes))} of the row", depth)
        else:
            self.emit(f"for (int64_t _i = 0; _i < {cint(prod(s.shape))}; ++_i) {self.ptr(s.out)}[_i] = {init};", depth)
        d = self.loops(dom, range(bound, len(dom)), ivars, depth, plain=len(dom) - 1 in axes)
        self.temps(s, dom, ivars, d, self._hoisted)
        self.emit(upd.format(acc=out_ref, v=self.expr(s.expr, dom, ivars)), d)
        self.close(d, depth)

    @staticmethod
    def _kept_axes(s):
        """``(kept axes, the summed axes longer than 1, whether every kept axis longer than 1 comes
        before every such summed one)`` of reduction ``s`` (axes of length 1 are never looped over:
        they do not count)."""
        dom, axes = tuple(s.src_shape), tuple(s.axes)
        kept = [a for a in range(len(dom)) if a not in axes]
        real_kept = [a for a in kept if not is_one(dom[a])]
        real_axes = [a for a in axes if not is_one(dom[a])]
        return kept, real_axes, not real_kept or not real_axes or max(real_kept) < min(real_axes)

    def _row_sum_form(self, s, bound):
        """``(looped kept axes, the summed axis)`` when sum ``s`` runs as row sums (``_row_sums``): one
        axis summed, after every kept one, and rows to loop over; else None."""
        dom = tuple(s.src_shape)
        kept, real_axes, suffix = self._kept_axes(s)
        looped = [a for a in kept if a >= bound and not is_one(dom[a])]
        if suffix and s.kind == "sum" and len(real_axes) == 1 and looped and (bound or len(looped) > 1):
            return looped, real_axes[0]
        return None

    def reductions(self, stmts, depth, bound, ivars):
        """Sums over the same axes of the same values (``Fusion._same_sums``): one row-sums loop
        with an accumulator each when they take that form, else one after another."""
        row = self._row_sum_form(stmts[0], bound)
        if row is None or any(s.out in self.values for s in stmts):
            for s in stmts:
                self.reduction(s, depth, bound, ivars)
            return
        self._row_sums(stmts, tuple(stmts[0].src_shape), row[0], row[1], ivars, depth, bound == 0,
                       [self._out_ref(s, ivars) for s in stmts])

    def _sum_body(self, stmts, dom, ivars, accs=("_acc",)):
        """The body of sums ``stmts`` for ``summed``/``laned``: each one's temps, then its term added
        to its accumulator (``accs``, in order)."""
        def body(dd, update):
            for s, acc in zip(stmts, accs):
                self.temps(s, dom, ivars, dd, self._hoisted)
                self.emit(update(acc, self.expr(s.expr, dom, ivars)), dd)
        return body

    def _row_sums(self, stmts, dom, looped, axis, ivars, depth, omp, out_refs):
        """Sums ``stmts`` (over the same axis) over the last axis ``axis`` of each row of the kept axes
        ``looped`` (the first of them in parallel when ``omp``), each into ``out_refs``, in one loop, an
        accumulator each; SEGMENTS rows side by side (``laned`` with ``jam``, each row its own
        accumulators): BatchNorm2d's backward sums dy*xc and dy over each of a channel's N rows of H*W,
        256 KB apart, and one row at a time left the hardware prefetcher a new 4 KB stream to find per
        row (see ``summed``); the last rows, fewer than SEGMENTS, one at a time."""
        d = self.loops(dom, looped[:-1], ivars, depth, omp=omp)
        w, (wlo, whi) = ivars[looped[-1]], self.bounds(dom, looped[-1])
        lo, hi = self.bounds(dom, axis)
        accs = ["_acc"] if len(stmts) == 1 else [f"_acc{k}" for k in range(len(stmts))]
        rough = {a for a, s in zip(accs, stmts) if s.rough}
        body = self._sum_body(stmts, dom, ivars, accs)

        def fours(dd, w0):
            self.emit(f"double {', '.join(f'{a}_{r} = 0.0' for a in accs for r in range(SEGMENTS))};", dd)
            self.laned(accs, ivars[axis], lo, hi, dd, body, rough, jam=(w, w0, True))
            for r in range(SEGMENTS):
                stores = " ".join(f"{ref} = ({self.real}){a}_{r};" for ref, a in zip(out_refs, accs))
                self.emit(f"{{ const int64_t {w} = {w0} + {r}; {stores} }}", dd)

        def one(dd):
            self.emit(f"double {', '.join(f'{a} = 0.0' for a in accs)};", dd)
            self.laned(accs, ivars[axis], lo, hi, dd, body, rough)
            for ref, a in zip(out_refs, accs):
                self.emit(f"{ref} = ({self.real}){a};", dd)
        self.in_fours(w, wlo, whi, d, fours, one)
        self.close(d, depth)

    def pass_body(self, seg, dom, ivars):
        """The per-element body of a pass's statements ``seg`` at row ``ivars[0]``, as ``body(depth,
        update)`` for ``laned``/``summed`` (``update`` None: each reduction's own update): column sums
        into this chunk's partial row, row sums into ``_acc_<name>``, elementwise values stored."""
        def body(d, update=None):
            for s in seg:
                if colred(s):
                    self.temps(s, dom, ivars, d, self._hoisted)
                    ref = f"_p_{self.cname(s.out)}[{self.index(dom[1:], dom[1:], ivars[1:])}]"
                    self.emit(self._acc(s)[2].format(acc=ref, v=self.expr(s.expr, dom, ivars)), d)
                elif isinstance(s, ir.Reduction):
                    self.temps(s, dom, ivars, d, self._hoisted)
                    acc, v = f"_acc_{self.cname(s.out)}", self.expr(s.expr, dom, ivars)
                    self.emit(update(acc, v) if update else self._acc(s)[2].format(acc=acc, v=v), d)
                else:
                    self.element(s, dom, ivars, d)
        return body

    def fused(self, seg, depth, ivars):
        dom = self.domain(seg[0])
        outer = depth
        depth = pre = self.preload(seg, dom, ivars, depth, 1)
        reds = [s for s in seg if isinstance(s, ir.Reduction)]
        accs = [s for s in reds if not colred(s)]
        if accs:
            self.emit("{", depth)
            depth += 1
        for s in accs:
            acc_t, init, _ = self._acc(s)
            self.emit(f"{acc_t} _acc_{self.cname(s.out)} = {init};", depth)
        sums = [f"_acc_{self.cname(s.out)}" for s in reds if not colred(s) and s.kind == "sum"]
        simd = sums if len(sums) == len([r for r in reds if not colred(r)]) else None
        streamed = [s.out for s in seg if s.out in self._stream]
        rough = {f"_acc_{self.cname(s.out)}" for s in accs if s.rough}

        body = self.pass_body(seg, dom, ivars)
        if streamed:
            d = self.stream_loop(streamed, dom, ivars, depth)
            if simd:
                self.laned(simd, ivars[1], "_s0", "_s1", d, body, rough)
            else:
                self.emit(f"for (int64_t {ivars[1]} = _s0; {ivars[1]} < _s1; ++{ivars[1]}) {{", d)
                body(d + 1)
                self.emit("}", d)
            self.stream_close(streamed, dom, ivars, depth)
        elif simd:
            self.summed(dom, range(1, len(dom)), ivars, depth, simd, body, rough)
        else:   # (no SIMD pragma over accumulators that are not all sums: a max carries its value)
            d = self.loops(dom, range(1, len(dom)), ivars, depth, plain=bool(accs))
            body(d)
            self.close(d, depth)
        for s in accs:
            self.emit(f"{self._out_ref(s, ivars)} = ({self.real})_acc_{self.cname(s.out)};", depth)
        if accs:
            self.emit("}", depth - 1)
        self.unload(pre, outer)

    def einsum(self, s, depth, accumulated=False):
        """A contraction: one GEMM, a loop of GEMMs, or plain loops. ``accumulated``: an accumulating
        loop's output was zeroed by the caller (a sample loop around this statement)."""
        g = gemm_form(s)
        sfx = "f32" if self.dtype == "float32" else "f64"
        gemm = "sg_gemm_team" if self.team else "sg_gemm"
        if g is not None:
            ta, tb, m, n, kk, a, b, lda, ldb = g
            pa, pc, mm = self.ptr(a), self.ptr(s.out), cint(m)
            if self.rows is not None and m == self.rows:   # this thread's rows of a and of the product
                assert not ta, "a row-split product reads its rows from an untransposed operand"
                pa, pc, mm = f"{pa} + _lo*{cfactor(lda)}", f"{pc} + _lo*{cfactor(n)}", "_hi - _lo"
            beta = int(self.adds(s))
            if b in self.prepared:   # B prepared before the loop by sg_prep_b (packed, or a plain copy)
                assert not tb, "a prepared operand is read untransposed"
                self.emit(f"sg_gemm_prep_{sfx}({int(ta)}, {mm}, {cint(n)}, {cint(kk)}, {pa}, {cint(lda)}, "
                          f"{self.ptr(b)}, {beta}, {pc}, {cint(n)});", depth)
                return
            self.emit(f"{gemm}_{sfx}({int(ta)}, {int(tb)}, {mm}, {cint(n)}, {cint(kk)}, "
                      f"{pa}, {cint(lda)}, {self.ptr(b)}, {cint(ldb)}, {beta}, {pc}, {cint(n)});", depth)
            return
        lg = looped_gemm_form(s)
        if lg is not None:   # a loop of products (a batch, or a sum that accumulates into the output)
            loops, (ta, tb, m, n, kk, a, b, lda, ldb) = lg
            if any(acc for *_, acc in loops) and not accumulated:   # zero first: an empty sum (N = 0) leaves zeros
                self.emit(f"for (int64_t _i = 0; _i < {cint(prod(s.shape))}; ++_i) {self.ptr(s.out)}[_i] = 0;", depth)
            offs = {s.operands[0]: sp.Integer(0), s.operands[1]: sp.Integer(0), s.out: sp.Integer(0)}
            d = depth
            for j, (size, da, db, dc, acc) in enumerate(loops):
                if is_one(size):   # one sample of a sample loop: no loop
                    continue
                v = sp.Symbol(f"_g{j}")
                self.emit(f"for (int64_t {v} = 0; {v} < {cint(size)}; ++{v}) {{", d)
                d += 1
                offs[s.operands[0]] += v * da
                offs[s.operands[1]] += v * db
                offs[s.out] += v * dc
            beta = int(accumulated or any(acc for *_, acc in loops))
            at = {x: self.ptr(x) + ("" if offs[x] == 0 else f" + {cint(offs[x])}") for x in offs}
            self.emit(f"{gemm}_{sfx}({int(ta)}, {int(tb)}, {cint(m)}, {cint(n)}, {cint(kk)}, "
                      f"{at[a]}, {cint(lda)}, {at[b]}, {cint(ldb)}, {beta}, {at[s.out]}, {cint(n)});", d)
            self.close(d, depth)
            return
        # any other contraction: zero the output, then loop over every letter
        lhs, outl = s.subscripts.split("->")
        ops = lhs.split(",")
        size = {}
        for letters, shape in zip(ops, s.operand_shapes):
            for c, dd in zip(letters, shape):
                size[c] = dd
        letters = list(outl) + [c for c in dict.fromkeys("".join(ops)) if c not in outl]
        iv = {c: f"_{c}" for c in letters}
        dom = tuple(size[c] for c in outl)
        self.emit(f"for (int64_t _i = 0; _i < {cint(prod(s.shape))}; ++_i) {self.ptr(s.out)}[_i] = 0;", depth)
        d = depth
        for c in letters:
            self.emit(f"for (int64_t {iv[c]} = 0; {iv[c]} < {cint(size[c])}; ++{iv[c]}) {{", d)
            d += 1
        prods = []
        for name, lt, shape in zip(s.operands, ops, s.operand_shapes):
            prods.append(self.at(name, shape, tuple(shape), [iv[c] for c in lt]))
        self.emit(f"{self.at(s.out, dom, dom, [iv[c] for c in outl])} += {' * '.join(prods)};", d)
        self.close(d, depth)

    def body(self) -> list[str]:
        for n in self.cf.locals:
            self.emit(f"{self.real} {self.cname(n)};", 1)
        top = len(self.lines)   # where _sg_nt is declared once the row groups said what they stream
        ordered = [s for s in self.ordered(self.f.body) if not self.silent(s)]
        runs = self.sample_runs(ordered)
        in_runs = {id(s) for start, end, *_ in runs for s in ordered[start:end]}
        blas = [g for g in (gemm_form(s) for s in ordered if isinstance(s, ir.Einsum) and id(s) not in in_runs)
                if g is not None]
        guard = bool(blas) and not self.serial and not self.team
        if guard:
            # Where sg_gemm hands a product of 2^24 multiply-adds or more to BLAS's own threads
            # (SG_GEMM_POOL_*, the helpers): OpenMP's threads spin for milliseconds after a parallel
            # loop when the process started OpenMP before symgrad could ask for the passive policy
            # (torch imported first), and took the cores from BLAS's threads: dense 512x1024x1024 f+b
            # 15-24 ms against 12.2 with this function's element loops serial (hand NumPy 10.8). So
            # at such sizes they are serial there. Where the products run on the OpenMP team (float
            # with this file's kernel) the loops stay parallel: dense 512x1024x1024 float32 f+b 0.972x
            # with them parallel, 0.885x against the products on OpenBLAS's pool beside serial loops
            # (medians of 12 alternating pairs, bench/ab_c.py)
            big = " || ".join(dict.fromkeys(f"{cint(m * n * kk)} >= 16777216" for _, _, m, n, kk, *_ in blas))
            self.emit(f"const int _sg_team = !SG_GEMM_POOL_{self.sfx.upper()} || !({big});   "
                      "/* OpenMP loops beside products on the team, or this small */", 1)
            self.emit("(void)_sg_team;", 1)
        parts, pos = [], 0
        for start, end, dim0, internal in runs:
            parts.append(("groups", ordered[pos:start]))
            parts.append(("samples", (ordered[start:end], dim0, internal)))
            pos = end
        parts.append(("groups", ordered[pos:]))
        for kind, part in parts:
            if kind == "samples":
                self.sample_loop(*part, 1)
            else:
                self._team_guard = guard
                for how, stmts in self.channel_parts(part):
                    if how == "channels":
                        self.channel_group(stmts)
                    else:
                        self.emit_groups(self.groups(stmts))
                self._team_guard = False
        flipped = [n for n, _ in getattr(self.cf, "scratch", None) or () if n.startswith(("_wf_", "_gt_", "_wu_", "_wv_"))]
        unused = [n for n in flipped if not any(self.ptr(n) in line for line in self.lines)]
        if unused:   # planned for the float variant's gathers and Winograd products (Windows); not this one
            self.note("scratch that only the float variant's gathers and Winograd products use", 1)
            self.emit(" ".join(f"(void){self.ptr(n)};" for n in unused), 1)
        self.lines[top:top] = self.stream_flag()
        legend = self.glossary.legend()
        return (["    " + comment(legend)] if legend else []) + self.lines

    def emit_groups(self, groups):
        for group in groups:
            s0 = group[0]
            if len(group) > 1 or self.domain(s0) is not None:
                self.note(self.group_text(group), 1)
            elif isinstance(s0, ir.Einsum) and self.adds(s0):
                self.note(describe(s0, self.glossary).replace(" = ", " += ", 1)
                          + ", added to what it holds (beta 1)", 1)
            elif not (isinstance(s0, ir.Elementwise) and s0.out in self.values):
                self.note(describe(s0, self.glossary), 1)
            self._hoisted = set()
            for s in group:
                self._hoisted |= self.hoist(s, 1)
            dom = self.domain(s0)
            ivars = [f"i{a}" for a in range(8)]
            if dom is None or (len(group) == 1 and isinstance(s0, ir.Elementwise) and len(dom) == 1):
                self.statement(s0, 1, 0, ivars)
                continue
            if len(group) == 1 and isinstance(s0, ir.Elementwise) and self._flat(s0) and self.rows is None \
                    and isinstance(s0.expr, sp.Symbol) and tuple(self.shapes.get(s0.expr.name, ())) == tuple(s0.shape):
                # a copy (the cache's copy of an argument only a product reads): memcpy while small, with
                # no OpenMP region (one costs 0.4 us even when its if clause keeps it serial)
                n = cint(prod(s0.shape))
                work = f"_sg_team ? {n} : 0" if self._team_guard else n
                sfx = "f32" if self.dtype == "float32" else "f64"
                self.emit(f"sg_copy_{sfx}({self.cname(s0.out)}, {self.cname(s0.expr.name)}, {n}, {work});", 1)
                continue
            if len(group) == 1 and isinstance(s0, ir.Elementwise) and self._flat(s0) and self.rows is None:
                n = cint(prod(s0.shape))
                self.emit(f"SG_PARALLEL_FOR({n})", 1)
                self.emit(f"for (int64_t i0 = 0; i0 < {n}; ++i0) {{", 1)
                flat = "flat"
                self.temps(s0, flat, ivars, 2, self._hoisted)
                self.emit(f"{self.cname(s0.out)}[i0] = {self.expr(s0.expr, flat, ivars)};", 2)
                self.emit("}", 1)
                continue
            work = sp.Integer(0)
            for s in group:
                work = sp.Max(work, prod(self.domain(s)))
            self.row_group(group, dom, work, ivars)

    def _flat(self, s) -> bool:
        if s.out in self.views or self.reads(s) & set(self.views):
            return False
        shp = tuple(s.shape)
        return all(self.shapes.get(n, ()) in ((), shp) or n in self.values for n in self.reads(s)
                   if n in self.shapes)

