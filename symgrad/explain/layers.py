"""The explanation of a layer, activation or loss, collected from ``spec.derivation`` and the kernel IR.

Sections: symbols and shapes; forward equations; the chain rule one ``Step`` at a time (upstream
gradient, SymPy's local derivative, what the engine used, their product); the engine's
simplifications; the final gradients (index notation, matrix form, composed and simplified by SymPy);
what forward saves for backward (``lower(spec).backward.saved``) and which step reads it.
Nothing here writes a formula by hand: every expression is a SymPy object taken from the derivation.
"""
from __future__ import annotations

import sympy as sp

from ..derive.stable import stabilize
from ..lower import lower
from ..spec import tensor as T
from .model import Bullets, Document, Equation, Heading, Para, Table, m
from .notation import Notation, Partial
from .simplify import nice, simplest
from .strings import Strings


def build(spec, lang: str = "en") -> Document:
    S = Strings(lang)
    kernel = lower(spec)
    nt = Notation(spec, kernel)
    doc = Document(spec.name, spec.kind, lang, S.text("title", name=spec.name))
    first = (spec.doc or "").strip().splitlines()
    if first:
        doc.add(Para([first[0]]))
    doc.add(Para(S("intro", kind=S.text("kind_" + spec.kind), name=spec.name)))
    B = _Builder(spec, nt, S, doc, kernel)
    B.legend()
    B.forward()
    B.backward()
    B.simplifications()
    B.final()
    B.saved()
    doc.dims = {i: d for d, i in nt.index.items()}
    doc.add(Heading(2, S.text("h_code")))
    doc.add(Para(S("code_note", name=spec.name)))
    return doc


def shape_math(shape, S) -> object:
    if not shape:
        return S.text("scalar")
    inner = ", ".join(str(d) for d in shape)
    return m(None, latex="(" + ", ".join(sp.latex(d) for d in shape) + ")", text=f"({inner})")


