"""C target for recurrent layers: the NumPy target's ``RecurrentPlan`` as one C99 forward and one
backward function (``templates/c/recurrent.{h,c}.j2``).

Forward: the state-independent work for all T*N rows at once before the loop (``x W_ih^T``: one
GEMM), the cell inside the loop over t. Backward: the cell's backward over reversed t, then the
parameter and sequence gradients as one GEMM or reduction over all steps (``dW_ih = dgates^T x``
over T*N rows, ``dx = dgates W_ih``). Every per-step array is a view ``base + t*size`` into a buffer
stacked over time, so nothing is copied: states live in ``h_steps`` (T+1, N, H) with h0 at step 0
(the new state of step t is the previous state of step t+1, and ``h_steps[0:T]`` is the stacked
previous state that ``dW_hh`` needs); slices of the gates are offset views, the parts of ``dgates``
are written straight into its column blocks; the state gradients alternate between two buffers.
The caller passes every buffer (sizes in the header); the C code allocates nothing.
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import sympy as sp

from ...ir import nodes as ir
from ...ir.recurrent import plan, time_einsum
from .layer import CBody, cfactor, cint
from .names import Glossary, cell_names, comment, renamed
from ...ir.nodes import prod
from ...ir.schedule import CHUNKS, colred, concat_parts
from .plan import CArg, CFunc, gemm_form, shape_doc
from ...ir.rewrite import inline
from ..numpy.layer import NumpyLayerEmitter
from .context import DIM_MEANING, HELPERS, VARIANTS, CLayerEmitter

TIME = sp.Symbol("_t")


def cline(text, depth) -> str:
    """A comment line of the function body at ``depth``."""
    return "    " * depth + comment(text)


def _contig(shape):
    shape = tuple(shape)
    return tuple(prod(shape[a + 1:]) for a in range(len(shape)))


class CRecurrent:
    """Buffers (``fwd``/``bwd``: ``CFunc``) and C statements of a recurrent spec."""

    def __init__(self, spec):
        self.spec, self.p = spec, plan(spec, sequence_products_in_loop=True)
        k = self.k = self.p.kernel
        self.names = cell_names(k, self.p.pre + self.p.loop)   # t0 -> xW_ih: C names of temporaries
        self.T = spec.time
        self.dims = list(spec.dims)
        self.state, self.seq = list(spec.state), list(spec.sequence)
        self.params = [a.name for a in k.inputs if a.name not in self.state and a.name not in self.seq]
        self.new_of = {o.name: s for o, s in zip(k.outputs, self.state)}        # h_new -> h
        self.shape = {**k.backward.shapes, **k.forward.shapes}
        self.hypers = [CArg(n, "hyper") for n, _ in k.hypers]
        saved = set(k.backward.saved)
        self.per_step = [n for n in k.backward.saved                           # cached over time
                         if n not in self.state and n not in self.seq and n not in self.params
                         and n not in self.new_of]
        self.transposed = self._prepare_weights(self.p.loop)
        self.added = self._add_into_pre(self.p.loop, saved)
        self._plan_forward(saved)
        self._plan_backward()
        self.kept, self.fwdk = self._plan_kept()
        held = {s.out for s in self.p.pre + self.p.loop + self.bbody + self.post_f.body}
        held |= {a.name for a in k.inputs + k.grad_outputs} | saved
        eqs = list(k.equations) + list(k.grad_equations) + [(s.out, s.expr) for s in self.bpre]
        self.glossary = Glossary(eqs, held - {s.out for s in self.bpre})

    def cname(self, name) -> str:
        return self.names.get(name, name)

    # -- buffers ---------------------------------------------------------------------------
    def _stack(self, n, extra=0):
        return (self.T + extra,) + tuple(self.shape[n])

    def _prepare_weights(self, body) -> dict:
        """Step products whose right operand is a parameter (``h W_hh^T`` forward, ``dgates W_hh``
        backward) read a copy of it prepared once before the time loop (``sg_prep_b``): packed as the
        float kernel reads it where that is compiled, else a plain (transposed) copy. Measured: one
        thread's 32x256 by 256x1024 step product 89 us packing W_hh at each step, 81 us from the
        packed copy; single-threaded OpenBLAS ran it at 87 GFLOP/s reading W_hh transposed and 129
        from a transposed copy (it packs a transposed operand again at every call).
        ``{C name of the copy: (parameter, transposed)}``; ``body``'s statements are rewritten to read
        the copy untransposed, its shape (k, n) in ``self.shape``."""
        out = {}
        for i, s in enumerate(body):
            if not isinstance(s, ir.Einsum) or len(s.operands) != 2 or s.operands[1] not in self.params:
                continue
            g = gemm_form(s)
            lhs, res = s.subscripts.split("->")
            sa, sb = lhs.split(",")
            if g is None or g[0] or len(sb) != 2 or g[6] != s.operands[1]:
                continue
            w, tb = s.operands[1], bool(g[1])
            name = f"{w}_T" if tb else f"{w}_P"
            out[name] = (w, tb)
            shape = tuple(s.operand_shapes[1])[::-1] if tb else tuple(s.operand_shapes[1])
            body[i] = ir.Einsum(s.out, s.shape, f"{sa},{sb[::-1] if tb else sb}->{res}", (s.operands[0], name),
                                (s.operand_shapes[0], shape))
            self.shape[name] = shape
        return out

    def _add_into_pre(self, body, saved) -> set:
        """A step product that is only added to a value computed before the loop for all steps (the
        LSTM's ``gates = b_hh + b_ih + hW_hh + xW_ih``) is accumulated into that value's slice of the
        step (beta 1: ``xW_ih += h W_hh^T``) instead of being stored and read back by the sum. Both
        must be read by that sum only, and neither saved for backward. ``body`` is rewritten; the
        set of the values now accumulated into."""
        reads = {}
        for s in body:
            for n in ir.reads(s):
                reads.setdefault(n, []).append(s)
        hoisted = set(self.p.hoisted)
        out = set()
        for i, e in enumerate(body):
            if not isinstance(e, ir.Einsum) or e.out in saved or len(reads.get(e.out, [])) != 1:
                continue
            s = reads[e.out][0]
            if not isinstance(s, ir.Elementwise) or not isinstance(s.expr, sp.Add):
                continue
            terms = set(s.expr.args)
            g = sp.Symbol(e.out)
            into = next((x for x in sorted(hoisted - saved - out) if sp.Symbol(x) in terms and g in terms
                         and len(reads.get(x, [])) == 1 and reads[x][0] is s
                         and tuple(self.shape[x]) == tuple(e.shape)), None)
            if into is None:
                continue
            body[i] = dataclasses.replace(e, out=into)
            body[body.index(s)] = dataclasses.replace(s, expr=s.expr - g)
            out.add(into)
        return out

    def _prep_scratch(self, prepared) -> list:
        """Scratch of the prepared copies: k (n + 31) elements (the packed width rounds n up to 32)."""
        return [(name, (self.shape[name][0], self.shape[name][1] + 31)) for name in prepared]

    def _prep_lines(self, prepared, dtype) -> list[str]:
        sfx = "f32" if dtype == "float32" else "f64"
        L = []
        for name, (w, tb) in prepared.items():
            k, n = (cint(x) for x in self.shape[name])
            what = f"{w} transposed" if tb else w
            L.append(cline(f"{name} = {what}, prepared once for the step products (sg_prep_b: packed for the "
                           "float kernel where it is compiled, else a plain copy)", 1))
            L.append(f"    sg_prep_b_{sfx}({int(tb)}, {k}, {n}, {w}, {k if tb else n}, {name});")
        return L

    def _plan_forward(self, saved):
        spec, k = self.spec, self.k
        outs = [CArg(o + "s", "out", self._stack(o)) for o in spec.outputs]
        outs += [CArg(s + "T", "out", tuple(self.shape[s])) for s in self.state]
        cache = [CArg(f"{s}_steps", "cache", self._stack(s, 1)) for s in self.state]
        cache += [CArg(f"{n}_steps", "cache", self._stack(n)) for n in self.per_step]
        ins = [CArg(i.name, "in", tuple(i.shape)) for i in spec.inputs]
        scratch = [(f"{self.cname(s.out)}_steps", self._stack(s.out)) for s in self.p.pre if s.out not in saved]
        self.fviews = self._step_views(self.per_step)
        scratch += self._prep_scratch(self.transposed)
        scratch += [(self.cname(n), s) for n, s in self._temps(self.p.loop, self.fviews, set())]
        self.fwd = CFunc("forward", outs + cache + ins + ([CArg("scratch", "scratch")] if scratch else [])
                         + self.hypers + [CArg(str(d), "dim") for d in self.dims], scratch, [])

    def _plan_kept(self):
        """``NAME_forward_kept``: the forward that also writes the cache's copies of the caller's arrays
        the backward reads (the LSTM's ``x``, ``W_ih``, ``W_hh``; docs/contract.md, "Caches"), a slice
        of each per step and thread inside the time loop (``_kept_lines``). ``({array: its copy},
        CFunc)``, or ``(None, None)`` when the backward reads none of them."""
        reads = {a.name for a in self.bwd.args if a.role == "in"}
        taken = {a.name for a in self.fwd.args + self.bwd.args} | {n for n, _ in self.fwd.scratch}
        names = {}
        for i in self.spec.inputs:
            if i.name in reads and (i.name in self.seq or i.name in self.params):
                name, j = f"{i.name}_kept", 1
                while name in taken:
                    name, j = f"{i.name}_kept{j}", j + 1
                names[i.name] = name
                taken.add(name)
        if not names:
            return None, None
        shape = {i.name: tuple(i.shape) for i in self.spec.inputs}
        args = list(self.fwd.args)
        at = max(j for j, a in enumerate(args) if a.role == "cache") + 1
        args[at:at] = [CArg(c, "cache", shape[n]) for n, c in names.items()]
        return names, CFunc("forward_kept", args, self.fwd.scratch, self.fwd.locals)

    def _kept_lines(self, depth, whole: bool) -> list[str]:
        """The cache's copies (``_plan_kept``). Inside a row-split time loop (``whole`` false) each
        thread copies its share of every array in T slices, one per step, so that the copying overlaps
        the step's products instead of running alone before them (one thread copying 4 MB while the
        other waited: 0.3 ms of an LSTM forward of 9); else (``whole``: no split, or no step or row ran)
        each array in one loop after the time loop."""
        ind = "    " * depth
        L = []
        if not whole:   # no rows (N = 0): nothing here, the whole copies after the loop
            L.append(f"{ind}const int64_t _rows = {cint(self.batch)} > 0 ? {cint(self.batch)} : 1;")
        for j, (n, c) in enumerate(self.kept.items()):
            size = cint(prod(next(i.shape for i in self.spec.inputs if i.name == n)))
            if whole:
                L.append(f"{ind}for (int64_t _i = 0; _i < {size}; ++_i) {c}[_i] = {n}[_i];")
                continue
            # this thread's share [S lo/N, S hi/N) of the S elements (its rows' share), in T slices
            T, a, b = cint(self.T), f"_k{j}a", f"_k{j}b"
            L.append(f"{ind}const int64_t {a} = ({size})*_lo/_rows, {b} = ({size})*_hi/_rows;")
            L.append(f"{ind}for (int64_t _i = {a} + ({b} - {a})*_t/{T}; _i < {a} + ({b} - {a})*(_t + 1)/{T}; ++_i) "
                     f"{c}[_i] = {n}[_i];")
        return L

    def _step_views(self, stacked) -> dict:
        """Per-step views of the cell's arrays at time ``_t``."""
        v = {}
        for n in self.seq:
            v[n] = (n, TIME * prod(self.shape[n]), _contig(self.shape[n]))
        for s in self.state:
            v[s] = (f"{s}_steps", TIME * prod(self.shape[s]), _contig(self.shape[s]))
        for o, s in self.new_of.items():
            v[o] = (f"{s}_steps", (TIME + 1) * prod(self.shape[s]), _contig(self.shape[s]))
        for n in stacked:
            v[n] = (f"{n}_steps", TIME * prod(self.shape[n]), _contig(self.shape[n]))
        return v

    def _temps(self, body, views, taken) -> list:
        f = ir.Function("cell", [], body, [], [], self.shape)
        skip = concat_parts(f, taken) | {s.out for s in body if isinstance(s, ir.Slice)}
        return [(s.out, tuple(s.shape)) for s in body
                if s.out not in views and s.out not in skip and s.out not in taken and tuple(s.shape) != ()]

    def _plan_backward(self):
        spec, k, p = self.spec, self.k, self.p
        grads = [a for a in k.inputs if a.grad]
        users = [i for i in spec.inputs if i.differentiable]
        self.user_grad = {r: "d" + u.name for r, u in zip(k.backward.returns, users)}
        self.role = {r: ("sequence" if a.name in self.seq else "state" if a.name in self.state else "param")
                     for r, a in zip(k.backward.returns, grads)}
        self.state_of_grad = {r: a.name for r, a in zip(k.backward.returns, grads) if a.name in self.state}
        outs = [CArg("d" + u.name, "out", tuple(u.shape)) for u in users]
        ups = [CArg(f"d{o}s", "in", self._stack(o)) for o in spec.outputs]
        ups += [CArg(f"d{s}T", "in", tuple(self.shape[s])) for s in self.state]
        cache = [CArg(a.name, "in", a.shape) for a in self.fwd.args if a.role == "cache"]
        reads = set(k.backward.saved) | {n for s in p.post for n in ir.reads(s)}
        ins = [CArg(i.name, "in", tuple(i.shape)) for i in spec.inputs
               if i.name in reads and (i.name in self.seq or i.name in self.params)]
        # the cell's upstream gradients: the step's output gradient plus the one from step t+1
        pre = []
        for g, s in zip(k.grad_outputs, self.state):
            e = sp.Symbol(f"_in_{s}")
            if s in spec.outputs:
                e = e + sp.Symbol(f"_up_{s}")
            pre.append(ir.Elementwise(g.name, tuple(self.shape[s]), e))
            self.shape[f"_in_{s}"] = self.shape[f"_up_{s}"] = self.shape[s]
        self.bpre = pre
        keep = set(p.loop_returns) | set(p.loop_values)
        self.bbody = inline(ir.Function("cell_backward", [], pre + list(p.bloop), [], [], self.shape), keep).body
        self.bprepared = self._prepare_weights(self.bbody)
        self.bviews = self._step_views(self.per_step + list(p.loop_values))
        for s in self.state:
            self.bviews[f"_in_{s}"] = (f"_gin_{s}", 0, _contig(self.shape[s]))
            if s in spec.outputs:
                self.bviews[f"_up_{s}"] = (f"d{s}s", TIME * prod(self.shape[s]), _contig(self.shape[s]))
        self.accumulated = []
        for r in p.loop_returns:
            if self.role[r] == "state":
                self.bviews[r] = (f"_gout_{self.state_of_grad[r]}", 0, _contig(self.shape[r]))
            elif self.role[r] == "sequence":
                self.bviews[r] = (self.user_grad[r], TIME * prod(self.shape[r]), _contig(self.shape[r]))
            else:
                self.accumulated.append(r)
        scratch = self._prep_scratch(self.bprepared)
        for s in self.state:
            scratch += [(f"_g{s}_{j}", tuple(self.shape[s])) for j in (0, 1)]
        scratch += [(f"{n}_steps", self._stack(n)) for n in p.loop_values]
        taken = {a.name for a in outs}   # a per-step value named like a gradient output gets its own name
        self.names.update({r: f"{r}_step" for r in self.accumulated if r in taken})
        scratch += [(self.cname(n), shp) for n, shp in self._temps(self.bbody, self.bviews, set())]
        # column sums inside the loop (a parameter's gradient summed over the rows of a step): partials
        scratch += [(f"_part_{self.cname(s.out)}", (CHUNKS,) + tuple(s.src_shape[1:])) for s in self.bbody if colred(s)]
        self.post_f = self._post()
        scratch += [(s.out, tuple(s.shape)) for s in self.post_f.body
                    if s.out not in self.user_grad and s.out not in self.pviews]
        scratch += [(f"_part_{s.out}", (CHUNKS,) + tuple(s.src_shape[1:])) for s in self.post_f.body if colred(s)]
        self.bwd = CFunc("backward", outs + ups + cache + ins + ([CArg("scratch", "scratch")] if scratch else [])
                         + self.hypers + [CArg(str(d), "dim") for d in self.dims], scratch, [])

    def _post(self) -> ir.Function:
        """The statements after the loop, over the values stacked in time (T*N rows)."""
        p, T = self.p, self.T
        stepped = set(p.post_inputs)
        shapes = dict(self.shape)
        self.pviews = {}
        for n in stepped:
            base = n if n in self.seq else f"{self.new_of.get(n, n)}_steps"
            shp = tuple(self.shape[n])
            shapes[n] = (T * shp[0],) + shp[1:]
            if base != n:
                self.pviews[n] = (base, prod(shp) if n in self.new_of else 0, _contig(shapes[n]))
        body = []
        for s in p.post:
            summed = s.out in p.post_summed
            if isinstance(s, ir.Einsum):
                shp = tuple(s.shape) if summed else (T,) + tuple(s.shape)
                ops = tuple((T,) + tuple(sh) if o in stepped else tuple(sh)
                            for o, sh in zip(s.operands, s.operand_shapes))
                body.append(ir.Einsum(s.out, shp, time_einsum(s, stepped, summed), s.operands, ops))
            elif isinstance(s, ir.Reduction):
                if not (summed and 0 in s.axes):
                    raise ValueError(f"{self.spec.name}: the C target sums a per-step reduction over time "
                                     f"only along the batch axis")
                src = (T * s.src_shape[0],) + tuple(s.src_shape[1:])
                body.append(dataclasses.replace(s, src_shape=src))
            else:
                body.append(s)
            shapes[s.out] = body[-1].shape
        for r, u in self.user_grad.items():
            if r != u:
                self.pviews[r] = (u, 0, _contig(shapes.get(r, self.shape[r])))
        return ir.Function("post", [], body, [], [], shapes)

    # -- statements ------------------------------------------------------------------------
    def _body(self, body, shapes, views, dtype, depth, rows=None, team=False, prepared=(), added=()) -> list[str]:
        """C lines of ``body``; inside the time loop (depth 2 and more) the elementwise work has no
        OpenMP loops of its own: an OpenMP region per step would wait for the cores BLAS's threads
        still hold, and a loop split by rows (``rows``) already runs on every thread."""
        f = ir.Function("part", [], list(body), [], [], dict(shapes))
        kk = SimpleNamespace(name=self.spec.name, dims=self.dims)
        locs = [s.out for s in body if tuple(s.shape) == ()]
        cf = SimpleNamespace(args=list(self.hypers) + [CArg(n, "in") for n in views], locals=locs)
        lines = CBody(kk, f, cf, dtype, views, serial=depth > 1, glossary=self.glossary, names=self.names,
                      rows=rows, team=team, prepared=prepared, added=added).body()
        return ["    " * (depth - 1) + l for l in lines]

    @property
    def batch(self):
        """The batch dim: the first axis of the state."""
        return tuple(self.shape[self.state[0]])[0]

    def row_split(self, body, backward: bool = False) -> bool:
        """Whether the time loop can run split by batch rows, each thread all T steps of its own rows:
        a row of the state depends only on the same row one step before, so the threads never wait
        for each other. True when every statement of ``body`` keeps the rows apart: elementwise work,
        slices and concatenations (along the features), row statistics, and products whose left
        operand and result are the rows (``h W_hh^T``, ``dgates W_hh``); and nothing is summed over
        the steps inside the loop."""
        n = self.batch
        if (backward and self.accumulated) or len(tuple(self.shape[self.state[0]])) != 2:
            return False
        for s in body:
            shape = tuple(getattr(s, "shape", ()))
            if not shape or shape[0] != n:
                return False
            if isinstance(s, (ir.Elementwise, ir.OneHot)):
                continue
            if isinstance(s, (ir.Slice, ir.Concat)) and len(shape) >= 2:
                continue
            if isinstance(s, ir.Reduction) and 0 not in s.axes and tuple(s.src_shape)[0] == n:
                continue
            if isinstance(s, ir.Einsum):
                g = gemm_form(s)
                if g is not None and g[2] == n and not g[0] and \
                        n not in set().union(*[sp.sympify(d).free_symbols for d in s.operand_shapes[1]]):
                    continue
            return False
        return True

    def _split_open(self, T, depth) -> list[str]:
        """The parallel region of a row-split time loop, and this thread's rows ``[_lo, _hi)``: from
        2^20 multiply-adds of the step products over the sequence (T N H^2) on, below it one thread."""
        n, h = self.batch, tuple(self.shape[self.state[0]])[1]
        ind = "    " * depth
        return [cline("split by batch rows: each thread runs every step of its own rows (a row of the "
                      "state depends only on the same row before, so the threads never wait for each "
                      "other); every product on the OpenMP team, none on BLAS's own threads", depth),
                f"{ind}SG_BLAS_ONE_THREAD_BEGIN",
                f"{ind}SG_PARALLEL_REGION(({cint(T * n * h * h)}) >> 5)",
                f"{ind}{{",
                f"{ind}    int64_t _lo, _hi;",
                f"{ind}    sg_rows_of({cint(n)}, &_lo, &_hi);"]

    @staticmethod
    def _split_close() -> list[str]:
        """The end of ``_split_open``'s region; BLAS's thread count back to what it was."""
        return ["    }", "    SG_BLAS_ONE_THREAD_END"]

    def forward_lines(self, dtype, kept: bool = False) -> list[str]:
        """The forward's body; ``kept``: ``NAME_forward_kept``'s, which also writes the cache's copies."""
        p, T = self.p, self.T
        split = self.row_split(p.loop)
        kept = kept and bool(self.kept)
        L = [cline("the initial state: " + ", ".join(f"{s}_steps[0] = {s}0" for s in self.state), 1)]
        for s in self.state:
            L.append(f"    for (int64_t _i = 0; _i < {cint(prod(self.shape[s]))}; ++_i) {s}_steps[_i] = {s}0[_i];")
        if p.pre:
            L.append(cline(f"before the time loop, for all {cint(T)} steps at once: what does not read the state", 1))
            batched = set(self.seq) | {s.out for s in p.pre}
            shapes = {n: (T,) + tuple(self.shape[n]) for n in batched}
            shapes.update({n: tuple(self.shape[n]) for n in self.params})
            pre = []
            for s in p.pre:
                if isinstance(s, ir.Einsum):
                    ops = tuple((T,) + tuple(sh) if o in batched else tuple(sh)
                                for o, sh in zip(s.operands, s.operand_shapes))
                    s = ir.Einsum(s.out, (T,) + tuple(s.shape), time_einsum(s, batched, False), s.operands, ops)
                else:
                    s = dataclasses.replace(s, shape=(T,) + tuple(s.shape))
                pre.append(s)
            views = {s.out: (f"{self.cname(s.out)}_steps", 0, _contig(shapes[s.out])) for s in p.pre}
            L += self._body(pre, shapes, views, dtype, 1, team=split)
        L += self._prep_lines(self.transposed, dtype)
        d = 2 if split else 1
        if split:
            L += self._split_open(T, 1)
        L.append(cline(f"the time loop: one step of the cell for t = 0 .. {cint(T)}-1", d))
        L.append("    " * d + f"for (int64_t _t = 0; _t < {cint(T)}; ++_t) {{")
        views = dict(self.fviews)
        views.update({h: (f"{self.cname(h)}_steps", TIME * prod(self.shape[h]), _contig(self.shape[h])) for h in p.hoisted})
        L += self._body(p.loop, self.shape, views, dtype, d + 1, rows=self.batch if split else None, team=split,
                        prepared=self.transposed, added=self.added)
        if split:
            for o in self.spec.outputs:   # this thread's rows of the step's output, while they are in its cache
                row = cfactor(prod(tuple(self.shape[o])[1:]))
                L.append(cline(f"{o}s[t] = {o}_new: this thread's rows", d + 1))
                L.append(f"{'    ' * (d + 1)}for (int64_t _i = _lo*{row}; _i < _hi*{row}; ++_i) "
                         f"{o}s[{cint(TIME * prod(self.shape[o]))} + _i] = {o}_steps[{cint((TIME + 1) * prod(self.shape[o]))} + _i];")
        if kept and split:
            L.append(cline("this thread's slice of the cache's copies for this step (" + ", ".join(self.kept.values())
                           + ")", d + 1))
            L += self._kept_lines(d + 1, whole=False)
        L.append("    " * d + "}")
        if split:
            L += self._split_close()
        if kept:
            L.append(cline(f"the cache's copies ({', '.join(self.kept.values())})"
                           + (f", when no step or no row ran ({cint(T)} == 0 or {cint(self.batch)} == 0)"
                              if split else ""), 1))
            if split:
                L.append(f"    if ({cint(T)} <= 0 || {cint(self.batch)} <= 0) {{")
                L += self._kept_lines(2, whole=True)
                L.append("    }")
            else:
                L += self._kept_lines(1, whole=True)
        outs = ([] if split else [f"{o}s" for o in self.spec.outputs]) + [f"{s}T" for s in self.state]
        L.append(cline(f"after the time loop: {', '.join(outs)} (copies out of the state buffers)", 1))
        for o in ([] if split else self.spec.outputs):
            n = cint(prod(self._stack(o)))
            L.append(f"    for (int64_t _i = 0; _i < {n}; ++_i) {o}s[_i] = {o}_steps[{cint(prod(self.shape[o]))} + _i];")
        for s in self.state:
            size = cint(prod(self.shape[s]))
            L.append(f"    for (int64_t _i = 0; _i < {size}; ++_i) {s}T[_i] = {s}_steps[{cint(T)}*{cfactor(prod(self.shape[s]))} + _i];")
        return L

    def backward_lines(self, dtype, real) -> list[str]:
        T = self.T
        L = []
        if self.accumulated:
            L.append(cline(", ".join(self.user_grad[r] for r in self.accumulated) + " = 0: summed over the steps", 1))
        for r in self.accumulated:
            n = cint(prod(self.shape[r]))
            L.append(f"    for (int64_t _i = 0; _i < {n}; ++_i) {self.user_grad[r]}[_i] = 0;")
        L += self._prep_lines(self.bprepared, dtype)
        split = self.row_split(self.bbody, backward=True)
        d = 2 if split else 1
        if split:
            L += self._split_open(T, 1)
        ind = "    " * d
        for s in self.state:
            L.append(f"{ind}const {real} *_gin_{s} = d{s}T;")
        grads = ", ".join(f"d{s}" for s in self.state)
        L.append(cline(f"the time loop, backward: t = {cint(T)}-1 .. 0; the state gradients {grads} flow "
                         "back through two buffers each, used in turn", d))
        L.append(f"{ind}for (int64_t _t = {cint(T)} - 1; _t >= 0; --_t) {{")
        for s in self.state:
            L.append(f"{ind}    {real} *_gout_{s} = _t == 0 ? d{s}0 : (_gin_{s} == _g{s}_0 ? _g{s}_1 : _g{s}_0);")
        L += self._body(self.bbody, self.shape, self.bviews, dtype, d + 1, rows=self.batch if split else None,
                        team=split, prepared=self.bprepared)
        if self.accumulated:
            L.append(cline("add this step's " + ", ".join(self.accumulated), 2))
        for r in self.accumulated:
            n = cint(prod(self.shape[r]))
            L.append(f"        for (int64_t _i = 0; _i < {n}; ++_i) {self.user_grad[r]}[_i] += {self.cname(r)}[_i];")
        for s in self.state:
            L.append(f"{ind}    _gin_{s} = _gout_{s};")
        L.append(f"{ind}}}")
        if split:
            L += self._split_close()
        L.append(cline(f"no steps ({cint(T)} == 0): " + ", ".join(f"d{s}0 = d{s}T" for s in self.state), 1))
        for s in self.state:
            size = cint(prod(self.shape[s]))
            L.append(f"    if ({cint(T)} == 0) for (int64_t _i = 0; _i < {size}; ++_i) d{s}0[_i] = d{s}T[_i];")
        if self.post_f.body:
            L.append(cline(f"after the time loop, over the values of all {cint(T)} steps at once "
                             f"(stacked over time): the gradients that do not carry the state", 1))
        L += self._body(self.post_f.body, self.post_f.shapes, self.pviews, dtype, 1, team=split)
        return L


def context(spec) -> dict:
    """What ``templates/c/recurrent.{h,c}.j2`` render."""
    r = CRecurrent(spec)
    k, p = r.k, r.p
    e = NumpyLayerEmitter(k)
    role_text = {"out": "output, overwritten", "cache": "written: saved for the backward pass",
                 "in": "read"}
    funcs = []
    for cf in (r.fwd, r.fwdk, r.bwd):
        if cf is None:
            continue
        docs = []
        for a in cf.args:
            if a.role in ("dim", "hyper"):
                continue
            if a.role == "scratch":
                docs.append(f"scratch: {cint(cf.scratch_size())} elements of work space "
                            f"(= {spec.name}_{cf.name}_scratch_size(...)), contents undefined afterwards")
                continue
            text = role_text[a.role]
            copy_of = {c: n for n, c in (r.kept or {}).items()}
            if cf.name == "forward_kept" and a.name in copy_of:
                text = f"written: a copy of {copy_of[a.name]}, for the backward pass to read in its place"
            if cf.name == "backward":
                text = ("gradient, overwritten (not accumulated)" if a.role == "out" else
                        "upstream gradient, read" if a.name.startswith("d") and a.name not in
                        {i.name for i in spec.inputs} else "read, from forward")
            docs.append(f"{a.name} {shape_doc(a.shape)}: {text}")
        variants = []
        for sfx, dtype, real in VARIANTS:
            body = (r.forward_lines(dtype, kept=cf.name == "forward_kept") if cf.name != "backward"
                    else r.backward_lines(dtype, real))
            variants.append(dict(sfx=sfx, real=real, params=CLayerEmitter.params(None, cf, real), body=body))
        funcs.append(dict(name=cf.name, docs=docs, variants=variants, dims=[str(d) for d in r.dims],
                          scratch=cint(cf.scratch_size()) if cf.scratch else None,
                          carve=CLayerEmitter.carve(None, cf)))
    text = "\n".join(l for fn in funcs for v in fn["variants"] for l in v["body"])
    legend = [f"{d} = {DIM_MEANING.get(str(d), '')}".rstrip(" =") for d in r.dims]
    return dict(spec=spec, k=k, funcs=funcs, legend=legend, helpers={h: f"sg_{h}_" in text for h in HELPERS},
                doc=(spec.doc or "recurrent layer").strip().splitlines()[0],
                guard=f"SYMGRAD_{spec.name.upper()}_H", kept=list(r.kept or {}),
                fwd_eqs=[e.equation(s) for s in renamed(k.forward, r.names).body],
                bwd_eqs=[e.equation(s) for s in k.backward.body],
                pre_eqs=[e.equation(s) for s in renamed(ir.Function("pre", [], p.pre, []), r.names).body],
                post_eqs=[e.equation(s) for s in p.post])
