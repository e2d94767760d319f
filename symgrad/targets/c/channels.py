"""C target: channel groups (a mixin of ``CBody``, as ``Fusion``, ``Views`` and ``Windows`` are).

BatchNorm's statistics reduce ``x (N, C, H, W)`` over every axis but the channel axis, which is the
second one; the row groups of ``fusion.py`` group only over the leading axis, so each statistic was
its own pass over all of ``x`` from memory (three in the forward, four reads of ``dy`` in the
backward). A channel group runs a run of such statements with the kept axis moved first: ONE parallel
loop over the channels, in which every pass over one channel's ``N x H x W`` values (128 KB at the
benchmark's shape) after the first reads them from the core's L2 cache. Nothing is copied: arrays
are read through views whose strides put the channel axis first, and adjacent axes that are adjacent
in every array are merged (``H, W`` -> ``H*W``: one long vectorized loop per sample instead of one
per row of 32). Then the row-group machinery (passes, per-row values in registers, double
accumulators) applies unchanged. Measured at N 32, C 64, H W 32, float32, 2 threads: forward 0.94 ->
0.6 ms, backward 1.31 -> 0.85 ms (docs/bench-log.md).

A run starts at a reduction that keeps exactly one axis ``g`` (the channel) of a source with reduced
axes before and after it, or at the per-sample part of such a sum (``_partial_trigger``), and
extends over the following elementwise statements, reductions and copies (``Expand``) whose domain
carries the channel on that axis and whose arrays are laid out the same way in every statement of the
run (a vector ``(C,)`` is read along the channel); it ends at the first statement that does not.
"""
from __future__ import annotations

import dataclasses

import sympy as sp

from ...ir import nodes as ir
from ...ir.nodes import is_one, prod
from .views import cint, merge_groups


@dataclasses.dataclass
class _Run:
    """A channel run being collected: rank ``r`` of the domain, channel axis ``g`` and its dim."""
    r: int
    g: int
    dim: object
    sizes: dict          # old domain axis -> its (non-1) size
    layout: dict         # array -> (shape, axes): which old domain axis each of its dims lies on
    stmts: list          # (statement, old padded domain, reduced old axes or None)


