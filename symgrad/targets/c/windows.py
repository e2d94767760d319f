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
import re

import sympy as sp

from ...codegen.printers import ccode
from ...ir import nodes as ir
from ...ir.nodes import is_one, prod
from .names import describe
from .plan import (accumulates, gathered_fold, looped_gemm_form, prepared_a_size, winograd_grad_work,
                   winograd_sizes, winograd_window)
from .fusion import LANES
from .views import cfactor, cint, merge_groups


BLOCK_ROWS = 128
"""Rows of a convolution's window array per block of channels (``Windows._channel_blocks``): one k-block
of the float product kernel (SG_MK_KB), 512 KB of window rows at 32x32 outputs."""

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
        backward); the positions whose window crosses the edge run per cell, as before. When the
        windows of a 2-d read tile the tensor exactly (``_tiled_rows``, a version chosen at run time
        unless the shapes decide it), its rows go in source order with no edge to test."""
        if len(s.size) == 2:
            tile = self._tests([(s.stride[0], s.size[0]), (s.dilation[0], 1), (s.padding[0], 0),
                                (s.padding[1], 0), (lengths[0], outs[0] * s.size[0]),
                                (lengths[1], outs[1] * s.size[1])])
            if tile == "":
                self._tiled_rows(s, lengths, outs, depth, valid)
                return
            if tile is not None:
                self.emit(f"if ({tile}) {{", depth)
                self._tiled_rows(s, lengths, outs, depth + 1, valid)
                self.emit("}", depth)
                self.emit("else {", depth)
                self._edged_rows(s, lengths, outs, depth + 1, valid, fill)
                self.emit("}", depth)
                return
        self._edged_rows(s, lengths, outs, depth, valid, fill)

    def _tiled_rows(self, s, lengths, outs, depth, valid):
        """The loops of a 2-d window read (or its transpose) whose windows tile the tensor exactly
        (stride = size, dilation 1, no padding, lengths = outputs x size; the last size K a constant):
        one loop over the source rows ``p0`` in order (window row ``k0 = p0 % K0`` of output row
        ``o0 = p0 / K0``), inside it the row's positions with their K cells innermost, vectorized with
        interleaved loads or stores. ``_edged_rows`` spends its bounds arithmetic and its two empty edge
        loops on every row, and with 2x2 windows a row is only W_out (16) positions: max-pooling's
        backward at N32 C64 32x32 (its window array and fold) took 0.68-0.77x the time on one and two
        threads of an AMD EPYC (Zen 4), medians of 41 alternating pairs in a C driver, the same values
        (docs/bench-log.md, fourteenth session)."""
        K0, K = cint(s.size[0]), int(s.size[1])
        L0, O = cint(lengths[0]), cint(outs[1])
        self.emit(f"for (int64_t _p0 = 0; _p0 < {L0}; ++_p0) {{", depth)
        self.emit(f"const int64_t _k0 = _p0 % {K0}, _o0 = _p0 / {K0};", depth + 1)
        self.emit(f"for (int64_t _o1 = 0; _o1 < {O}; ++_o1) {{", depth + 1)
        self.emit(f"for (int64_t _k1 = 0; _k1 < {K}; ++_k1) {{", depth + 2)
        self.emit(f"const int64_t _p1 = {K}*_o1 + _k1;", depth + 3)
        valid(["_k0", "_k1"], ["_o0", "_o1"], ["_p0", "_p1"], depth + 3)
        self.emit("}", depth + 2)
        self.emit("}", depth + 1)
        self.emit("}", depth)

    def _edged_rows(self, s, lengths, outs, depth, valid, fill=None):
        """``_positions_interleaved``'s general loops: the rows of every window cell of the outer axes,
        each split into the positions whose cells all lie inside and the edges, cell by cell."""
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
        # windows that tile the tensor exactly (stride = size, dilation 1, no padding, length = outputs x
        # size) write every cell once: stored, with no zeroing pass before (max-pooling backward at
        # N32 C64 32x32: 1.23 -> 1.11-1.14 ms)
        tile = [(st, k) for st, k in zip(s.stride, s.size)] + [(dl, 1) for dl in s.dilation]
        tile += [(p, 0) for p in s.padding] + [(L, o * k) for L, o, k in zip(lengths, outs, s.size)]
        test = self._tests(tile)
        d = depth + 1
        for op in (("=", "+=") if test else ("=",) if test == "" else ("+=",)):
            if test:
                self.emit(f"if ({test}) {{" if op == "=" else "else {", depth + 1)
                d = depth + 2
            if op == "+=":
                self.emit(f"for (int64_t _i = 0; _i < {cint(prod(lengths))}; ++_i) _dst[_i] = 0;", d)

            def valid(ks, os_, ps, dd, op=op):
                self.emit(f"_dst[{self.index(lengths, lengths, ps)}] {op} _src[{self.index(cells, cells, ks + os_)}];", dd)
            self._positions(s, lengths, outs, d, valid)
            if test:
                self.emit("}", depth + 1)
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

    def _layout(self, s):
        """``(is a reduction, domain, {array: (shape, strides) over the whole domain})`` of an
        elementwise statement or a reduction ``s``: every array it reads or writes at full rank, size
        1 and stride 0 on the axes it does not vary along (broadcast, or reduced for the output);
        None for any other statement."""
        if not isinstance(s, (ir.Elementwise, ir.Reduction)) or s.out in self.values:
            return None
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
                    return None
                at = dict(zip(kept, range(len(kept))))
                lay[n] = (tuple(shape[at[a]] if a in at else sp.Integer(1) for a in range(r)),
                          tuple(strides[at[a]] if a in at else sp.Integer(0) for a in range(r)))
                continue
            if len(shape) > r:
                return None
            pad = r - len(shape)
            lay[n] = ((sp.Integer(1),) * pad + shape, (sp.Integer(0),) * pad + strides)
        return red, dom, lay

    def _reviewed(self, s, red, dom, lay, groups):
        """``s`` over new axes, each a group of its domain's axes (in ``groups``' order; a group of
        several, adjacent in every array, merged into one), its arrays re-viewed to match."""
        for n, (shape, st) in lay.items():
            v = self.views.get(n)
            base, off = (v[0], v[1]) if v is not None else (self.cname(n), sp.Integer(0))
            self.views[n] = (base, off, tuple(st[g[-1]] for g in groups))
            self.shapes[n] = tuple(prod([shape[a] for a in g]) for g in groups)
        new_dom = tuple(prod([dom[a] for a in g]) for g in groups)
        if not red:
            return dataclasses.replace(s, shape=new_dom)
        axes = tuple(A for A, g in enumerate(groups) if g[0] in s.axes)
        return dataclasses.replace(s, src_shape=new_dom, axes=axes, keepdims=True,
                                   shape=tuple(sp.Integer(1) if A in axes else d for A, d in enumerate(new_dom)))

    def interleaved(self, s, window_rank):
        """``s``, an elementwise statement or a reduction over a window array's domain (lead, cells
        k, outputs o: ``window_rank`` = (len(lead), number of window axes)), with its loops in the
        order lead, o_0, k_0, o_1, k_1, ...: each window cell beside its output position, so that with
        windows that tile the tensor (stride = size) the innermost loops walk its rows in order (a
        fixed size 2 is unrolled and the loop over o vectorized with interleaved loads and stores).
        Arrays re-viewed as ``collapsed`` does; None when ``s`` is not over such a domain."""
        found = self._layout(s)
        L, n = window_rank
        if found is None or len(found[1]) != L + 2 * n:
            return None
        red, dom, lay = found
        order = list(range(L)) + [x for a in range(n) for x in (L + n + a, L + a)]
        if red and s.kind == "sum":
            # a sum keeps the last output axis innermost: the cells are added into the output row by
            # row (vectorized), not four at a time into a double accumulator of their own (max-pooling's
            # mask count, when it read x through the view: backward 3.0 ms that way, 1.5 ms this way)
            order = list(range(L)) + [L + n + a for a in range(n - 1)] + [L + a for a in range(n)] + [L + 2 * n - 1]
        return self._reviewed(s, red, dom, lay, [[a] for a in order])

    def collapsed(self, s):
        """``s`` (an elementwise statement or a reduction of one sample) with adjacent axes of its
        domain merged where every array it reads or writes holds them adjacent in memory (or holds
        neither), and no reduction separates them: a window array's output rows (H_out, W_out) become
        one loop of H_out*W_out instead of H_out loops of W_out (16 at max-pooling's benchmark shape,
        where the vector loops' prologues and epilogues cost as much as their bodies). The arrays are
        re-viewed for the merged domain (``self.views``/``self.shapes``: the caller restores them after
        emitting this statement)."""
        found = self._layout(s)
        if found is None:
            return s
        red, dom, lay = found
        r = len(dom)
        arrays = {n: {a: (shape[a], st[a]) for a in range(r) if not is_one(shape[a])}
                  for n, (shape, st) in lay.items()}
        groups = merge_groups(list(range(r)), arrays, [set(s.axes)] if red else [])
        if len(groups) == r:
            return s
        return self._reviewed(s, red, dom, lay, groups)

    def _slice_views(self, t, one, internal, full_shapes, per=1):
        """Views of ``t``'s arrays for one slice (``per`` = 1: a sample; 2: a sample's channel): full
        arrays at their ``_s`` slice, values internal to the run at their chunk's slot; arrays without
        the sample axis (weights, accumulators) unchanged."""
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
                shape = (sp.Integer(1),) * per + full[per:]
            if tuple(shape) == full:
                continue
            # internal values: a slot per chunk; a slice of a full array at _s
            off = sp.Symbol("_s") * prod(full[per:])
            if name in internal:
                # (sample, channel) slices: the slot of the chunk's first slice (the chunks outnumber
                # the samples when N < 16; adjacent slots of a few KB measured 1.04 ms against 0.88 for
                # max-pooling's backward)
                off = (sp.Symbol("_c") if per == 1 else sp.Symbol("_c0")) * prod(full[per:])
            self.views[name] = (self.cname(name), off, self.contiguous(shape))
            self.shapes[name] = tuple(shape)

    @staticmethod
    def _tests(pairs):
        """The C test that every ``(a, b)`` of ``pairs`` is equal at run time: ``""`` when all are
        equal already, None when one pair never is."""
        conds = []
        for a, b in pairs:
            a, b = sp.sympify(a), sp.sympify(b)
            if sp.simplify(a - b) == 0:
                continue
            if (a - b).is_number:
                return None
            conds.append(f"{cint(a)} == {cint(b)}")
        return " && ".join(dict.fromkeys(conds))

    @staticmethod
    def _cell_kind(s, wdom, lead):
        """How statement ``s`` joins a loop nest over the outputs of a window domain ``wdom`` (``lead``
        axes, the cell axes, the output axes) whose cells are unrolled (``_cell_nest``): "cells" (an
        elementwise statement over the whole domain: max-pooling's mask), "reduce" (a reduction over
        exactly the cell axes: its maximum, the count of maxima, average pooling's sum), "outs" (an
        elementwise statement over the lead and output axes); None for any other."""
        wdom = tuple(wdom)
        n = (len(wdom) - lead) // 2
        short = wdom[:lead] + wdom[lead + n:]
        if isinstance(s, ir.Elementwise):
            if tuple(s.shape) == wdom:
                return "cells"
            if tuple(s.shape) in (short, wdom[:lead] + (sp.Integer(1),) * n + wdom[lead + n:]):
                return "outs"
        if isinstance(s, ir.Reduction) and tuple(s.src_shape) == wdom and set(s.axes) == set(range(lead, lead + n)):
            return "reduce"
        return None

    def _direct_windows(self, run, internal):
        """The window statements of ``run`` that need no array of their own, when nothing is padded:

        - a window read whose every reader in the run is a reduction (max-pooling's maximum, average
          pooling's sum), or a statement of the nest over its outputs (``_cell_kind``: the backward's
          count of maxima and its mask), reads the source through a strided view;
        - a fold (col2im) of windows that tile its output exactly (stride = size, length = outputs x
          size), whose values only it reads and one elementwise statement of that nest writes: that
          statement writes the output through the view instead (each element belongs to one window).

        Only for windows of 2 with stride 2 (pooling's default; ``INTERLEAVED``), which the version fixes
        as constants, so the loops over a window's cells are unrolled and the one over its outputs
        vectorized (``_cell_nest``). Measured at N32 C64 32x32 (borrow): max-pooling forward 0.48 ->
        0.23 ms. The backward's mask and fold went through window arrays while each statement ran a
        pass of its own: reading x through the view in such a pass (1.9 ms), or writing dx through it
        (1.5 ms), was slower than the arrays (1.2 ms). In one nest (a C driver on the AMD EPYC, two
        threads, alternating): max-pooling backward 1.15-1.20 -> 0.37-0.41 ms, average pooling forward
        0.72 -> 0.22-0.27 ms and backward 0.58-0.65 -> 0.25-0.38 ms.
        ``({value name: (window statement, array the view is on)}, [(a, b) that must be equal],
        {symbol: its constant}, window domain)`` or None."""
        direct, pairs, wdom = {}, [], None

        def fits(dom, lead):   # one window domain for every view of the run
            return wdom is None or (tuple(dom) == wdom[0] and lead == wdom[1])

        for t in run:
            if isinstance(t, ir.Window) and t.out in internal:
                lead = len(t.src_shape) - len(t.size)
                readers = [u for u in run if t.out in self.reads(u)]
                if not readers or not (all(isinstance(u, ir.Reduction) for u in readers)
                                       or all(self._cell_kind(u, t.shape, lead) for u in readers)):
                    continue
                more, view = [(p, 0) for p in t.padding], (t.out, t, t.src)
            elif isinstance(t, ir.WindowAdd) and t.src in internal and t.out not in internal:
                lead = len(t.shape) - len(t.size)
                n = len(t.size)
                readers = [u for u in run if t.src in self.reads(u)]
                writer = [u for u in run if u.out == t.src]
                if readers != [t] or len(writer) != 1 or self._cell_kind(writer[0], t.src_shape, lead) != "cells":
                    continue
                more = [(p, 0) for p in t.padding] + [(g, st) for g, st in zip(t.size, t.stride)]
                more += [(t.shape[lead + a], sp.sympify(t.stride[a]) * t.src_shape[lead + n + a]) for a in range(n)]
                view = (t.src, t, t.out)
            else:
                continue
            dom = tuple(t.shape if isinstance(t, ir.Window) else t.src_shape)
            if not fits(dom, lead) or self._tests(pairs + more) is None:
                continue
            direct[view[0]], pairs, wdom = (view[1], view[2]), pairs + more, (dom, lead)
        if not direct:
            return None
        fixed = {}   # the version's constants: windows of 2, stride 2, dilation 1 (INTERLEAVED)
        for t, _ in direct.values():
            for g, want in [(x, 2) for x in t.size + t.stride] + [(x, 1) for x in t.dilation]:
                g = sp.sympify(g)
                if g.is_Integer:
                    if g != want:
                        return None
                elif not isinstance(g, sp.Symbol) or fixed.setdefault(g, sp.Integer(want)) != want:
                    return None
        return direct, pairs, fixed, wdom

    def _cell_nest(self, stmts, ones, run, internal, wdom, lead, depth):
        """Statements ``stmts`` of a sample loop (``ones``: each for one slice, its arrays viewed) as ONE
        loop nest over the lead and output axes of the window domain ``wdom`` (one slice's, the cells
        constants), the innermost vectorized, each window cell a block of its own inside. Per output
        position: the elements the cell statements read are loaded once into locals (a store between
        two loads of the same x keeps the compiler from merging them, and the second load, a group
        with a gap, left the whole loop to the scalar epilogue); a reduction over the cells adds them
        into a local; an elementwise statement over the cells computes each cell into a local and
        stores it (through a strided view: the fold's output itself); one over the outputs computes
        once. Only what something after the nest reads is stored. With max-pooling's 2x2 windows each
        iteration reads the four cells of 16 windows from two rows of x, counts the maxima and writes
        the two rows of dx: one pass over the slice instead of four (window copy, count, mask, fold)."""
        r = len(wdom)
        n = (r - lead) // 2
        iv = [f"i{a}" for a in range(r)]
        cells = list(range(lead, lead + n))
        looped = [a for a in list(range(lead)) + list(range(lead + n, r)) if not is_one(wdom[a])]
        members = {id(s) for s in stmts}
        later = set()
        for u in run:
            if id(u) not in members:
                later |= self.reads(u)
        kinds = [self._cell_kind(one, wdom, lead) for one in ones]
        index = {a.name for a in self.k.inputs if a.kind == "index"}
        written = {s.out for s in stmts}
        loads = {}   # array read in the domain's frame -> whether it varies over the cells
        for one, kind in zip(ones, kinds):
            if kind == "outs":
                continue   # its own frame: read where it is computed
            for nm in sorted(self.reads(one)):
                shape = tuple(self.shapes.get(nm, ()))
                if nm in written or nm in index or nm in self.values or not shape or len(shape) > r:
                    continue
                full = (sp.Integer(1),) * (r - len(shape)) + shape
                loads[nm] = any(not is_one(full[a]) for a in cells)
        hoisted = set()
        for one in ones:
            hoisted |= self.hoist(one, depth)
        self._hoisted = hoisted
        self.note(f"one pass over the outputs, the {' x '.join(cint(wdom[a]) for a in cells)} cells of each window "
                  f"unrolled (Windows._cell_nest): {'; '.join(describe(s, self.glossary) for s in stmts)}", depth)
        points = [()]
        for a in cells:
            points = [p + (k,) for p in points for k in range(int(wdom[a]))]

        def position(d):   # the loads and statements at one output position
            saved_row, per_cell = dict(self._row), {}   # per_cell: name -> C local array, one element a cell

            def each_cell(emit_cell):
                for k, p in enumerate(points):
                    self._row.update({nm: f"{arr}[{k}]" for nm, arr in per_cell.items()})
                    at = len(self.lines)
                    self.emit("{", d)
                    self.emit("const int64_t " + ", ".join(f"{iv[a]} = {c}" for a, c in zip(cells, p)) + ";", d + 1)
                    emit_cell(d + 1, k)
                    self.emit("}", d)
                    body = self.lines[at + 2:-1]
                    if not any(re.search(rf"\b{iv[a]}\b", line) for line in body for a in cells):
                        self.lines[at:] = [line[4:] for line in body]   # no cell index read: no block
                for nm in per_cell:
                    self._row.pop(nm, None)
            for nm, varies in loads.items():
                local = f"_r_{self.cname(nm)}"
                if varies:
                    self.emit(f"{self.real} {local}[{len(points)}];", d)
                    each_cell(lambda dd, k, local=local, nm=nm: self.emit(
                        f"{local}[{k}] = {self.at(nm, self.shapes[nm], wdom, iv)};", dd))
                    per_cell[nm] = local
                else:
                    self.emit(f"const {self.real} {local} = {self.at(nm, self.shapes[nm], wdom, iv)};", d)
                    self._row[nm] = local
            for j, (s, one, kind) in enumerate(zip(stmts, ones, kinds)):
                keep = s.out not in internal or s.out in later
                if kind == "reduce":
                    acc_t, init, upd = self._acc(one)
                    self.emit(f"{acc_t} _acc{j} = {init};", d)

                    def cell(dd, k, one=one, j=j, upd=upd):
                        self.temps(one, wdom, iv, dd, self._hoisted)
                        self.emit(upd.format(acc=f"_acc{j}", v=self.expr(one.expr, wdom, iv)), dd)
                    each_cell(cell)
                    self.emit(f"const {self.real} _v{j} = ({self.real})_acc{j};", d)
                    if keep:
                        self.emit(f"{self._out_ref(one, iv)} = _v{j};", d)
                    self._row[s.out] = f"_v{j}"
                elif kind == "cells":
                    self.emit(f"{self.real} _v{j}[{len(points)}];", d)

                    def cell(dd, k, one=one, j=j, keep=keep):
                        self.temps(one, wdom, iv, dd, self._hoisted)
                        self.emit(f"_v{j}[{k}] = {self.expr(one.expr, wdom, iv)};", dd)
                        if keep:
                            self.emit(f"{self.at(one.out, wdom, wdom, iv)} = _v{j}[{k}];", dd)
                    each_cell(cell)
                    per_cell[s.out] = f"_v{j}"
                else:
                    dom = tuple(one.shape)
                    ivs = iv if len(dom) == r else iv[:lead] + iv[lead + n:]
                    self.temps(one, dom, ivs, d, self._hoisted)
                    self.emit(f"const {self.real} _v{j} = {self.expr(one.expr, dom, ivs)};", d)
                    if keep:
                        self.emit(f"{self.at(one.out, dom, dom, ivs)} = _v{j};", d)
                    self._row[s.out] = f"_v{j}"
            self._row = saved_row

        if not looped:
            self.emit("{", depth)
            position(depth + 1)
            self.emit("}", depth)
            self._hoisted = set()
            return
        d = depth
        for a in looped[:-1]:
            self.emit(f"for (int64_t {iv[a]} = 0; {iv[a]} < {cint(wdom[a])}; ++{iv[a]}) {{", d)
            d += 1
        # the innermost axis in whole blocks of LANES positions, a loop of a constant count that the
        # compiler vectorizes whole (with a count it does not know, GCC left a row of 16 positions,
        # max-pooling's at 32x32, to its 8-wide epilogue and scalar loop: backward 0.95 ms against
        # 0.63-0.69 with rows of 32, two threads), then the last ones
        v, hi = iv[looped[-1]], cint(wdom[looped[-1]])
        self.emit("{", d)
        self.emit("int64_t _lb = 0;", d + 1)
        self.emit(f"for (; _lb + {LANES} <= {hi}; _lb += {LANES}) {{", d + 1)
        self.emit("SG_LANES", d + 2)
        self.emit(f"for (int64_t _lk = 0; _lk < {LANES}; ++_lk) {{", d + 2)
        self.emit(f"const int64_t {v} = _lb + _lk;", d + 3)
        position(d + 3)
        self.emit("}", d + 2)
        self.emit("}", d + 1)
        self.note(f"the last positions, fewer than {LANES}", d + 1)
        self.emit("SG_LANES", d + 1)
        self.emit(f"for (int64_t {v} = _lb; {v} < {hi}; ++{v}) {{", d + 1)
        position(d + 2)
        self.emit("}", d + 1)
        self.emit("}", d)
        self.close(d, depth)
        self._hoisted = set()

    def _window_view(self, t, array, views, shapes, per=1):
        """The view of one slice's (``_slice_views``) window array of ``t`` (lead, cells, outputs) on
        its source ``array``: ``(base, offset, strides)``."""
        n = len(t.size)
        full = tuple(shapes[array])
        base, off, strides = views.get(array) or (self.cname(array), sp.Integer(0), self.contiguous(full))
        sigma = tuple(strides[-n:])
        lead = tuple(strides[:-n])
        cells = tuple(sp.sympify(d) * g for d, g in zip(t.dilation, sigma))
        outs = tuple(sp.sympify(st) * g for st, g in zip(t.stride, sigma))
        return base, off + sp.Symbol("_s") * strides[per - 1], lead + cells + outs

    def sample_loop(self, run, dim0, internal, depth):
        """Emit ``run`` one sample at a time (``_sample_loop``); when some of its window statements can
        be strided views (``_direct_windows``: pooling's windows of 2, and the folds of those that tile
        the input), a version with them as views, the window geometry as constants and the statements
        over the windows' outputs in one nest (``_cell_nest``) runs when the run-time test holds, the
        general one otherwise."""
        found = self._direct_windows(run, internal)
        test = None if found is None else self._tests(found[1] + list(found[2].items()))
        if test is None:
            self._sample_loop(run, dim0, internal, depth, {})
            return
        direct, _, fixed, (wdom, lead) = found
        saved_views, saved_shapes = dict(self.views), dict(self.shapes)

        def fix(v):
            if isinstance(v, sp.Basic):
                return v.xreplace(fixed)
            return tuple(fix(x) for x in v) if isinstance(v, tuple) else v

        def fixed_statement(t):
            return dataclasses.replace(t, **{f.name: fix(getattr(t, f.name)) for f in dataclasses.fields(t)})
        at = {id(t): i for i, t in enumerate(run)}
        run_f = [fixed_statement(t) for t in run]
        direct_f = {n: (run_f[at[id(t)]], a) for n, (t, a) in direct.items()}
        self.shapes = {n: fix(tuple(sp.sympify(d) for d in sh)) for n, sh in self.shapes.items()}
        self.views = {n: (b, fix(sp.sympify(o)), fix(tuple(sp.sympify(x) for x in st)))
                      for n, (b, o, st) in self.views.items()}
        if test:
            self.note("windows of 2 at stride 2, unpadded: read in place (strided views), no window arrays", depth)
            self.emit(f"if ({test}) {{", depth)
        self._sample_loop(run_f, dim0, internal, depth + 1 if test else depth, direct_f, (fix(wdom), lead))
        self.views, self.shapes = saved_views, saved_shapes
        if test:
            self.emit("}", depth)
            self.note("else: the general loops, through window arrays", depth)
            self.emit("else {", depth)
            self._sample_loop(run, dim0, internal, depth + 1, {})
            self.emit("}", depth)

    def _channels_too(self, run, dim0):
        """The size of the second axis when every statement of ``run`` also keeps it apart (window
        reads and folds over (N, C, ...), elementwise statements and reductions over neither of the
        first two axes, reshapes), and every array they touch either leads with (N, C) or involves
        neither axis: then the run can go one (sample, channel) slice at a time, whose arrays are a
        few KB instead of a sample's hundreds (pooling). None otherwise (a product mixes channels)."""
        dim1 = None
        for t in run:
            if isinstance(t, (ir.Window, ir.WindowAdd)):
                n = len(t.size)
                lead = tuple(t.src_shape if isinstance(t, ir.Window) else t.shape)[:-n]
                arrays = [t.src, t.out]
                if len(lead) < 2:
                    return None
                c, dom = lead[1], None
            elif isinstance(t, ir.Reduction) and not ({0, 1} & set(t.axes)) and len(t.src_shape) >= 3:
                c, dom, arrays = t.src_shape[1], tuple(t.src_shape), [t.out, *self.reads(t)]
            elif isinstance(t, ir.Elementwise) and len(t.shape) >= 3:
                c, dom, arrays = t.shape[1], tuple(t.shape), [t.out, *self.reads(t)]
            elif isinstance(t, ir.Expand) and not ({0, 1} & set(t.axes)) and len(t.shape) >= 3:
                c, dom, arrays = t.shape[1], None, [t.out, t.src]
            else:
                return None
            if is_one(c) or (dim1 is not None and c != dim1):
                return None
            dim1 = c
            for a in arrays:
                if a not in self.shapes or a in self.values:
                    continue
                shape = tuple(self.shapes[a])
                if dom is not None and len(shape) <= len(dom) - 2 and a != t.out:
                    continue   # broadcast over the trailing axes only
                if len(shape) < 2 or shape[0] != dim0 or shape[1] != dim1 or a in self.views:
                    return None
        return dim1

    def _one_slice(self, one, per):
        """A statement for one sample (``per_sample``) cut to one (sample, channel) slice: axis 1 of
        its shapes set to 1 too (``per`` = 2)."""
        if per == 1:
            return one
        def cut(shape):
            return (shape[0], sp.Integer(1)) + tuple(shape[2:])
        fields = {"shape": cut(one.shape)}
        if isinstance(one, (ir.Window, ir.WindowAdd, ir.Reduction)):
            fields["src_shape"] = cut(one.src_shape)
        return dataclasses.replace(one, **fields)

    def _channel_blocks(self, run, ones):
        """How a convolution's sample runs in blocks of channels: its window array (im2col) of one
        sample holds C*KH*KW rows of H_out*W_out, 2.36 MB at C64 3x3 32x32, more than a core's L2
        (2 MB here), so each product read it back from L3. In blocks of about ``BLOCK_ROWS`` rows, a
        block's window rows are written and read by the products right away, from L2 (measured, one
        thread: 64x576 by 576x1024 at 150 GFLOP/s with B from L3, 169 by 576x256 in L2; the weight
        gradient's 64x1024 by 1024x576 at 137, 173 at k = 256). The statements that run in blocks
        come first: window reads and folds over (N, C, ...), and products in which the channel letter
        of such an array is the outermost of its row, column or sum group (forward: a sum, so the
        blocks accumulate, beta 1 after the first; the input gradient's product: rows; the weight
        gradient's: columns). ``(number of blocked statements, {index: (group, inner)}, cells per
        channel, C)`` or None (pooling; a run whose statements do not all fit)."""
        wins = [t for t in run if isinstance(t, (ir.Window, ir.WindowAdd))]
        if not wins or not any(isinstance(t, ir.Einsum) for t in run):
            return None
        chan, cells, arrays = None, None, set()
        for t in wins:
            n = len(t.size)
            lead = tuple(t.src_shape if isinstance(t, ir.Window) else t.shape)[:-n]
            c = lead[1] if len(lead) == 2 else None
            if c is None or is_one(c) or (chan is not None and c != chan):
                return None
            k = prod(tuple(t.size))
            if cells is not None and sp.simplify(k - cells) != 0:
                return None
            chan, cells = c, k
            arrays |= {t.src, t.out}
        groups, nb = {}, 0
        sources = {t.src for t in wins if isinstance(t, ir.Window)}
        for i, (t, one) in enumerate(zip(run, ones)):
            if isinstance(t, (ir.Window, ir.WindowAdd)) or self._source_copy(t, sources):
                blocked = True
            elif isinstance(t, ir.Einsum) and arrays & ({t.out} | set(t.operands)):
                g = self._channel_group(t, one, arrays)
                if g is None:
                    return None
                groups[i], blocked = g, True
            else:
                blocked = False
                if arrays & (self.reads(t) | {t.out}):
                    return None
            if blocked and nb != i:   # the blocked statements first, the others after them
                return None
            nb += blocked
        return nb, groups, cells, chan

    @staticmethod
    def _source_copy(t, sources) -> bool:
        """The cache's copy of a window read's source (``NAME_forward_kept``'s ``x_kept = x``): copied per
        block of channels, just before the block's windows are read from the same lines."""
        return isinstance(t, ir.Elementwise) and isinstance(t.expr, sp.Symbol) and t.expr.name in sources \
            and tuple(t.shape)[1:2] != ()

    def _channel_group(self, t, one, arrays):
        """For a product of one sample (``one``, ``looped_gemm_form``, its loops of size 1): where the
        channel letter (axis 1 of a window array) lies in the matrix product, ``"M"``, ``"N"`` or
        ``"K"``, and the elements of the rest of its group (KH*KW), when it is that group's
        outermost letter in every operand; else None."""
        lg = looped_gemm_form(one)
        if lg is None or not all(is_one(size) for size, *_ in lg[0]):
            return None
        ta, tb, m, n, k, a, b, lda, ldb = lg[1]
        lhs, out = t.subscripts.split("->")
        subs = dict(zip(t.operands, lhs.split(",")))
        shapes = dict(zip(t.operands, one.operand_shapes))
        size = {}
        for name in t.operands:
            size.update(zip(subs[name], shapes[name]))
        size.update(zip(out, one.shape))
        keep = lambda x: "".join(ch for ch in x if not is_one(size[ch]))  # noqa: E731 - the loops' letters go
        arr = next(x for x in [t.out] + list(t.operands) if x in arrays)
        letter = (out if arr == t.out else subs[arr])[1]
        sa, sb, so = keep(subs[a]), keep(subs[b]), keep(out)
        if letter in so:
            where, group = ("M", [ch for ch in sa if ch in so]) if letter in sa else ("N", [ch for ch in sb if ch in so])
        else:
            where, group = "K", [ch for ch in sa if ch in sb]
        inner = None
        for x in (sa, sb, so):
            if letter not in x:
                continue
            i = x.index(letter)
            if set(x[i:i + len(group)]) != set(group):
                return None
            here = prod([size[ch] for ch in x[i + 1:i + len(group)]])
            if inner is not None and sp.simplify(here - inner) != 0:
                return None
            inner = here
        return where, inner

    def _implicit_windows(self, run, ones, blocks, internal) -> dict:
        """The blocked window reads whose array only one blocked product reads, as its right operand B
        (the forward's sum over channels, tb 0; the weight gradient's columns, tb 1): ``{window index:
        product index}``. Float only (the AVX-512 kernel packs B's strips from x itself: ``sg_gemm_window``);
        at run time ``sg_window_ok`` still chooses, per call, between that and the window array."""
        if blocks is None or self.dtype != "float32":
            return {}
        out = {}
        for i in range(blocks[0]):
            t = run[i]
            if not isinstance(t, ir.Window) or t.fill != 0 or len(t.size) not in (1, 2) or t.out not in internal:
                continue
            readers = [j for j, u in enumerate(run) if t.out in self.reads(u)]
            if len(readers) != 1 or readers[0] >= blocks[0] or not isinstance(run[readers[0]], ir.Einsum):
                continue
            j = readers[0]
            ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(ones[j])[1]
            if b == t.out and a != t.out and (blocks[1][j][0], tb) in (("K", False), ("N", True)):
                out[i] = j
        return out

    @staticmethod
    def _geometry(lengths, size, width, stride, dilation, padding) -> tuple:
        """The fields of ``sg_window_f32`` after its pointer: ``(H, W, KH, KW, W_out, sh, sw, dh, dw, ph,
        pw)`` of a window over a source of ``lengths`` with ``width`` output columns; a 1-D window is the
        2-D one of height 1."""
        if len(size) == 1:
            one, zero = sp.Integer(1), sp.Integer(0)
            return (one, lengths[0], one, size[0], width, one, stride[0], one, dilation[0], zero, padding[0])
        return (lengths[0], lengths[1], size[0], size[1], width, stride[0], stride[1], dilation[0], dilation[1],
                padding[0], padding[1])

    def _window_struct(self, t, i, depth):
        """``const sg_window_f32 _wI``: the geometry of window read ``t`` for this block of channels (its
        source pointer as the block's views give it)."""
        n = len(t.size)
        geo = self._geometry(tuple(t.src_shape[-n:]), t.size, t.shape[-1], t.stride, t.dilation, t.padding)
        self.note(f"{self.cname(t.out)} as the product reads it: x, H, W, KH, KW, W_out, strides, dilations, paddings",
                  depth)
        self.emit(f"const sg_window_f32 _w{i} = {{ {self.ptr(t.src)}, {', '.join(cint(g) for g in geo)} }};", depth)

    def _gather_folds(self, run, ones, blocks, internal) -> dict:
        """Folds (col2im) that run as gathers instead (``plan.gathered_fold``): ``{fold index: product
        index}`` for a blocked product of row blocks whose output only the fold reads. The transpose of a
        window read at stride 1 is a window read: for a convolution,
        ``dx[c, i, j] = sum_{o,a,b} W[o, c, a, b] dy[o, i + p - d a, j + p - d b]``, i.e. the windows of
        ``dy`` (padding ``d (K - 1) - p``) times ``W`` flipped over (a, b): the textbook "full convolution
        of dy with the flipped kernel". One product of ``C`` rows by ``O KH KW``, its B read from ``dy``
        by the kernel (``sg_gemm_window``), replaces the products of ``KH KW`` times more rows and the
        fold's scattered adds (3.2 ms of conv2d's 11 ms input gradient at N32 C64 32x32). At stride s the
        output positions split into s x s phases (i = r + s u); the window cells that reach a phase are
        an arithmetic run and read dy as a stride-1 window (``sg_phase_of``), so each phase is such a
        gather with its own weights, stored to its positions. Float only; ``_gat_DX`` chooses per call
        (``sg_gather_ok``)."""
        if blocks is None or self.dtype != "float32":
            return {}
        out = {}
        for j in range(blocks[0]):
            fold = gathered_fold(run[j], self.f)
            if fold is None or run[j].out not in internal or blocks[1].get(j, ("",))[0] != "M":
                continue
            i = next((i for i, t in enumerate(run) if t is fold), None)
            if i is not None and i < blocks[0]:
                out[i] = j
        return out

    @staticmethod
    def _fold_fields(fold) -> tuple:
        """``(H, W, KH, KW, sh, sw, dh, dw, ph, pw)`` of a fold's output and window (``_geometry`` without
        its output width), and ``(H_out, W_out)`` of its positions (dy's); a 1-D fold as a 2-D one."""
        n = len(fold.size)
        g = Windows._geometry(tuple(fold.shape[-n:]), fold.size, None, fold.stride, fold.dilation, fold.padding)
        outs = tuple(fold.src_shape[-n:])
        return g[:4] + g[5:], (sp.Integer(1),) + outs if n == 1 else outs

    def _flip_weights(self, fold, one, depth):
        """Before the sample loop: ``_gat_DX``, whether this call runs the gather form (``sg_gather_ok``:
        every output phase's window fits the kernel), and if so the weights of every phase, once
        (``sg_gather_weights`` into ``_wf_DX``: at unit stride the product's left operand flipped over the
        window cells)."""
        ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(one)[1]
        fields, _ = self._fold_fields(fold)
        cells = prod(tuple(fold.size))
        g, wf = f"_gat_{self.cname(fold.out)}", self.ptr("_wf_" + fold.out)
        geo = ", ".join(cint(x) for x in fields)
        self.note(f"{self.cname(fold.out)} as gathers, one per output phase: the windows of {self.cname(b)} times "
                  "the weights of the window cells that reach the phase (Windows._gather_folds)", depth)
        self.emit(f"const int {g} = sg_gather_ok_f32({geo});", depth)
        self.note(f"the gathers' weights {wf}, phase after phase", depth)
        self.emit(f"if ({g})", depth)
        self.emit(f"sg_gather_weights_f32({int(ta)}, {self.ptr(a)}, {cint(lda)}, {cint(sp.simplify(m / cells))}, "
                  f"{cint(k)}, {geo}, {wf});", depth + 1)
        if len(fold.size) == 2:   # at unit stride a 3x3 gather is a 3x3 correlation: Winograd's
            self.note("whether the gather runs as Winograd F(2x2, 3x3) products (Windows._winograd_products), and "
                      "if so its weights: the flipped ones transformed, once (sg_wino_weights)", depth)
            self._winograd_flag(f"_wg_{self.cname(fold.out)}", fields[2:8], k, fields[0], fields[1], depth,
                                weights=(wf, sp.simplify(m / cells), self.ptr("_wu_" + fold.out)), only_if=g)

    def _gather_fold(self, fold, product, one, depth):
        """In the sample loop, before its blocks: this sample's fold output as gathers (``sg_gather_fold``):
        per output phase its weights times the windows of ``dy`` read by the kernel."""
        ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(one)[1]
        fields, outs = self._fold_fields(fold)
        cells = prod(tuple(fold.size))
        g, name = f"_gat_{self.cname(fold.out)}", self.cname(fold.out)
        tmp = f"{self.ptr('_gt_' + fold.out)} + _c*({cint(prod(tuple(fold.shape)[1:]))})"
        if len(fold.size) == 2:
            H, W, KH, KW, sh, sw, dh, dw, ph, pw = fields
            self.note(f"{name} = the 3x3 correlation of {self.cname(b)} (padding 2 - p) with the flipped weights, "
                      "as Winograd F(2x2, 3x3) products (sg_wino)", depth)
            self._winograd_call(product, fold.out, (self.ptr(b), k, *outs, dh * (KH - 1) - ph, dw * (KW - 1) - pw),
                                (sp.simplify(m / cells), self.ptr(fold.out), H, W), depth)
        self.note(f"{name} = the gathers (a phase's output through this chunk's slot unless the stride is 1)", depth)
        self.emit(f"{'else ' if len(fold.size) == 2 else ''}if ({g})", depth)
        self.emit(f"sg_gather_fold_f32({self.ptr('_wf_' + fold.out)}, {self.ptr(b)}, {cint(k)}, "
                  f"{', '.join(cint(x) for x in outs)}, {self.ptr(fold.out)}, {cint(sp.simplify(m / cells))}, "
                  f"{', '.join(cint(x) for x in fields)}, {tmp});", depth + 1)

    def _winograd_products(self, run, implicit) -> dict:
        """The implicit window reads whose product is a convolution's forward (``plan.winograd_window``):
        ``{window index: product index}``. Where the window is 3x3 of unit stride and dilation
        (``sg_wino_ok``, per call), ``sg_wino_f32`` computes the whole sample's product by Winograd's
        F(2x2, 3x3): 16 products of the transformed weights ``U[xi]`` (``Cout x Cin``) by the transformed
        input tiles ``V[xi]`` (``Cin x tiles``), 2.25 times fewer multiplications (the helpers' comment gives
        the matrices); the window read and the blocked products are skipped. Its rounding stays within a few
        units of the direct sum's: the transforms only add, subtract and halve. Measured on conv2d's forward
        at N32 C64 32x32 O64 padding 1, 2 threads (C harness): 7.7-8.4 ms direct, 5.2-5.3 ms by Winograd."""
        return {i: j for i, j in implicit.items()
                if (w := winograd_window(run[j], self.f)) is not None and w.out == run[i].out}

    def _winograd_geometry(self, win):
        """``(H, W, KH, KW, H_out, W_out, sh, sw, dh, dw, ph, pw)`` of a 2-D window read."""
        H, W, KH, KW, Wo, sh, sw, dh, dw, ph, pw = self._geometry(
            tuple(win.src_shape[-2:]), win.size, win.shape[-1], win.stride, win.dilation, win.padding)
        return H, W, KH, KW, tuple(win.shape)[-2], Wo, sh, sw, dh, dw, ph, pw

    def _winograd_weights(self, win, t, one, depth):
        """Before the sample loop: ``_wg_Y``, whether this call's forward product runs as Winograd's
        (``sg_wino_ok``), and if so its weights transformed once (``sg_wino_weights`` into ``_wu_Y``)."""
        ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(one)[1]
        H, W, KH, KW, Ho, Wo, sh, sw, dh, dw, ph, pw = self._winograd_geometry(win)
        self.note(f"whether {self.cname(t.out)} runs as Winograd F(2x2, 3x3) products (a 3x3 window of unit "
                  f"stride and dilation: Windows._winograd_products), and if so {self.cname(a)} transformed, once", depth)
        self._winograd_flag(f"_wg_{self.cname(t.out)}", (KH, KW, sh, sw, dh, dw), sp.simplify(k / (KH * KW)), Ho, Wo,
                            depth, weights=(self.ptr(a), m, self.ptr("_wu_" + t.out)))

    def _winograd_flag(self, flag, geo, cin, ho, wo, depth, weights=None, grad=False, only_if=None):
        """``const int FLAG = [ONLY_IF &&] sg_wino_ok_f32(KH, KW, sh, sw, dh, dw, Cin, Ho, Wo, grad)``; with
        ``weights`` (``(g, Cout, into)``), ``g`` transformed once into ``into`` when the flag is set."""
        self.emit(f"const int {flag} = {f'{only_if} && ' if only_if else ''}sg_wino_ok_f32("
                  f"{', '.join(cint(x) for x in geo)}, {cint(cin)}, {cint(ho)}, {cint(wo)}, {int(grad)});", depth)
        if weights is not None:
            g, cout, into = weights
            self.emit(f"if ({flag})", depth)
            self.emit(f"sg_wino_weights_f32({g}, {cint(cout)}, {cint(cin)}, {into});", depth + 1)

    def _winograd(self, win, t, one, depth):
        """In the sample loop, before its blocks: this sample's forward product by Winograd's F(2x2, 3x3)
        (``sg_wino_f32``) when ``_wg_Y``, its work space this chunk's slot of ``_wv_Y``."""
        ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(one)[1]
        H, W, KH, KW, Ho, Wo, sh, sw, dh, dw, ph, pw = self._winograd_geometry(win)
        self.note(f"{self.cname(t.out)} = the 3x3 correlation of {self.cname(win.src)} with {self.cname(a)} as "
                  "Winograd F(2x2, 3x3) products (sg_wino); else in the blocks below", depth)
        self._winograd_call(t, t.out, (self.ptr(win.src), sp.simplify(k / (KH * KW)), H, W, ph, pw),
                            (m, self.ptr(one.out), Ho, Wo), depth)

    def _winograd_call(self, product, out, source, dest, depth):
        """``if (_wg_OUT) sg_wino_f32(...)``: ``source`` ``(x, Cin, H, W, ph, pw)``, ``dest`` ``(Cout, y, Ho,
        Wo)``, the weights in ``_wu_OUT`` and this chunk's slot of ``_wv_OUT`` (``plan.winograd_sizes`` of
        ``product``) as work space."""
        x, cin, H, W, ph, pw = source
        cout, y, Ho, Wo = dest
        work = f"{self.ptr('_wv_' + out)} + _c*({cint(winograd_sizes(product, self.f)[1])})"
        self.emit(f"if (_wg_{self.cname(out)})", depth)
        self.emit(f"sg_wino_f32({self.ptr('_wu_' + out)}, {x}, {', '.join(cint(v) for v in (cin, H, W, ph, pw, cout))}, "
                  f"{y}, {cint(Ho)}, {cint(Wo)}, {work});", depth + 1)

    def _prepare_a(self, t, one, depth, unless=None) -> str:
        """Before the blocks of channels: the left operand of ``t`` (the weight gradient's ``dy``, the
        same for every block) packed once for this sample into its chunk's slot (``plan.prepared_a_size``);
        the pointer the blocks' products read it from. ``unless``: the flag under which another form
        (Winograd's) computes ``t`` instead."""
        ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(one)[1]
        sfx = "f32" if self.dtype == "float32" else "f64"
        slot = f"{self.ptr('_pka_' + t.out)} + _c*({cint(prepared_a_size(t, self.f))})"
        self.note(f"{self.cname(a)} packed once for the blocks' products (sg_prepa)", depth)
        if unless:
            self.emit(f"if (!{unless})", depth)
        self.emit(f"sg_prepa_{sfx}({int(ta)}, {cint(m)}, {cint(k)}, {self.ptr(a)}, {cint(lda)}, {slot});",
                  depth + bool(unless))
        return slot

    def _winograd_grads(self, run, implicit) -> dict:
        """The implicit window reads whose product is a convolution's weight gradient
        (``plan.winograd_window`` with ``grad``): ``{window index: product index}``. Where the window is 3x3 of
        unit stride and dilation (``sg_wino_ok``, per call) the gradient of Winograd's F(2x2, 3x3) runs
        instead: per sample 16 products of ``A dy A^T`` by the transformed input tiles' transpose into a
        per-chunk accumulator ``dU`` (``sg_wino_grad``), transformed back once per chunk (``G^T dU G``,
        ``sg_wino_grad_end``) into the chunk's partial sum. Exact in exact arithmetic: it is the
        gradient of the forward's bilinear form, ``y = A^T [(G g G^T) . (B^T d B)] A``."""
        return {i: j for i, j in implicit.items()
                if (w := winograd_window(run[j], self.f, grad=True)) is not None and w.out == run[i].out}

    def _grad_channels(self, win, one) -> tuple:
        """``(Cout, Cin)`` of a weight gradient's Winograd form, as C expressions."""
        ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(one)[1]
        return cint(m), cint(sp.simplify(n / prod(tuple(win.size))))

    def _grad_slot(self, win, t, one) -> str:
        """This chunk's slot of ``_wv_Y``: the weight gradient's Winograd accumulator and work."""
        ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(one)[1]
        work = winograd_grad_work(n / prod(tuple(win.size)), m, tuple(win.shape)[-1])
        return f"{self.ptr('_wv_' + t.out)} + _c*({cint(work)})"

    def _winograd_grad_flag(self, win, t, one, depth):
        """Before the sample loop: ``_wg_Y``, whether the weight gradient runs as Winograd's."""
        H, W, KH, KW, Ho, Wo, sh, sw, dh, dw, ph, pw = self._winograd_geometry(win)
        ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(one)[1]
        self.note(f"whether {self.cname(t.out)} runs as the gradient of Winograd F(2x2, 3x3) products (a 3x3 "
                  "window of unit stride and dilation: Windows._winograd_grads)", depth)
        self._winograd_flag(f"_wg_{self.cname(t.out)}", (KH, KW, sh, sw, dh, dw), sp.simplify(n / (KH * KW)), Ho, Wo,
                            depth, grad=True)

    def _winograd_grad(self, win, t, one, depth):
        """In the sample loop, before its blocks: this sample's share of the weight gradient added into the
        chunk's Winograd accumulator (``sg_wino_grad_f32``) when ``_wg_Y``."""
        ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(one)[1]
        H, W, KH, KW, Ho, Wo, sh, sw, dh, dw, ph, pw = self._winograd_geometry(win)
        cout, cin = self._grad_channels(win, one)
        self.note(f"{self.cname(t.out)}: this sample's (A {self.cname(a)} A^T) times the transformed tiles of "
                  f"{self.cname(win.src)}, into the chunk's Winograd accumulator (sg_wino_grad); else in the blocks "
                  "below", depth)
        self.emit(f"if (_wg_{self.cname(t.out)})", depth)
        self.emit(f"sg_wino_grad_f32({self.ptr(win.src)}, {cin}, {cint(H)}, {cint(W)}, {cint(ph)}, {cint(pw)}, "
                  f"{self.ptr(a)}, {cout}, {cint(Ho)}, {cint(Wo)}, {self._grad_slot(win, t, one)});", depth + 1)

    def _blocked_einsum(self, one, group, depth, accumulated, prepared=None, window=None):
        """The product of one block of channels ``[_c0, _c0 + _cn)`` (``_channel_blocks``): its rows,
        columns or part of the sum, as offsets into the whole sample's operands; ``prepared``: where its
        left operand was packed (``_prepare_a``); ``window``: the index ``I`` of the window read that is its
        right operand (``_implicit_windows``): when ``_winI``, the kernel reads it from x (``_wI``)."""
        where, inner = group
        ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(one)[1]
        sfx = "f32" if self.dtype == "float32" else "f64"
        r0, rn = cint(sp.Symbol("_c0") * inner), cint(sp.Symbol("_cn") * inner)
        pa, pb, pc = self.ptr(a), self.ptr(b), self.ptr(one.out)
        mm, nn, kk, beta = cint(m), cint(n), cint(k), "1" if accumulated else "0"
        L, N = cfactor(lda), cfactor(ldb)
        if where == "M":
            pa, pc, mm = f"{pa} + {r0 if ta else f'({r0})*{L}'}", f"{pc} + ({r0})*{cfactor(n)}", rn
        elif where == "N":
            pb, pc, nn = f"{pb} + {f'({r0})*{N}' if tb else r0}", f"{pc} + {r0}", rn
        else:   # a part of the sum: the blocks after the first add to it
            pa, pb, kk = f"{pa} + {f'({r0})*{L}' if ta else r0}", f"{pb} + {r0 if tb else f'({r0})*{N}'}", rn
            beta = "1" if accumulated else "_c0 > 0"
        if window is not None:
            self.note("the window read from x as the kernel packs it, or the window array written above", depth)
            self.emit(f"if (_win{window})", depth)
            self.emit(f"sg_gemm_window_{sfx}({int(ta)}, {mm}, {nn}, {kk}, {'NULL' if prepared else pa}, "
                      f"{'0' if prepared else L}, {prepared or 'NULL'}, &_w{window}, {int(tb)}, {beta}, {pc}, "
                      f"{cint(n)});", depth + 1)
            self.emit("else", depth)
            depth += 1
        if prepared is not None:
            assert where == "N", "a prepared left operand is read whole by every block"
            self.emit(f"sg_gemm_prepa_{sfx}({mm}, {nn}, {kk}, {prepared}, {int(tb)}, {pb}, {N}, {beta}, {pc}, "
                      f"{cint(n)});", depth)
            return
        self.emit(f"sg_gemm_{sfx}({int(ta)}, {int(tb)}, {mm}, {nn}, {kk}, {pa}, {L}, {pb}, {N}, {beta}, {pc}, "
                  f"{cint(n)});", depth)

    def _sample_loop(self, run, dim0, internal, depth, direct, nest=None):
        """Emit ``run`` one sample at a time (``per_sample``), the samples split into one chunk per
        thread: ONE parallel region per run (a barrier per statement would cost more than the work
        when another library's OpenMP threads spin on the same cores). Each chunk keeps the values
        internal to the run in its own slot and accumulates products into its own partial output,
        summed after the region; BLAS calls inside run single-threaded (no nested parallelism).
        ``direct``: window values read or written through strided views (``_direct_windows``), whose
        window statements are not emitted; ``nest``: their window domain and its number of lead axes,
        over whose outputs consecutive statements that fit (``_cell_kind``) run as one loop nest
        (``_cell_nest``)."""
        acc = [t for t in run if isinstance(t, ir.Einsum) and accumulates(t)]
        dim1 = self._channels_too(run, dim0)
        per = 1 if dim1 is None else 2
        slices = dim0 if dim1 is None else dim0 * dim1
        skip = {id(t) for t, _ in direct.values()}
        reshaped = {}
        for t in run:   # a reshape (inserted axes of size 1) of a sample's contiguous slice: a view of it
            if isinstance(t, ir.Expand) and t.out in internal and t.src not in internal \
                    and all(isinstance(u, (ir.Elementwise, ir.Reduction)) for u in run if t.out in self.reads(u)):
                full = tuple(self.shapes[t.src])
                base, off, st = self.views.get(t.src) or (self.cname(t.src), sp.Integer(0), self.contiguous(full))
                if tuple(st) == tuple(self.contiguous(full)) and prod(t.shape) == prod(full):
                    one_shape = (sp.Integer(1),) * per + tuple(self.shapes[t.out][per:])
                    reshaped[t.out] = (base, off + sp.Symbol("_s") * prod(full[per:]), self.contiguous(one_shape))
                    skip.add(id(t))
        shown = [t for t in run if id(t) not in skip]
        nests, prev = {}, None   # first statement of a nest -> its statements' indices
        for i, t in enumerate(run):
            if id(t) in skip:
                continue
            if nest is not None and self._cell_kind(t, nest[0], nest[1]):
                if prev is None:
                    prev = i
                    nests[i] = []
                nests[prev].append(i)
            else:
                prev = None
        nested = {j for group in nests.values() for j in group}
        views = [(n, a) for n, (_, a) in direct.items()] + [(t.out, t.src) for t in run if t.out in reshaped]
        what = f"{dim0} samples" if dim1 is None else f"{cint(dim0)}*{cint(dim1)} (sample, channel) slices"
        work = sp.Integer(0)
        for t in run:
            work += prod(t.shape)
        ones = [self._one_slice(self.per_sample(t)[1], per) for t in run]   # before any view changes a shape
        blocks = None if direct or per != 1 else self._channel_blocks(run, ones)
        implicit = self._implicit_windows(run, ones, blocks, internal)
        reads_window = {j: i for i, j in implicit.items()}
        gathers = self._gather_folds(run, ones, blocks, internal)
        skipped = {}   # statement -> the flag under which a gather form replaces it
        for i, j in gathers.items():
            self._flip_weights(run[i], ones[j], depth)
            skipped[i] = skipped[j] = f"_gat_{self.cname(run[i].out)}"
        winos = self._winograd_products(run, implicit)
        for i, j in winos.items():
            self._winograd_weights(run[i], run[j], ones[j], depth)
            skipped[j] = f"_wg_{self.cname(run[j].out)}"   # its window array is not written either (_winI)
        grads = self._winograd_grads(run, implicit)
        for i, j in grads.items():
            self._winograd_grad_flag(run[i], run[j], ones[j], depth)
            skipped[j] = f"_wg_{self.cname(run[j].out)}"
        by_winograd = {i: f"_wg_{self.cname(run[j].out)}" for i, j in {**winos, **grads}.items()}
        self.note(f"for each of the {what}, in one chunk of them per thread: "
                  f"{'; '.join(describe(t, self.glossary, short=True) for t in shown)}"
                  + (f" ({', '.join(self.cname(n) for n, _ in views)}: views of "
                     f"{', '.join(self.cname(a) for _, a in views)})" if views else ""), depth)
        self.emit("{", depth)
        d = depth + 1
        begin = len(self.lines)   # SG_BLAS_ONE_THREAD_BEGIN goes here if the run calls BLAS
        self.emit(f"const int64_t _nc = sg_chunks_of({cint(slices)});", d)
        self.emit(f"SG_PARALLEL_FOR({cint(work)})", d)
        self.emit("for (int64_t _c = 0; _c < _nc; ++_c) {", d)
        for t in acc:
            size = cint(prod(t.shape))
            self.emit(f"{self.real} *restrict _p_{self.cname(t.out)} = {self.ptr('_part_' + t.out)} + _c * {size};",
                      d + 1)
            self.emit(f"for (int64_t _i = 0; _i < {size}; ++_i) _p_{self.cname(t.out)}[_i] = 0;", d + 1)
        for i, j in grads.items():
            self.note(f"the Winograd accumulator of {self.cname(run[j].out)} for this chunk's samples, zeroed", d + 1)
            self.emit(f"if (_wg_{self.cname(run[j].out)})", d + 1)
            self.emit(f"sg_wino_grad_begin_f32({self._grad_slot(run[i], run[j], ones[j])}, "
                      f"{', '.join(self._grad_channels(run[i], ones[j]))});", d + 2)
        if per == 2:
            self.emit(f"const int64_t _c0 = _c * {cint(slices)} / _nc;   /* this chunk's first slice */", d + 1)
        self.emit(f"for (int64_t _s = _c * {cint(slices)} / _nc; _s < (_c + 1) * {cint(slices)} / _nc; ++_s) {{",
                  d + 1)
        saved_views, saved_shapes, serial = dict(self.views), dict(self.shapes), self.serial
        self.serial = True   # inside the region: no nested parallel loop (a team of one per sample)
        windows = {n: self._window_view(w, a, saved_views, saved_shapes, per) for n, (w, a) in direct.items()}
        windows.update(reshaped)
        prepared = {}   # blocked product -> where its left operand was packed before the blocks
        for i, (t, one) in enumerate(zip(run, ones)):
            if id(t) in skip or (i in nested and i not in nests):
                continue
            if i in nests:
                for j in nests[i]:
                    self._slice_views(run[j], ones[j], internal, saved_shapes, per)
                self.views.update(windows)
                self.shapes.update({n: ((sp.Integer(1),) * per + tuple(saved_shapes[n][per:])) for n in windows})
                wone = (sp.Integer(1),) * per + tuple(nest[0][per:])
                self._cell_nest([run[j] for j in nests[i]], [ones[j] for j in nests[i]], run, internal, wone,
                                nest[1], d + 2)
                continue
            dd = d + 2
            if blocks is not None and i < blocks[0]:
                dd = d + 3
                if i == 0:
                    _, _, cells, chan = blocks
                    self.note(f"in blocks of _cb channels, about {BLOCK_ROWS} rows of the window arrays each, "
                              "which stay in this core's cache from the window read to the products "
                              "(Windows._channel_blocks)", d + 2)
                    self.emit(f"const int64_t _cb = {BLOCK_ROWS} / ({cint(cells)}) > 0 ? {BLOCK_ROWS} / ({cint(cells)}) : 1;",
                              d + 2)
                    for j in range(blocks[0]):
                        u = run[j]
                        if isinstance(u, ir.Einsum) and blocks[1][j][0] == "N" and prepared_a_size(u, self.f):
                            self._slice_views(u, ones[j], internal, saved_shapes, per)
                            prepared[j] = self._prepare_a(u, ones[j], d + 2, unless=skipped.get(j))
                    for j, e in grads.items():
                        self._slice_views(run[j], ones[j], internal, saved_shapes, per)
                        self._slice_views(run[e], ones[e], internal, saved_shapes, per)
                        self._winograd_grad(run[j], run[e], ones[e], d + 2)
                    for j, e in gathers.items():
                        self._slice_views(run[e], ones[e], internal, saved_shapes, per)
                        self._slice_views(run[j], ones[j], internal, saved_shapes, per)
                        self._gather_fold(run[j], run[e], ones[e], d + 2)
                    for j, e in winos.items():
                        self._slice_views(run[j], ones[j], internal, saved_shapes, per)
                        self._slice_views(run[e], ones[e], internal, saved_shapes, per)
                        self._winograd(run[j], run[e], ones[e], d + 2)
                    for j in implicit:
                        w = run[j]
                        wg = f"{by_winograd[j]} || " if j in by_winograd else ""
                        self.note(f"whether the product reads {self.cname(w.out)} from {self.cname(w.src)} "
                                  f"itself (sg_window_ok{', or Winograd computed it' if wg else ''}): no window "
                                  "array written", d + 2)
                        self.emit(f"const int _win{j} = {wg}sg_window_ok_f32({cint(w.stride[-1])}, "
                                  f"{cint(prod(tuple(w.size)))}, {cint(w.shape[-1])});", d + 2)
                    self.emit(f"for (int64_t _c0 = 0; _c0 < {cint(chan)}; _c0 += _cb) {{", d + 2)
                    self.emit(f"const int64_t _cn = {cint(chan)} - _c0 < _cb ? {cint(chan)} - _c0 : _cb;", d + 3)
            if i in skipped:   # the product and fold that a gather form replaces at unit stride
                self.note(f"unless the {'Winograd' if skipped[i].startswith('_wg_') else 'gather'} form above "
                          "computed it", dd)
                self.emit(f"if (!{skipped[i]}) {{", dd)
                dd += 1
            self._slice_views(t, one, internal, saved_shapes, per)
            self.views.update(windows)
            self.shapes.update({n: ((sp.Integer(1),) * per + tuple(saved_shapes[n][per:])) for n in windows})
            if t in acc:
                self.views[t.out] = (f"_p_{self.cname(t.out)}", sp.Integer(0), self.contiguous(t.shape))
            self.note(describe(t, self.glossary), dd)
            cut = lambda sh: (sh[0], sp.Symbol("_cn")) + tuple(sh[2:])  # noqa: E731
            if dd > d + 2 and isinstance(t, ir.Elementwise):   # a copy of the source: this block's channels
                one = dataclasses.replace(one, shape=cut(one.shape))
                for name in (t.expr.name, t.out):
                    base, off, st = self.views.get(name) or (self.cname(name), sp.Integer(0),
                                                             self.contiguous(self.shapes[name]))
                    self.views[name] = (base, off + sp.Symbol("_c0") * prod(tuple(one.shape)[2:]), st)
                    self.shapes[name] = tuple(one.shape)
            if dd > d + 2 and isinstance(t, (ir.Window, ir.WindowAdd)):   # this block's channels
                one = dataclasses.replace(one, shape=cut(one.shape), src_shape=cut(one.src_shape))
                for name, full in ((t.src, one.src_shape), (t.out, one.shape)):
                    base, off, st = self.views.get(name) or (self.cname(name), sp.Integer(0),
                                                             self.contiguous(self.shapes[name]))
                    self.views[name] = (base, off + sp.Symbol("_c0") * prod(tuple(full)[2:]), st)
                    self.shapes[name] = tuple(full)
            self._hoisted = self.hoist(one, dd)
            if i in implicit:   # written only when the kernel cannot read it from x
                self._window_struct(one, i, dd)
                self.emit(f"if (!_win{i}) {{", dd)
                views, shapes = dict(self.views), dict(self.shapes)
                self.statement(self.collapsed(one), dd + 1, 0, [f"i{a}" for a in range(8)])
                self.views, self.shapes = views, shapes
                self.emit("}", dd)
            elif isinstance(t, ir.Einsum) and dd > d + 2:
                self._blocked_einsum(one, blocks[1][i], dd, accumulated=t in acc, prepared=prepared.get(i),
                                     window=reads_window.get(i))
            elif isinstance(t, ir.Einsum):
                self.einsum(one, d + 2, accumulated=t in acc)
            else:
                views, shapes = dict(self.views), dict(self.shapes)
                ranks = [(len(w.shape if isinstance(w, ir.Window) else w.src_shape) - 2 * len(w.size), len(w.size))
                         for n, (w, _) in direct.items() if n in self.reads(t) | {t.out}]
                done = self.interleaved(one, ranks[0]) if ranks else None
                self.statement(done or self.collapsed(one), dd, 0, [f"i{a}" for a in range(8)])
                self.views, self.shapes = views, shapes   # the merged views served this statement only
            if i in skipped:
                self.emit("}", dd - 1)
            if blocks is not None and i == blocks[0] - 1:
                self.emit("}", d + 2)
        self.views, self.shapes, self.serial = saved_views, saved_shapes, serial
        self._hoisted = set()
        self.emit("}", d + 1)
        for i, j in grads.items():
            name = self.cname(run[j].out)
            self.note(f"_p_{name} += G^T dU G: this chunk's Winograd accumulator transformed back", d + 1)
            self.emit(f"if (_wg_{name})", d + 1)
            self.emit(f"sg_wino_grad_end_f32({self._grad_slot(run[i], run[j], ones[j])}, "
                      f"{', '.join(self._grad_channels(run[i], ones[j]))}, _p_{name});", d + 2)
        self.emit("}", d)
        if any("sg_gemm" in line for line in self.lines[begin:]):   # each chunk's products on its thread
            self.lines.insert(begin, "    " * d + "SG_BLAS_ONE_THREAD_BEGIN")
            self.emit("SG_BLAS_ONE_THREAD_END", d)
        for t in acc:
            self.note(f"{self.cname(t.out)} = the sum of the chunks' partial products", d)
            self.chunk_sums(self.ptr(t.out), self.ptr('_part_' + t.out), prod(t.shape),
                            ("double", "0.0", "{acc} += {v};"), d)
        self.emit("}", depth)
