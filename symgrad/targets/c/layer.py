"""C target for layers: kernel IR -> the statements of ``templates/c/layer.{h,c}.j2``.

General over the IR (no per-kernel code): every array is a flat buffer (or a view into one,
``c_views``) indexed by broadcasting against the iteration domain of its statement. Consecutive elementwise, row-reduction
and one-hot statements that iterate over the same leading dim and read only same-row values of each
other are fused into ONE loop over that dim (``SG_PARALLEL_FOR``: an OpenMP parallel for) and share
passes over the row (``c_fusion``); a reduction over trailing axes keeps its accumulator in a register
(``double`` for sums in both variants, vectorized by ``SG_SIMD_SUM``); reductions over the rows
accumulate per chunk of rows inside the same loop. Contractions that are a (possibly flattened) matrix product
call ``sg_gemm_*`` (CBLAS with ``SYMGRAD_CBLAS``, else loops); other einsums run as plain loops.
Each pass over memory is preceded by a comment saying what it computes in the derivation's names,
and temporaries carry the names of what they hold (``names``).
"""
from __future__ import annotations

import dataclasses

import sympy as sp

from ...ir import nodes as ir
from ...ir.nodes import is_one, prod
from ...ir.schedule import colred
from .fusion import Fusion
from .names import Glossary, comment, describe
from .plan import accumulates, gemm_form, looped_gemm_form
from .views import Views, cint
from ...codegen.printers import ccode


