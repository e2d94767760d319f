"""C target: window reads and one-sample-at-a-time loops (a mixin of ``CBody``, as ``Fusion`` and
``Views`` are). docs/windows.md says what they compute and why they are scheduled this way.

- ``window``/``window_add``: im2col and its transpose (col2im) as loop nests, each row split at the
  tensor's edge so the copy loop has no bounds test.
- ``sample_loop``: a run of statements around a window read (a convolution's im2col, product and
  col2im; max-pooling's windows, max and mask) as ONE parallel loop over chunks of samples, each chunk
  with its own scratch slot for the run's internal values and its own partial for products that
  accumulate over the samples.
"""
from __future__ import annotations

import dataclasses

import sympy as sp

from ...codegen.printers import ccode
from ...ir import nodes as ir
from ...ir.nodes import is_one, prod
from .names import describe
from .plan import accumulates, looped_gemm_form
from .views import cint, merge_groups


INTERLEAVED = (2,)
"""Window sizes whose non-overlapping case (stride = size, dilation 1) gets its own interleaved loops."""


class Windows:
    """Mixin of ``CBody``: window statements and sample loops."""

    def _positions(self, s, lengths, outs, depth, valid, fill=None):
        """The loops of a window read (or its transpose) ``s`` (``_positions_generic``); when its last
        axis may have non-overlapping windows of 2 (pooling's default: size 2, stride 2, dilation 1),
        that case is a version of its own (``_positions_interleaved``), chosen at run time."""
        last = len(s.size) - 1
        geo = (sp.sympify(s.size[last]), sp.sympify(s.stride[last]), sp.sympify(s.dilation[last]))
        if all(g.is_Integer for g in geo):
            if geo[0] == geo[1] and geo[2] == 1 and int(geo[0]) in INTERLEAVED:
                self._positions_interleaved(s, lengths, outs, depth, valid, fill)
            else:
                self._positions_generic(s, lengths, outs, depth, valid, fill)
            return
        for K in INTERLEAVED:
            fixed = {}
            for g, want in zip(geo, (K, K, 1)):
                if g.is_Integer and g != want:
                    break
                if not g.is_Integer:
                    fixed[g] = sp.Integer(want)
            else:
                if not all(isinstance(g, sp.Symbol) for g in fixed):
                    continue
                cond = " && ".join(f"{cint(g)} == {v}" for g, v in fixed.items())
                self.emit(f"/* non-overlapping windows of {K} on the last axis: interleaved rows */", depth)
                self.emit(f"if ({cond}) {{", depth)
                one = dataclasses.replace(s, size=tuple(sp.sympify(x).xreplace(fixed) for x in s.size),
                                          stride=tuple(sp.sympify(x).xreplace(fixed) for x in s.stride),
                                          dilation=tuple(sp.sympify(x).xreplace(fixed) for x in s.dilation))
                self._positions_interleaved(one, lengths, outs, depth + 1, valid, fill)
                self.emit("}", depth)
                self.emit("else {", depth)
                self._positions_generic(s, lengths, outs, depth + 1, valid, fill)
                self.emit("}", depth)
                return
        self._positions_generic(s, lengths, outs, depth, valid, fill)

    def _outer_positions(self, s, lengths, outs, ks, os_, ps, d):
        """Open the loops over the positions of every axis but the last (source position ``p`` of
        each); ``(depth inside them, the C tests that a position lies outside the tensor)``."""
        conds = []
        for a in range(len(s.size) - 1):
            self.emit(f"for (int64_t {os_[a]} = 0; {os_[a]} < {cint(outs[a])}; ++{os_[a]}) {{", d)
            d += 1
            pos = s.stride[a] * sp.Symbol(os_[a]) + s.dilation[a] * sp.Symbol(ks[a]) - s.padding[a]
            self.emit(f"const int64_t {ps[a]} = {cint(pos)};", d)
            conds.append(f"(uint64_t){ps[a]} >= (uint64_t){cint(lengths[a])}")
        return d, conds

    def _positions_interleaved(self, s, lengths, outs, depth, valid, fill=None):
        """``_positions_generic`` for a last axis of non-overlapping windows (size = stride = K, a
        constant; dilation 1): inside each row, the window cells ``k`` of one position ``o`` are the
        innermost loop, so the row's source positions ``K o + k - padding`` run contiguously and the
        compiler vectorizes the row (a stride-K gather or scatter was scalar: 26% of max-pooling's
        backward); the positions whose window crosses the edge run per cell, as before."""
        n = len(s.size)
        last = n - 1
        ks = [f"_k{a}" for a in range(n)]
        os_ = [f"_o{a}" for a in range(n)]
        ps = [f"_p{a}" for a in range(n)]
        K = int(s.size[last])
        d = depth
        for a in range(last):
            self.emit(f"for (int64_t {ks[a]} = 0; {ks[a]} < {cint(s.size[a])}; ++{ks[a]}) {{", d)
            d += 1
        d, conds = self._outer_positions(s, lengths, outs, ks, os_, ps, d)
        k, o, p = ks[last], os_[last], ps[last]
        P, L, O = cint(s.padding[last]), cint(lengths[last]), cint(outs[last])
        if conds:   # an outer position outside the tensor: the whole row is fill
            self.emit(f"if ({' || '.join(conds)}) {{", d)
            if fill is not None:
                self.emit(f"for (int64_t {o} = 0; {o} < {O}; ++{o}) {{", d + 1)
                self.emit(f"for (int64_t {k} = 0; {k} < {K}; ++{k}) {{", d + 2)
                fill(ks, os_, d + 3)
                self.emit("}", d + 2)
                self.emit("}", d + 1)
            self.emit("continue;", d + 1)
            self.emit("}", d)
        # the positions whose K cells all lie inside: K o - padding >= 0 and K o + K - 1 - padding < L
        self.emit(f"const int64_t _A0 = {P} <= 0 ? 0 : ({P} + {K - 1}) / {K};", d)
        self.emit(f"const int64_t _B0 = {L} - {K} + {P} < 0 ? 0 : ({L} - {K} + {P}) / {K} + 1;", d)
        self.emit(f"const int64_t _A = _A0 < {O} ? _A0 : {O}, _B = _B0 < _A ? _A : (_B0 < {O} ? _B0 : {O});", d)
        self.emit(f"for (int64_t {o} = _A; {o} < _B; ++{o}) {{", d)
        self.emit(f"for (int64_t {k} = 0; {k} < {K}; ++{k}) {{", d + 1)
        self.emit(f"const int64_t {p} = {K}*{o} + {k} - {P};", d + 2)
        valid(ks, os_, ps, d + 2)
        self.emit("}", d + 1)
        self.emit("}", d)
        # the edges, cell by cell
        self.emit(f"for (int64_t {k} = 0; {k} < {K}; ++{k}) {{", d)
        for lo, hi in (("0", "_A"), ("_B", O)):
            self.emit(f"for (int64_t {o} = {lo}; {o} < {hi}; ++{o}) {{", d + 1)
            self.emit(f"const int64_t {p} = {K}*{o} + {k} - {P};", d + 2)
            self.emit(f"if ((uint64_t){p} < (uint64_t){L}) {{", d + 2)
            valid(ks, os_, ps, d + 3)
            self.emit("}", d + 2)
            if fill is not None:
                self.emit("else {", d + 2)
                fill(ks, os_, d + 3)
                self.emit("}", d + 2)
            self.emit("}", d + 1)
        self.emit("}", d)
        self.close(d, depth)

    def _positions_generic(self, s, lengths, outs, depth, valid, fill=None):
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
        d, conds = self._outer_positions(s, lengths, outs, ks, os_, ps, d)
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

    def collapsed(self, s):
        """``s`` (an elementwise statement or a reduction of one sample) with adjacent axes of its
        domain merged where every array it reads or writes holds them adjacent in memory (or holds
        neither), and no reduction separates them: a window array's output rows (H_out, W_out) become
        one loop of H_out*W_out instead of H_out loops of W_out (16 at max-pooling's benchmark shape,
        where the vector loops' prologues and epilogues cost as much as their bodies). The arrays are
        re-viewed for the merged domain (``self.views``/``self.shapes``: the caller restores them after
        emitting this statement)."""
        if not isinstance(s, (ir.Elementwise, ir.Reduction)) or s.out in self.values:
            return s
        red = isinstance(s, ir.Reduction)
        dom = tuple(s.src_shape if red else s.shape)
        r = len(dom)
        names = [n for n in self.reads(s) | {s.out} if n in self.shapes and n not in self.values and self.shapes[n]]
        lay = {}
        for n in names:
            shape = tuple(self.shapes[n])
            v = self.views.get(n)
            strides = tuple(v[2] if v is not None else self.contiguous(shape))
            if red and n == s.out and not s.keepdims:   # its axes are the kept ones, in order
                kept = [a for a in range(r) if a not in s.axes]
                if len(kept) != len(shape):
                    return s
                at = dict(zip(kept, range(len(kept))))
                lay[n] = (tuple(shape[at[a]] if a in at else sp.Integer(1) for a in range(r)),
                          tuple(strides[at[a]] if a in at else sp.Integer(0) for a in range(r)))
                continue
            if len(shape) > r:
                return s
            pad = r - len(shape)
            lay[n] = ((sp.Integer(1),) * pad + shape, (sp.Integer(0),) * pad + strides)
        arrays = {n: {a: (shape[a], st[a]) for a in range(r) if not is_one(shape[a])}
                  for n, (shape, st) in lay.items()}
        groups = merge_groups(list(range(r)), arrays, [set(s.axes)] if red else [])
        if len(groups) == r:
            return s
        new_dom = tuple(prod([dom[a] for a in g]) for g in groups)
        for n, (shape, st) in lay.items():
            new_shape = tuple(prod([shape[a] for a in g]) for g in groups)
            v = self.views.get(n)
            base, off = (v[0], v[1]) if v is not None else (self.cname(n), sp.Integer(0))
            self.views[n] = (base, off, tuple(st[g[-1]] for g in groups))
            self.shapes[n] = new_shape
        if not red:
            return dataclasses.replace(s, shape=new_dom)
        axes = tuple(A for A, g in enumerate(groups) if g[0] in s.axes)
        return dataclasses.replace(s, src_shape=new_dom, axes=axes, keepdims=True,
                                   shape=tuple(sp.Integer(1) if A in axes else d for A, d in enumerate(new_dom)))

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
        begin = len(self.lines)   # SG_BLAS_ONE_THREAD_BEGIN goes here if the run calls BLAS
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
        saved_views, saved_shapes, serial = dict(self.views), dict(self.shapes), self.serial
        self.serial = True   # inside the region: no nested parallel loop (a team of one per sample)
        for t, one in zip(run, ones):
            self._slice_views(t, one, internal, saved_shapes)
            if t in acc:
                self.views[t.out] = (f"_p_{self.cname(t.out)}", sp.Integer(0), self.contiguous(t.shape))
            self.note(describe(t, self.glossary), d + 2)
            self._hoisted = self.hoist(one, d + 2)
            if isinstance(t, ir.Einsum):
                self.einsum(one, d + 2, accumulated=t in acc)
            else:
                views, shapes = dict(self.views), dict(self.shapes)
                self.statement(self.collapsed(one), d + 2, 0, [f"i{a}" for a in range(8)])
                self.views, self.shapes = views, shapes   # the merged views served this statement only
        self.views, self.shapes, self.serial = saved_views, saved_shapes, serial
        self._hoisted = set()
        self.emit("}", d + 1)
        self.emit("}", d)
        if any("sg_gemm" in line for line in self.lines[begin:]):   # each chunk's products on its thread
            self.lines.insert(begin, "    " * d + "SG_BLAS_ONE_THREAD_BEGIN")
            self.emit("SG_BLAS_ONE_THREAD_END", d)
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