class Channels:
    """Mixin of ``CBody``: find channel runs in a list of statements, emit them as channel groups."""

    def _trigger(self, s):
        """``(r, g)`` when ``s`` reduces over every axis but one axis ``g``, with reduced axes both
        before and after it (BatchNorm's statistics over N, H, W), else None."""
        if not isinstance(s, ir.Reduction) or s.kind != "sum" and s.kind != "max":
            return None
        src = tuple(s.src_shape)
        kept = [a for a in range(len(src)) if a not in s.axes and not is_one(src[a])]
        if len(kept) == 1 and any(not is_one(src[a]) for a in s.axes if a < kept[0]) \
                and any(not is_one(src[a]) for a in s.axes if a > kept[0]):
            return len(src), kept[0]
        return self._partial_trigger(s, src, kept)

    def _partial_trigger(self, s, src, kept):
        """``(r, g)`` when ``s`` is the per-sample part of a channel statistic: it sums over every
        axis after ``g``, keeps ``g`` and the axes before it, and a later statement sums its result
        over those leading axes (``ir.rewrite.share_sums``' ``sum_{H,W}(dy*xc)``, which BatchNorm's
        backward then sums over N); else None (a row statistic: the row groups serve those)."""
        if s.kind != "sum" or len(kept) < 2 or not s.keepdims:
            return None
        g = kept[-1]
        lead = [a for a in range(g) if not is_one(src[a])]
        if kept[:-1] != lead or any(a < g for a in s.axes) or not any(not is_one(src[a]) for a in s.axes):
            return None
        for t in self.f.body:
            if isinstance(t, ir.Reduction) and t.kind == "sum" and s.out in self.reads(t) \
                    and tuple(t.src_shape) == tuple(s.shape) and set(lead) <= set(t.axes) and g not in t.axes:
                return len(src), g
        return None

    def _place(self, run: _Run, s):
        """How statement ``s`` lies in the run's domain: ``(padded domain, reduced axes, layouts)``
        (layouts: array -> (shape, old axes of its dims)), or None when it cannot join the run."""
        r, g = run.r, run.g
        if isinstance(s, ir.Expand):
            shape = tuple(s.shape)
        elif isinstance(s, ir.Elementwise):
            shape = tuple(s.shape)
        elif isinstance(s, ir.Reduction):
            shape = tuple(s.src_shape)
        else:
            return None
        if s.out in self.values or not shape or len(shape) > r:
            return None
        k = len(shape)
        vector = k == 1 and shape[0] == run.dim          # a (C,) statement: along the channel
        if vector:
            axes_of = lambda m: (g,) if m == 1 else None   # noqa: E731
            dom = tuple(run.dim if a == g else sp.Integer(1) for a in range(r))
        else:
            axes_of = lambda m: tuple(range(r - m, r)) if m <= k else None   # noqa: E731 right-aligned
            dom = (sp.Integer(1),) * (r - k) + shape
        if is_one(dom[g]) or dom[g] != run.dim:
            return None
        layouts = {}
        for n in self.reads(s) if not isinstance(s, ir.Expand) else ():
            if n in self.values or n not in self.shapes or not self.shapes[n]:
                continue
            ax = axes_of(len(self.shapes[n]))
            if ax is None:
                return None
            layouts[n] = (tuple(self.shapes[n]), ax)
        reduced = None
        if isinstance(s, ir.Expand):
            out_axes = tuple(range(r - k, r))
            src_axes = tuple(out_axes[a] for a in range(k) if a not in s.axes)
            layouts[s.src] = (tuple(self.shapes[s.src]), src_axes)
            layouts[s.out] = (tuple(s.shape), out_axes)
        elif isinstance(s, ir.Reduction):
            off = r - k
            reduced = frozenset(off + a for a in s.axes)
            if vector:
                return None
            if s.keepdims:
                layouts[s.out] = (tuple(s.shape), tuple(range(off, r)))
            else:
                kept = tuple(off + a for a in range(k) if a not in s.axes)
                if len(kept) != len(s.shape):
                    return None
                layouts[s.out] = (tuple(s.shape), kept)
        else:
            layouts[s.out] = (tuple(s.shape), axes_of(len(s.shape)))
        for n, (shape_n, ax) in layouts.items():
            if n in self.views or len(ax) != len(shape_n):
                return None
        return dom, reduced, layouts

    @staticmethod
    def _spans(shape, axes) -> dict:
        """Old axis -> dim of the array, for its dims longer than 1."""
        return {a: j for j, (a, d) in enumerate(zip(axes, shape)) if not is_one(d)}

    def _join(self, run: _Run, s) -> bool:
        placed = self._place(run, s)
        if placed is None:
            return False
        dom, reduced, layouts = placed
        sizes = dict(run.sizes)
        for a, d in enumerate(dom):
            if not is_one(d):
                if sizes.setdefault(a, d) != d:
                    return False
        for n, (shape, ax) in layouts.items():
            spans = self._spans(shape, ax)
            if any(sizes.get(a, shape[j]) != shape[j] for a, j in spans.items()):
                return False
            if n in run.layout:
                old_shape, old_ax = run.layout[n]
                if self._spans(old_shape, old_ax).keys() != spans.keys():
                    return False
        for n, lay in layouts.items():
            run.layout.setdefault(n, lay)
        run.sizes = sizes
        run.stmts.append((s, dom, reduced))
        return True

    def channel_parts(self, part) -> list:
        """``part`` (ordered statements) split into ``("groups", stmts)`` and ``("channels", run)``."""
        out, i, plain = [], 0, []
        while i < len(part):
            tr = self._trigger(part[i])
            run = None
            if tr is not None:
                r, g = tr
                run = _Run(r, g, part[i].src_shape[g], {}, {}, [])
                j = i
                while j < len(part) and self._join(run, part[j]):
                    j += 1
                if not any(not is_one(d) for a, d in run.sizes.items() if a != g) or j == i:
                    run = None
            if run is None:
                plain.append(part[i])
                i += 1
                continue
            if plain:
                out.append(("groups", plain))
                plain = []
            out.append(("channels", run))
            i = j
        if plain:
            out.append(("groups", plain))
        return out

    def _merged_axes(self, run: _Run) -> list:
        """The new domain's axes as lists of old axes: the channel alone first, then the others in
        order, merged where ``merge_groups`` allows (each array at its own C-contiguous strides)."""
        arrays = {}
        for n, (shape, ax) in run.layout.items():
            own = self.contiguous(shape)
            arrays[n] = {a: (shape[j], own[j]) for a, j in self._spans(shape, ax).items()}
        reduced = [red for _, _, red in run.stmts if red is not None]
        return [[run.g]] + merge_groups([a for a in range(run.r) if a != run.g], arrays, reduced)

    def channel_group(self, run: _Run, depth=1):
        """Emit ``run`` with the channel axis first (views, merged axes), as row groups over it."""
        axes = self._merged_axes(run)
        args = {a.name for a in self.cf.args}
        written = {s.out for s, _, _ in run.stmts}
        inside = {id(s) for s, _, _ in run.stmts}
        later = set()
        for s in self.f.body:
            if id(s) not in inside:
                later |= self.reads(s)
        saved_views, saved_shapes = dict(self.views), dict(self.shapes)
        for n, (shape, ax) in run.layout.items():
            spans = self._spans(shape, ax)
            new_shape = tuple(prod([shape[spans[a]] for a in grp if a in spans]) for grp in axes)
            internal = n in written and n not in args and n not in self.f.returns and n not in later
            if internal:   # the run's own temporary: laid out in the new order
                strides = self.contiguous(new_shape)
            else:          # in place: the stride of each new axis is its innermost old one's
                own = self.contiguous(shape)
                strides = tuple(own[spans[grp[-1]]] if grp[-1] in spans else sp.Integer(0) for grp in axes)
            self.views[n] = (self.cname(n), sp.Integer(0), strides)
            self.shapes[n] = new_shape
        stmts = []
        for s, dom, red in run.stmts:
            new_dom = tuple(prod([dom[a] for a in grp]) for grp in axes)
            if isinstance(s, ir.Expand):
                stmts.append(ir.Elementwise(s.out, new_dom, sp.Symbol(s.src)))
            elif isinstance(s, ir.Reduction):
                new_red = tuple(A for A, grp in enumerate(axes) if grp[0] in red)
                shape = tuple(sp.Integer(1) if A in new_red else d for A, d in enumerate(new_dom))
                stmts.append(dataclasses.replace(s, src_shape=new_dom, axes=new_red, shape=shape, keepdims=True))
            else:
                stmts.append(dataclasses.replace(s, shape=new_dom))
        self.note(f"per channel ({cint(run.dim)} in parallel): every pass over one channel's values "
                  "while they are in cache", depth)
        self.emit_groups(self.groups(stmts))
        self.views, self.shapes = saved_views, saved_shapes

