"""The explanation of a layer, activation or loss, collected from ``spec.derivation`` and the kernel IR.

Sections: symbols and shapes; forward equations; the chain rule one ``Step`` at a time (upstream
gradient, SymPy's local derivative, what the engine used, their product); the engine's
simplifications; the final gradients (index notation, matrix form, composed and simplified by SymPy);
what forward saves for backward (``lower(spec).backward.saved``) and which step reads it.
Nothing here writes a formula by hand: every expression is a SymPy object taken from the derivation.
The last two sections (final gradients, saved values) are in ``symgrad.explanation.gradients``.
"""
from __future__ import annotations

import sympy as sp

from ..derive.stable import stabilize
from ..ir.lower import lower
from ..spec import tensor as T
from .model import Bullets, Code, Document, Equation, Heading, Para, Table, m
from .notation import Notation, Partial
from .gradients import GradientSections, shape_math
from .simplify import nice
from .cancel import linear_sum, vanishing_terms
from .textbook import add_layer_form
from .textbook_windows import add_window_form
from .textbook_norm import add_batchnorm_form
from .strings import Strings
from .strings_docs import description
from ..spec.window import OutDim, Size, Unfold
from .windows import count_formula, positions
from ..targets.numpy.layer import NumpyLayerEmitter
from .notation import Blocks


def build(spec, lang: str = "en") -> Document:
    S = Strings(lang)
    kernel = lower(spec)
    nt = Notation(spec, kernel)
    doc = Document(spec.name, spec.kind, lang, S.text("title", name=spec.name))
    first = description(spec, lang)
    if first:
        doc.add(Para(first))
    doc.add(Para(S("intro", kind=S.text("kind_" + spec.kind), name=spec.name)))
    B = PageBuilder(spec, nt, S, doc, kernel)
    B.legend()
    B.forward()
    B.backward()
    B.simplifications()
    B.final()
    B.saved()
    add_layer_form(B)
    add_window_form(B)
    add_batchnorm_form(B)
    doc.dims = nt.index_dims()
    doc.add(Heading(2, S.text("h_code")))
    em = NumpyLayerEmitter(kernel)   # build() is the explain rule of layers, activations and losses only
    doc.add(Para(S("code_backward", name=spec.name) + [" "] + S("code_note", name=spec.name)))
    doc.add(Code([line for st in kernel.backward.body for line in em.statement(st)]))
    return doc