class _Builder:
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
        self.doc.add(Heading(2, S.text("h_legend")))
        self.doc.add(Para(S("legend_dims")))
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
            rows.append([[m(dim)], [m(i)], meaning])
        self.doc.add(Table([S.text("col_dim"), S.text("col_index"), S.text("col_meaning")], rows))
        rows = []
        outs = {o.id for o in spec.outputs}
        for n in self.d.forward_nodes:
            if isinstance(n, T.StopGradient):
                continue
            if isinstance(n, T.Input):
                role = S("role_ids", bound=m(n.bound)) if n.kind == "index" else \
                    S("role_input" if n.differentiable else "role_const")
            else:
                role = S("role_output" if n.id in outs else "role_inter")
            rows.append([[m(self.ref(n))], [shape_math(n.shape, S)], role, [self.code(n)]])
        for h in spec.hypers:
            rows.append([[m(h)], [S.text("scalar")], S("role_hyper", default=h.default), [h.name]])
        for g in self.d.grad_inputs:
            rows.append([[m(self.ref(g))], [shape_math(g.shape, S)],
                         S("role_upstream", of=m(self.ref(g.upstream_of))), [g.name]])
        for fid, tot in self.d.adjoints.items():
            if tot.id in {g.id for g in self.d.grad_inputs}:
                continue
            f = nt.by_id[fid]
            rows.append([[m(self.ref(tot, nt.idx(f.shape)))], [shape_math(f.shape, S)],
                         S("role_grad", of=m(self.ref(f))), [self.code(tot)]])
        self.doc.add(Table([S.text(k) for k in ("col_symbol", "col_shape", "col_role", "col_code")], rows))

    def forward(self):
        S, nt = self.S, self.nt
        self.doc.add(Heading(2, S.text("h_forward")))
        self.doc.add(Para(S("forward_intro")))
        for n in self.d.forward_nodes:
            if isinstance(n, (T.Input, T.StopGradient)):
                continue
            idx = self.idx(n)
            self.eq(n, nt.element(n, idx, stop=lambda _: True), "forward", idx)
            mat = nt.matrix(n)
            if mat is not None:
                self.doc.add(Para(S("matrix_form")))
                self.doc.add(Equation(sp.MatrixSymbol(nt.name(n), *n.shape), mat, role="matrix"))
            for a in n.args:
                if isinstance(a, T.StopGradient):
                    self.doc.add(Para(S("stop_note", m=m(self.ref(a)))))

    def backward(self):
        S, nt, d = self.S, self.nt, self.d
        self.doc.add(Heading(2, S.text("h_backward")))
        ups = [m(self.ref(g)) for g in d.grad_inputs]
        joined = [p for u in ups for p in (", ", u)][1:]
        self.doc.add(Para(S("backward_intro", up=joined)))
        by_node: dict = {}
        into: dict = {}
        for s in d.steps:
            by_node.setdefault(s.node.id, []).append(s)
            into.setdefault(s.arg.id, []).append(s)
        k = 0
        for f in reversed(d.forward_nodes):
            tot = d.adjoints.get(f.id)
            if tot is None:
                continue
            if len(into.get(f.id, [])) > 1:
                idx = nt.idx(f.shape)
                self.doc.add(Para(S("total", x=m(self.ref(f)), g=m(self.ref(tot, idx)))))
                self.eq(tot, nt.element(tot, idx, stop=self.stop_named), "total", idx)
            for s in by_node.get(f.id, []):
                k += 1
                self.step_no[id(s)] = k
                self.step(s, k, single=len(into[s.arg.id]) == 1)

    def step(self, s, k, single):
        S, nt = self.S, self.nt
        node_idx = nt.idx(s.node.shape)
        arg = nt.resolve(s.arg)
        arg_idx = nt.idx(arg.shape)
        head = S.text("h_through", k=k, node=nt.name(s.node), arg=nt.name(arg))
        self.doc.add(Heading(3, head))
        self.doc.add(Para(S("upstream", g=m(self.ref(s.upstream, node_idx)))))
        if s.rule == "elementwise":
            y, x = self.ref(s.node, node_idx), self.ref(arg, nt.align(node_idx, s.node.shape, arg.shape))
        else:
            y, x = self.ref(s.node, self._node_idx(s.node, arg_idx)), self.ref(arg, arg_idx)
        dydx = Partial(y, x)
        if s.rule == "elementwise":
            sub = {a.sym: self.ref(a, nt.align(node_idx, s.node.shape, a.shape)) for a in s.node.args}
            sub[s.node.sym] = y
            self.doc.add(Para(S("local")))
            self.doc.add(Equation(dydx, s.local.xreplace(sub), role="local"))
            if s.local_used is not None and s.local_used != s.local:
                self.doc.add(Para(S("local_used", y=m(y))))
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
            self.doc.add(Para(S("local_einsum", arg=m(sp.Symbol(nt.name(arg))))))
            self.doc.add(Equation(Partial(y, x), local, role="local"))
        else:
            self.doc.add(Para(S({"sum": "local_sum", "max": "local_max"}.get(s.rule, "local_expand"))))
        rhs = nt.element(s.contribution, arg_idx, stop=self.stop_named)
        rhs = rhs if rhs.has(sp.Sum) else nice(rhs)
        tot = self.d.adjoints[arg.id]
        if single:
            self.doc.add(Para(S("product")))
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
                items.append(S("simpl_output", y=m(self.ref(s.node)), x=m(self.ref(nt.resolve(s.arg))),
                               local=m(s.local.xreplace(sub)), used=m(used),
                               nice=[] if nice(used) == used else [" = ", m(nice(used))]))
        for n in self.d.forward_nodes:
            if isinstance(n, T.Map):
                e = nt.element(n, self.idx(n), stop=lambda _: True)
                st = stabilize(e)
                if st != e:
                    items.append(S("simpl_stable", expr=m(e), stable=m(st)))
        self.doc.add(Bullets(items) if items else Para(S("simpl_none")))

    def final(self):
        S, nt, d = self.S, self.nt, self.d
        self.doc.add(Heading(2, S.text("h_final")))
        grad_ids = {g.id for g in d.grad_inputs}
        for inp in self.spec.diff_inputs:
            g = d.grads[inp.name]
            if g.id not in nt.names:
                nt.names[g.id] = "d" + inp.name
            idx = nt.idx(inp.shape)
            self.doc.add(Para(S("final_intro", x=m(self.ref(inp)))))
            compact = nt.element(g, idx, stop=self.stop_named)
            self.eq(g, compact, "final", idx)
            mat = nt.matrix(g)
            if mat is not None:
                self.doc.add(Para(S("final_matrix")))
                self.doc.add(Equation(sp.MatrixSymbol(nt.name(g), *inp.shape), mat, role="matrix"))
            full = nt.element(g, idx, stop=lambda n: n.id in self.fwd_ids or n.id in grad_ids)
            simple = simplest(full)
            if simple != compact:
                self.doc.add(Para(S("final_full")))
                self.eq(g, simple, "simplified", idx)
            self._normalized(g, simple, idx)
        self.doc.add(Para(S("final_update")))

    def _normalized(self, g, expr, idx):
        """Rewrite ``x / sum(x)`` pairs (softmax) through their normalized value and simplify again."""
        S, nt = self.S, self.nt
        for s in self.d.forward_nodes:
            if not (isinstance(s, T.Reduce) and s.kind == "sum" and s.keepdims and isinstance(s.args[0], T.Map)):
                continue
            x = s.args[0]
            bases = {str(b.base) for b in expr.atoms(sp.Indexed)}
            if nt.name(x) not in bases or nt.name(s) not in bases:
                continue
            p = next((n for n in self.d.forward_nodes if isinstance(n, T.Map) and n.expr == x.sym / s.sym), None)
            pname = nt.name(p) if p is not None else nt._fresh("p")
            P, Sb = sp.IndexedBase(pname), sp.IndexedBase(nt.name(s))

            def swap(e, x=x, s=s):
                ii = list(e.indices)
                full, it = [], iter(ii)
                for k, dd in enumerate(x.shape):
                    full.append(next(it) if dd != 1 else None)
                sidx = [None if (k in s.axes or dd == 1) else full[k] for k, dd in enumerate(x.shape)]
                sidx = [i for i in sidx if i is not None]
                return P[tuple(ii)] * (Sb[tuple(sidx)] if sidx else sp.Symbol(nt.name(s), real=True))

            new = simplest(expr.replace(lambda e: isinstance(e, sp.Indexed) and str(e.base) == nt.name(x), swap))
            if nt.name(s) in {str(b.base) for b in new.atoms(sp.Indexed)}:
                continue
            xi = nt.idx(x.shape)
            soft = []
            if isinstance(x.expr, sp.exp):
                z = [a for a in x.args if a.differentiable]
                if len(z) == 1:
                    soft = S("softmax_of", z=m(sp.Symbol(nt.name(z[0]))))
            self.doc.add(Para(S("final_norm", p=m(sp.Symbol(pname)), e=m(sp.Symbol(nt.name(x))),
                                s=m(sp.Symbol(nt.name(s))), soft=soft)))
            live = tuple(i for i in xi if i is not None)
            self.doc.add(Equation(P[live], self.ref(x, xi) / self.ref(s, nt.align(xi, x.shape, s.shape)),
                                  defines=pname, indices=live, role="aux"))
            self.eq(g, new, "simplified", idx)
            return

    def saved(self):
        S, nt, d = self.S, self.nt, self.d
        self.doc.add(Heading(2, S.text("h_saved")))
        by_code = {v: k for k, v in nt.code_names.items()}
        all_nodes = {n.id: n for n in d.forward_nodes}
        rows = []
        for code in self.kernel.backward.saved:
            n = all_nodes.get(by_code.get(code))
            if n is None:
                continue
            readers = []
            for s in d.steps:
                if n.id in self._reads(s):
                    readers += S("why_step", arg=nt.name(nt.resolve(s.arg)), k=self.step_no.get(id(s), "?"))
                    readers.append("; ")
            rows.append([[m(self.ref(n))], [code], [shape_math(n.shape, S)], readers[:-1]])
        if rows:
            self.doc.add(Para(S("saved_intro")))
            self.doc.add(Table([S.text("col_symbol"), S.text("col_code"), S.text("col_shape"), S.text("col_why")],
                               rows))
        else:
            self.doc.add(Para(S("saved_none")))

    def _reads(self, s) -> set:
        up = {n.id for n in T.walk([s.upstream])}
        out = set()
        for n in T.walk([s.contribution]):
            if n.id in self.fwd_ids or n.id in up:
                continue
            out |= {self.nt.resolve(a).id for a in n.args if a.id in self.fwd_ids}
        return out