class CBody(Fusion, Views):
    """C statements of one function for one dtype."""

    def __init__(self, k: ir.Kernel, f: ir.Function, cf, dtype: str, views=None, serial=False, glossary=None,
                 names=None):
        self.serial = serial         # no OpenMP loops (inside a time loop, next to BLAS's threads)
        self.k, self.f, self.cf, self.dtype = k, f, cf, dtype
        self.real = "float" if dtype == "float32" else "double"
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
        self.lines.append("    " * depth + line)

    def note(self, text, depth):
        """A comment saying what the pass over memory below computes."""
        self.emit(comment(text), depth)

    def loops(self, dom, axes, ivars, depth, omp=False, simd=None) -> int:
        """Open loops over ``axes`` of ``dom``; ``simd``: sum accumulators of the innermost loop
        (``SG_SIMD_SUM``: vectorized with reassociation, which the compiler may not do by itself)."""
        axes = [ax for ax in axes if not is_one(dom[ax])]  # index() never reads a size-1 axis' variable
        for ax in axes:
            if simd and ax == axes[-1]:
                self.emit(f"SG_SIMD_SUM({', '.join(simd)})", depth)
            if omp:
                self.emit(f"SG_PARALLEL_FOR({cint(prod(dom))})", depth)
                omp = False
            v = ivars[ax]
            self.emit(f"for (int64_t {v} = 0; {v} < {cint(dom[ax])}; ++{v}) {{", depth)
            depth += 1
        return depth

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
            self.emit(f"{self.at(s.out, dom, dom, ivars)} = {self.expr(s.expr, dom, ivars)};", depth)

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

    def _positions(self, s, lengths, outs, depth, valid, fill=None):
        """The loops of a window read (or its transpose) ``s``: over the window cells ``k`` and the
        positions ``o`` (source position ``p = stride o + dilation k - padding`` per axis). The
        innermost positions are split into the range whose source lies inside the tensor, computed
        once per cell (``valid(ks, os, ps, d)``: no bounds test, so the loop vectorizes for stride 1)
        and the ranges before and after it (``fill(ks, os, d)``, or nothing); a row whose outer
        position lies outside is filled (or skipped) whole."""
        n = len(s.size)
        ks = [f"_k{a}" for a in range(n)]
        os_ = [f"_o{a}" for a in range(n)]
        ps = [f"_p{a}" for a in range(n)]
        d = depth
        for a in range(n):
            self.emit(f"for (int64_t {ks[a]} = 0; {ks[a]} < {cint(s.size[a])}; ++{ks[a]}) {{", d)
            d += 1
        last = n - 1
        shift = s.dilation[last] * sp.Symbol(ks[last]) - s.padding[last]     # p = stride o + shift
        st, L, O = cint(s.stride[last]), cint(lengths[last]), cint(outs[last])
        self.emit(f"const int64_t _sh = {cint(shift)};", d)
        self.emit(f"const int64_t _lo = -_sh <= 0 ? 0 : (-_sh + {st} - 1) / {st};   /* first o with p >= 0 */", d)
        self.emit(f"const int64_t _hi = {L} - 1 - _sh < 0 ? 0 : ({L} - 1 - _sh) / {st} + 1;   /* p < {L} */", d)
        self.emit(f"const int64_t _a = _lo < {O} ? _lo : {O}, _b = _hi < _a ? _a : (_hi < {O} ? _hi : {O});", d)
        conds = []
        for a in range(last):
            self.emit(f"for (int64_t {os_[a]} = 0; {os_[a]} < {cint(outs[a])}; ++{os_[a]}) {{", d)
            d += 1
            pos = s.stride[a] * sp.Symbol(os_[a]) + s.dilation[a] * sp.Symbol(ks[a]) - s.padding[a]
            self.emit(f"const int64_t {ps[a]} = {cint(pos)};", d)
            conds.append(f"(uint64_t){ps[a]} >= (uint64_t){cint(lengths[a])}")
        o = os_[last]
        if conds:   # an outer position outside the tensor: the whole row is fill
            self.emit(f"if ({' || '.join(conds)}) {{", d)
            if fill is not None:
                self.emit(f"for (int64_t {o} = 0; {o} < {O}; ++{o}) {{", d + 1)
                fill(ks, os_, d + 2)
                self.emit("}", d + 1)
            self.emit("continue;", d + 1)
            self.emit("}", d)
        if fill is not None:
            self.emit(f"for (int64_t {o} = 0; {o} < _a; ++{o}) {{", d)
            fill(ks, os_, d + 1)
            self.emit("}", d)
        self.emit(f"for (int64_t {o} = _a; {o} < _b; ++{o}) {{", d)
        self.emit(f"const int64_t {ps[last]} = {cint(s.stride[last] * sp.Symbol(o))} + _sh;", d + 1)
        valid(ks, os_, ps, d + 1)
        self.emit("}", d)
        if fill is not None:
            self.emit(f"for (int64_t {o} = _b; {o} < {O}; ++{o}) {{", d)
            fill(ks, os_, d + 1)
            self.emit("}", d)
        self.close(d, depth)

    def window(self, s, depth):
        """``u[lead, k, o] = x[lead, stride o + dilation k - padding]`` (``fill`` outside): im2col."""
        n = len(s.size)
        lead, lengths = tuple(s.src_shape[:-n]), tuple(s.src_shape[-n:])
        outs = tuple(s.shape[-n:])
        fill = {sp.oo: "INFINITY", -sp.oo: "-INFINITY"}.get(s.fill) or ccode(s.fill, self.dtype, {})
        self.emit(f"SG_PARALLEL_FOR({cint(prod(s.shape))})", depth)
        self.emit(f"for (int64_t _l = 0; _l < {cint(prod(lead))}; ++_l) {{", depth)
        src = f"{self.ptr(s.src)} + _l * {cint(prod(lengths))}"
        dst = f"{self.ptr(s.out)} + _l * {cint(prod(tuple(s.size) + outs))}"
        self.emit(f"const {self.real} *restrict _src = {src};", depth + 1)
        self.emit(f"{self.real} *restrict _dst = {dst};", depth + 1)
        cells = tuple(s.size) + outs

        def valid(ks, os_, ps, d):
            self.emit(f"_dst[{self.index(cells, cells, ks + os_)}] = _src[{self.index(lengths, lengths, ps)}];", d)

        def filler(ks, os_, d):
            self.emit(f"_dst[{self.index(cells, cells, ks + os_)}] = {fill};", d)
        self._positions(s, lengths, outs, depth + 1, valid, filler)
        self.emit("}", depth)

    def window_add(self, s, depth):
        """The transpose of ``window`` (col2im): zero ``dx``, then add each window cell at the position
        it was read from; rows of the leading axes are independent, so they run in parallel."""
        n = len(s.size)
        lengths = tuple(s.shape[-n:])
        lead = tuple(s.shape[:-n])
        cells = tuple(s.src_shape[-2 * n:])
        outs = cells[n:]
        self.emit(f"SG_PARALLEL_FOR({cint(prod(s.src_shape))})", depth)
        self.emit(f"for (int64_t _l = 0; _l < {cint(prod(lead))}; ++_l) {{", depth)
        self.emit(f"const {self.real} *restrict _src = {self.ptr(s.src)} + _l * {cint(prod(cells))};", depth + 1)
        self.emit(f"{self.real} *restrict _dst = {self.ptr(s.out)} + _l * {cint(prod(lengths))};", depth + 1)
        self.emit(f"for (int64_t _i = 0; _i < {cint(prod(lengths))}; ++_i) _dst[_i] = 0;", depth + 1)

        def valid(ks, os_, ps, d):
            self.emit(f"_dst[{self.index(lengths, lengths, ps)}] += _src[{self.index(cells, cells, ks + os_)}];", d)
        self._positions(s, lengths, outs, depth + 1, valid)
        self.emit("}", depth)

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
        kept = [a for a in range(len(dom)) if a not in axes]
        acc_t, init, upd = self._acc(s)
        out_ref = self._out_ref(s, ivars)
        suffix = all(a >= len(kept) for a in axes) and kept == list(range(len(kept)))
        # kept axes outside, the reduced ones inside with the innermost contiguous (a row statistic,
        # or BatchNorm's per-channel statistics over N, H, W): one register accumulator per output
        # element, double for sums, the first kept axis in parallel
        inner = bool(kept) and len(dom) - 1 in axes and bound == 0 and s.out not in self.values
        if suffix or inner:
            d = self.loops(dom, [a for a in kept if a >= bound], ivars, depth, omp=bound == 0 and bool(kept))
            self.emit("{", d)
            self.emit(f"{acc_t} _acc = {init};", d + 1)
            d2 = self.loops(dom, axes, ivars, d + 1, simd=["_acc"] if s.kind == "sum" else None)
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
        d = self.loops(dom, range(bound, len(dom)), ivars, depth)
        self.temps(s, dom, ivars, d, self._hoisted)
        self.emit(upd.format(acc=out_ref, v=self.expr(s.expr, dom, ivars)), d)
        self.close(d, depth)

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
        d = self.loops(dom, range(1, len(dom)), ivars, depth, simd=sums if len(sums) == len(
            [r for r in reds if not colred(r)]) else None)
        for s in seg:
            if colred(s):
                self.temps(s, dom, ivars, d, self._hoisted)
                ref = f"_p_{self.cname(s.out)}[{self.index(dom[1:], dom[1:], ivars[1:])}]"
                self.emit(self._acc(s)[2].format(acc=ref, v=self.expr(s.expr, dom, ivars)), d)
            elif isinstance(s, ir.Reduction):
                self.temps(s, dom, ivars, d, self._hoisted)
                self.emit(self._acc(s)[2].format(acc=f"_acc_{self.cname(s.out)}", v=self.expr(s.expr, dom, ivars)), d)
            else:
                self.element(s, dom, ivars, d)
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
        if g is not None:
            ta, tb, m, n, kk, a, b, lda, ldb = g
            self.emit(f"sg_gemm_{sfx}({int(ta)}, {int(tb)}, {cint(m)}, {cint(n)}, {cint(kk)}, "
                      f"{self.ptr(a)}, {cint(lda)}, {self.ptr(b)}, {cint(ldb)}, 0, {self.ptr(s.out)}, {cint(n)});", depth)
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
            self.emit(f"sg_gemm_{sfx}({int(ta)}, {int(tb)}, {cint(m)}, {cint(n)}, {cint(kk)}, "
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

    # -- one sample at a time ----------------------------------------------------------------
    def per_sample(self, s):
        """``(leading dim, statement for one sample)`` when ``s`` can run one slice of its leading
        axis at a time: a window read or its transpose over a batch, a product looped over the batch
        (independent or accumulating), an elementwise statement, a reduction that keeps the leading
        axis or an inserted axis over a batch; else None."""
        one = sp.Integer(1)
        if isinstance(s, (ir.Window, ir.WindowAdd)):
            n = len(s.size)
            lead = tuple(s.src_shape[:-n]) if isinstance(s, ir.Window) else tuple(s.shape[:-n])
            if not lead or is_one(lead[0]):
                return None
            return lead[0], dataclasses.replace(s, shape=(one,) + tuple(s.shape[1:]),
                                                src_shape=(one,) + tuple(s.src_shape[1:]))
        if isinstance(s, ir.Einsum):
            lg = looped_gemm_form(s)
            if lg is None:
                return None
            size, da, db, dc, _ = lg[0][0]
            shapes = [((one,) + tuple(sh[1:])) if d else tuple(sh) for sh, d in zip(s.operand_shapes, (da, db))]
            out = ((one,) + tuple(s.shape[1:])) if dc else tuple(s.shape)
            return size, dataclasses.replace(s, shape=out, operand_shapes=tuple(shapes))
        if isinstance(s, ir.Elementwise) and len(s.shape) >= 2 and not is_one(s.shape[0]) \
                and s.out not in self.values:
            return s.shape[0], dataclasses.replace(s, shape=(one,) + tuple(s.shape[1:]))
        if isinstance(s, ir.Reduction) and len(s.src_shape) >= 2 and 0 not in s.axes and not is_one(s.src_shape[0]):
            return s.src_shape[0], dataclasses.replace(s, shape=(one,) + tuple(s.shape[1:]),
                                                       src_shape=(one,) + tuple(s.src_shape[1:]))
        if isinstance(s, ir.Expand) and 0 not in s.axes and len(self.shapes[s.src]) >= 1 \
                and not is_one(s.shape[0]) and self.shapes[s.src][0] == s.shape[0]:
            return s.shape[0], dataclasses.replace(s, shape=(one,) + tuple(s.shape[1:]))
        return None

    def sample_runs(self, body) -> list:
        """Runs of consecutive statements of ``body`` (ordered) that share one loop over the samples
        because one of them reads windows (a convolution's im2col, product and col2im; max-pooling's
        windows and their maximum): ``[(start, end, dim0, internal)]``. The values only the run reads
        live in one sample's slot (cache-resident, never a full-size pass over memory)."""
        runs, i = [], 0
        args = {a.name for a in self.cf.args}
        while i < len(body):
            j, dim0 = i, None
            while j < len(body):
                ps = self.per_sample(body[j])
                if ps is None or (dim0 is not None and ps[0] != dim0):
                    break
                dim0 = ps[0]
                j += 1
            run = body[i:j]
            later = set()
            for t in body[j:]:
                later |= self.reads(t)
            written = {t.out for t in run}
            internal = {n for n in written if n not in args and n not in later and n not in self.f.returns
                        and n not in self.views}
            touched = set()
            for t in run:
                touched |= self.reads(t) | {t.out}
            windows = any(isinstance(t, (ir.Window, ir.WindowAdd)) for t in run)
            if len(run) >= 2 and internal and windows and not (touched & set(self.views)):
                runs.append((i, j, dim0, internal))
                i = j
            else:
                i = max(j, i + 1)
        return runs

    def _slice_views(self, t, one, internal, full_shapes):
        """Views of ``t``'s arrays for one sample: full arrays at their ``_s`` slice, values internal
        to the run at slot 0; arrays without the sample axis (weights, accumulators) unchanged."""
        if isinstance(t, ir.Einsum):
            pairs = list(zip(t.operands, one.operand_shapes)) + [(t.out, one.shape)]
        elif isinstance(t, (ir.Window, ir.WindowAdd)):
            pairs = [(t.src, one.src_shape), (t.out, one.shape)]
        else:
            pairs = [(t.out, one.shape)] + [(n, full_shapes[n]) for n in ir.reads(t) if n in full_shapes]
        for name, shape in pairs:
            full = tuple(full_shapes[name])
            if isinstance(t, (ir.Elementwise, ir.Reduction, ir.Expand)) and name != t.out:
                # an operand broadcast (right-aligned) into the statement's domain: sliced only when
                # it carries the sample axis itself
                dom = tuple(t.src_shape) if isinstance(t, ir.Reduction) else tuple(t.shape)
                if isinstance(t, ir.Expand):
                    dom = full
                if len(full) != len(dom) or is_one(full[0]):
                    continue
                shape = (sp.Integer(1),) + full[1:]
            if tuple(shape) == full:
                continue
            off = (sp.Symbol("_c") if name in internal else sp.Symbol("_s")) * prod(full[1:])   # a slot per chunk
            self.views[name] = (self.cname(name), off, self.contiguous(shape))
            self.shapes[name] = tuple(shape)

    def sample_loop(self, run, dim0, internal, depth):
        """Emit ``run`` one sample at a time (``per_sample``), the samples split into one chunk per
        thread: ONE parallel region per run (a barrier per statement would cost more than the work
        when another library's OpenMP threads spin on the same cores). Each chunk keeps the values
        internal to the run in its own slot and accumulates products into its own partial output,
        summed after the region; BLAS calls inside run single-threaded (no nested parallelism)."""
        acc = [t for t in run if isinstance(t, ir.Einsum) and accumulates(t)]
        self.note(f"for each of the {dim0} samples, in one chunk of samples per thread: "
                  f"{'; '.join(describe(t, self.glossary, short=True) for t in run)}", depth)
        work = sp.Integer(0)
        for t in run:
            work += prod(t.shape)
        self.emit("{", depth)
        d = depth + 1
        self.emit(f"const int64_t _nc = sg_chunks_of({cint(dim0)});", d)
        self.emit(f"SG_PARALLEL_FOR({cint(work)})", d)
        self.emit("for (int64_t _c = 0; _c < _nc; ++_c) {", d)
        for t in acc:
            size = cint(prod(t.shape))
            self.emit(f"{self.real} *restrict _p_{self.cname(t.out)} = {self.ptr('_part_' + t.out)} + _c * {size};",
                      d + 1)
            self.emit(f"for (int64_t _i = 0; _i < {size}; ++_i) _p_{self.cname(t.out)}[_i] = 0;", d + 1)
        self.emit(f"for (int64_t _s = _c * {cint(dim0)} / _nc; _s < (_c + 1) * {cint(dim0)} / _nc; ++_s) {{", d + 1)
        ones = [self.per_sample(t)[1] for t in run]   # before any view changes a shape
        saved_views, saved_shapes = dict(self.views), dict(self.shapes)
        for t, one in zip(run, ones):
            self._slice_views(t, one, internal, saved_shapes)
            if t in acc:
                self.views[t.out] = (f"_p_{self.cname(t.out)}", sp.Integer(0), self.contiguous(t.shape))
            self.note(describe(t, self.glossary), d + 2)
            self._hoisted = self.hoist(one, d + 2)
            if isinstance(t, ir.Einsum):
                self.einsum(one, d + 2, accumulated=t in acc)
            else:
                self.statement(one, d + 2, 0, [f"i{a}" for a in range(8)])
        self.views, self.shapes = saved_views, saved_shapes
        self._hoisted = set()
        self.emit("}", d + 1)
        self.emit("}", d)
        for t in acc:
            self.note(f"{self.cname(t.out)} = the sum of the chunks' partial products", d)
            size = cint(prod(t.shape))
            self.emit(f"for (int64_t _i = 0; _i < {size}; ++_i) {{", d)
            self.emit("double _acc = 0.0;", d + 1)
            self.emit(f"for (int64_t _k = 0; _k < _nc; ++_k) _acc += {self.ptr('_part_' + t.out)}[_k * {size} + _i];",
                      d + 1)
            self.emit(f"{self.ptr(t.out)}[_i] = ({self.real})_acc;", d + 1)
            self.emit("}", d)
        self.emit("}", depth)

    def body(self) -> list[str]:
        for n in self.cf.locals:
            self.emit(f"{self.real} {self.cname(n)};", 1)
        ordered = [s for s in self.ordered(self.f.body) if not self.silent(s)]
        runs = self.sample_runs(ordered)
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
                self.emit_groups(self.groups(part))
        legend = self.glossary.legend()
        return (["    " + comment(legend)] if legend else []) + self.lines

    def emit_groups(self, groups):
        for group in groups:
            s0 = group[0]
            if len(group) > 1 or self.domain(s0) is not None:
                self.note(self.group_text(group), 1)
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
            if len(group) == 1 and isinstance(s0, ir.Elementwise) and self._flat(s0):
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