class PageBuilder(GradientSections):
    def __init__(self, spec, nt: Notation, S: Strings, doc: Document, kernel):
        self.spec, self.nt, self.S, self.doc, self.kernel = spec, nt, S, doc, kernel
        self.d = spec.derivation
        self.fwd_ids = nt.fwd_ids
        self.named_grads = {tot.id for tot in self.d.adjoints.values()}
        self.step_no = {}

    # -- helpers -------------------------------------------------------------------------------------
    def idx(self, n):
        return self.nt.idx(n.shape)

    def ref(self, n, idx=None):
        return self.nt.ref(n, self.idx(n) if idx is None else idx)

    def stop_named(self, n):
        return n.id in self.fwd_ids or (n.id in self.named_grads and self.nt.alias_of(n) is None)

    def eq(self, n, rhs, role, idx=None, lhs=None, note=None, defines=True):
        idx = self.idx(n) if idx is None else idx
        live = tuple(i for i in idx if i is not None)
        return self.doc.add(Equation(self.ref(n, idx) if lhs is None else lhs, rhs, note or [],
                                     self.nt.name(n) if defines else None, live, role))

    def code(self, n) -> str:
        name = self.nt.code_names.get(n.id)
        return name if name else self.S.text("fused")

    # -- sections ------------------------------------------------------------------------------------
    def legend(self):
        S, nt, spec = self.S, self.nt, self.spec
        self.doc.inputs = [i.name for i in spec.inputs]
        self.doc.add(Heading(2, S.text("h_legend")))
        rows = []
        for dim, i in nt.index.items():
            if dim == T.ANY:
                meaning = S("dim_any", k=m(i))
            else:
                where = next(((a, k) for a in spec.inputs for k, dd in enumerate(a.shape) if dd == dim), None)
                meaning = S("dim_axis", axis=where[1], arg=m(sp.Symbol(where[0].name))) if where else \
                    S("dim_other")
                if str(dim) == "N" and where and where[1] == 0:
                    meaning += S("dim_batch")
                if isinstance(dim, OutDim):
                    meaning = S("dim_out", L=m(dim.parts[0]), f=m(count_formula(dim, nt.size_sym)))
                elif isinstance(dim, Size):
                    meaning = S("dim_window", name=m(dim))
            rows.append([[m(dim, text=str(dim))], [m(i)], meaning])
        self.doc.add(Table([S.text("col_dim"), S.text("col_index"), S.text("col_meaning")], rows))
        rows = []
        outs = {o.id for o in spec.outputs}
        for n in self.nt.order:
            if isinstance(n, T.StopGradient):
                continue
            if isinstance(n, T.Input):
                role = S("role_ids", bound=m(n.bound)) if n.kind == "index" else \
                    S("role_input" if n.differentiable else "role_const")
            else:
                role = S("role_output" if n.id in outs else "role_inter")
            rows.append([[m(self.ref(n))], [shape_math(n.shape, S)], role, [self.code(n)]])
        for h in spec.hypers:
            if isinstance(h, T.Flag):
                rows.append([[m(h)], [S.text("scalar")], S("role_flag", default=bool(h.default)), [h.name]])
            else:
                rows.append([[m(h)], [S.text("scalar")], S("role_hyper", default=h.default), [h.name]])
        for sz in getattr(spec, "sizes", []):
            default = sz.default if isinstance(sz.default, int) else m(nt.size_sym.get(
                next(x for x in spec.sizes if x.name == sz.default)))
            what = S("size_" + sz.name) if "size_" + sz.name in S.table else []
            rows.append([[m(nt.size_sym[sz])], [S.text("scalar")], what + S("role_size", default=default),
                         [sz.name]])
        for g in self.d.grad_inputs:
            rows.append([[m(self.ref(g))], [shape_math(g.shape, S)],
                         S("role_upstream", of=m(self.ref(g.upstream_of))), [g.name]])
        for fid, tot in self.d.adjoints.items():
            if tot.id in {g.id for g in self.d.grad_inputs}:
                continue
            f = nt.by_id[fid]
            if self.code(tot) in (nt.name(tot), S.text("fused")) and nt.name(tot) == "d" + nt.name(f):
                continue     # dX for dL/dX, named so in the code too: said once in the backward intro
            rows.append([[m(self.ref(tot, nt.idx(f.shape)))], [shape_math(f.shape, S)],
                         S("role_grad", of=m(self.ref(f))), [self.code(tot)]])
        self.doc.add(Table([S.text(k) for k in ("col_symbol", "col_shape", "col_role", "col_code")], rows))

    def forward(self, head="h_forward"):
        S, nt = self.S, self.nt
        self.doc.add(Heading(2, S.text(head)))
        if head != "h_forward":
            self.doc.add(Para(S("forward_intro")))
        readers = {}                                # a stop_gradient value -> the nodes that read it
        for n in self.nt.order:
            for a in n.args:
                if isinstance(a, T.StopGradient):
                    readers.setdefault(nt.resolve(a).id, []).append(n)
        for n in self.nt.order:
            if isinstance(n, (T.Input, T.StopGradient)):
                continue
            idx = self.idx(n)
            self.eq(n, nt.element(n, idx, stop=lambda _: True), "forward", idx)
            if isinstance(n, Unfold):
                self._window_note(n, idx)
            mat = nt.matrix(n)
            if mat is not None:
                self.doc.add(Equation(sp.MatrixSymbol(nt.name(n), *n.shape), mat, role="matrix"))
            for sid, users in readers.items():      # said once, after the last value that reads it
                if users[-1] is n:
                    names = [p for u in users[:-1] for p in (m(self.ref(u)), ", ")] + [m(self.ref(n))]
                    self.doc.add(Para(S("stop_note", m=m(self.ref(nt.by_id[sid])), users=names,
                                        first=m(self.ref(users[0])), last=m(self.ref(n)))))

    def _window_note(self, n, idx):
        """What a window read's indices mean, and what it reads outside the input."""
        S, nt = self.S, self.nt
        x = nt.resolve(n.args[0])
        k = len(n.size)
        win, out = idx[-2 * k:-k], idx[-k:]
        pos = positions(nt, n, win, out)
        fill = S("unfold_zero", x=m(sp.Symbol(nt.name(x)))) if n.fill == 0 else S("unfold_fill", fill=m(n.fill))
        used = set().union(*(sp.sympify(v).free_symbols for v in n.stride + n.dilation + n.padding))
        letters = ", ".join(f"{nt.size_sym[z]} = {z.name}" for z in self.spec.sizes if z in used)
        self.doc.add(Para(S("unfold_note", u=m(sp.Symbol(nt.name(n))), x=m(sp.Symbol(nt.name(x))),
                            cells=m(sp.Tuple(*win)), at=m(sp.Tuple(*out)), pos=m(sp.Tuple(*pos)), fill=fill,
                            sizes=letters)))

    def backward(self, head="h_backward"):
        S, nt, d = self.S, self.nt, self.d
        self.doc.add(Heading(2, S.text(head)))
        ups = [m(self.ref(g)) for g in d.grad_inputs]
        joined = [p for u in ups for p in (", ", u)][1:]
        self.doc.add(Para(S("backward_intro", up=joined)))
        for g in d.grad_inputs:
            if not g.shape:                         # a scalar loss: backward starts from dloss = 1
                self.doc.add(Para(S("dloss_one", g=m(self.ref(g)), of=m(self.ref(g.upstream_of)))))
        by_node: dict = {}
        into: dict = {}
        for s in d.steps:
            by_node.setdefault(s.node.id, []).append(s)
            into.setdefault(s.arg.id, []).append(s)
        outs = {o.id for o in self.spec.outputs}
        count = {fid: len(v) + (fid in outs) for fid, v in into.items()}   # an output also gets d<output>
        k = 0
        for f in nt.back_order:
            tot = d.adjoints.get(f.id)
            if tot is None:
                continue
            if count.get(f.id, 0) > 1:
                idx = nt.idx(f.shape)
                if isinstance(tot, T.Concat):
                    self._blocks(f, tot)
                else:
                    self.doc.add(Para(S("total", x=m(self.ref(f)), g=m(self.ref(tot, idx)))))
                    self.eq(tot, nt.element(tot, idx, stop=self.stop_named), "total", idx)
            for s in by_node.get(f.id, []):
                k += 1
                self.step_no[id(s)] = k
                self.step(s, k, single=count[s.arg.id] == 1)

    def _blocks(self, f, tot):
        """``dgates = [dz_i | dz_f | dz_g | dz_o]``: the gradients of the slices, side by side."""
        nt = self.nt
        parts = [sp.Symbol(nt.name(a)) if nt.is_named(a) else nt.element(a, nt.idx(a.shape)) for a in tot.args]
        self.doc.add(Para(self.S("concat_total", g=m(sp.Symbol(nt.name(tot))))))
        self.doc.add(Equation(sp.Symbol(nt.name(tot)), Blocks(*parts), defines=nt.name(tot), role="blocks"))

    def step(self, s, k, single):
        S, nt = self.S, self.nt
        node_idx = nt.idx(s.node.shape)
        arg = nt.resolve(s.arg)
        arg_idx = nt.idx(arg.shape)
        head = S.text("h_through", k=k, node=nt.name(s.node), arg=nt.name(arg))
        self.doc.add(Heading(3, head))
        up = S("upstream", g=m(self.ref(s.upstream, node_idx)))
        then = S("then_product") if single else []
        if s.rule == "elementwise":
            y, x = self.ref(s.node, node_idx), self.ref(arg, nt.align(node_idx, s.node.shape, arg.shape))
        else:
            y, x = self.ref(s.node, self._node_idx(s.node, arg_idx)), self.ref(arg, arg_idx)
        dydx = Partial(y, x)
        if s.rule == "elementwise":
            sub = {a.sym: self.ref(a, nt.align(node_idx, s.node.shape, a.shape)) for a in s.node.args}
            sub[s.node.sym] = y
            rewritten = s.local_used is not None and s.local_used != s.local
            note = (S("local_used", y=m(y)) if s.why == "output" else S("local_indicator")) if rewritten else []
            self.doc.add(Para(up + S("local") + note + then))
            self.doc.add(Equation(dydx, s.local.xreplace(sub), role="local"))
            if rewritten:
                self.doc.add(Equation(dydx, nice(s.local_used.xreplace(sub)), role="local"))
        elif s.rule == "einsum":
            n = s.node
            letters = dict(zip(n.out, node_idx))
            kk = n.args.index(s.arg)
            for l in n.ins[kk]:
                if l not in letters:
                    letters[l] = nt.idx([dict(zip(n.ins[kk], arg.shape))[l]], set(node_idx))[0]
            x = self.ref(arg, [letters[l] for l in n.ins[kk]])
            local = sp.Mul(*[self.ref(a, [letters[l] for l in n.ins[j]]) for j, a in enumerate(n.args) if j != kk])
            y = self.ref(n, [letters[l] for l in n.out])       # u[n, m], with u's own indices
            dydx = Partial(y, x)
            self.doc.add(Para(up + S("local_einsum", arg=m(sp.Symbol(nt.name(arg)))) + then))
            self.doc.add(Equation(dydx, local, role="local"))
        elif s.rule == "slice":     # gates[n, H + k] -> z_f[n, k]: the gradient goes back into those columns
            tot = self.d.adjoints[arg.id]
            self.doc.add(Para(up + S("local_slice", g=m(sp.Symbol(nt.name(tot))))))
            cols = list(node_idx[:-1]) + [node_idx[-1] + s.node.start]
            self.doc.add(Equation(self.ref(tot, cols), self.ref(s.upstream, node_idx), role="chain"))
            return
        else:
            key = {"sum": "local_sum", "max": "local_max", "unfold": "local_unfold"}.get(s.rule, "local_expand")
            self.doc.add(Para(up + S(key, u=m(sp.Symbol(nt.name(s.node))), x=m(sp.Symbol(nt.name(arg))),
                                     g=m(sp.Symbol(nt.name(self.d.adjoints[arg.id]))),
                                     du=m(sp.Symbol(nt.name(s.upstream)))) + then))
        rhs = nt.element(s.contribution, arg_idx, stop=self.stop_named)
        rhs = rhs if rhs.has(sp.Sum) else nice(rhs)
        tot = self.d.adjoints[arg.id]
        for term, rest, v, (vsum, proof) in vanishing_terms(self, s, node_idx, arg_idx):
            self.doc.add(Para(S("cancel", term=m(term), rest=m(rest), v=m(v), j=m(vsum.limits[0][0]))))
            self.doc.add(Equation(vsum, proof, role="aux"))
            self.doc.add(Equation(proof, linear_sum(proof.function, *proof.limits[0][:1], proof.limits[0][2] + 1),
                                  role="aux"))
        if single:
            self.eq(tot, rhs, "chain", arg_idx, defines=tot.id not in {g.id for g in self.d.grad_inputs})
            mat = nt.matrix(s.contribution)
            if mat is not None:
                self.doc.add(Equation(sp.MatrixSymbol(nt.name(tot), *arg.shape), mat, role="matrix"))
        else:
            self.doc.add(Para(S("product_part", g=m(self.ref(tot, arg_idx)))))
            lhs = sp.Mul(Partial(sp.Symbol("L"), y), dydx, evaluate=False)
            self.doc.add(Equation(lhs, rhs, role="chain"))

    @staticmethod
    def _node_idx(n, arg_idx):
        """Indices of a structural node's element that an element ``arg[arg_idx]`` feeds."""
        if isinstance(n, T.Reduce):
            return [None if k in n.axes else i for k, i in enumerate(arg_idx) if n.keepdims or k not in n.axes]
        if isinstance(n, T.Expand):
            out = list(arg_idx)
            for a in n.axes:
                out.insert(a, None)
            return out
        return [None] * len(n.shape)

    def simplifications(self):
        S, nt = self.S, self.nt
        self.doc.add(Heading(2, S.text("h_simpl")))
        items = []
        for s in self.d.steps:
            if s.rule == "elementwise" and s.local_used is not None and s.local_used != s.local:
                node_idx = nt.idx(s.node.shape)
                sub = {a.sym: self.ref(a, nt.align(node_idx, s.node.shape, a.shape)) for a in s.node.args}
                sub[s.node.sym] = self.ref(s.node, node_idx)
                used = s.local_used.xreplace(sub)
                items.append(S("simpl_output" if s.why == "output" else "simpl_indicator",
                               y=m(self.ref(s.node)), x=m(self.ref(nt.resolve(s.arg))),
                               local=m(s.local.xreplace(sub)), used=m(used),
                               nice=[] if nice(used) == used else [" = ", m(nice(used))]))
        for n in self.d.forward_nodes:
            if isinstance(n, T.Map):
                e = nt.element(n, self.idx(n), stop=lambda _: True)
                st = stabilize(e)
                if st != e:
                    items.append(S("simpl_stable", expr=m(e), stable=m(st)))
        items += self.accuracy_notes()
        self.doc.add(Bullets(items) if items else Para(S("simpl_none")))

    def accuracy_notes(self) -> list:
        """What ``symgrad.ir.accuracy`` did to the kernel (``kernel.meta["accuracy"]``), said in words."""
        S = self.S
        by_code = {self.nt.code_names.get(n.id): n for n in self.d.forward_nodes + list(self.d.adjoints.values())}

        def name(code):
            n = by_code.get(code)
            return m(self.ref(n)) if n is not None else code

        out = []
        for note in self.kernel.meta.get("accuracy", []):
            if note[0] == "mean":
                out.append(S("simpl_mean", mean=name(note[1]), v=name(note[2])))
            else:
                _, grad, r, v, w = note
                out.append(S("simpl_powers", grad=name(grad), r=name(r), v=name(v), w=name(w)))
        return out
