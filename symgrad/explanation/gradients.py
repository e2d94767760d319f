"""The last sections of a layer's explanation: final gradients and the values saved for backward.

Final gradients are printed three ways, all SymPy objects from the derivation: in index notation in
terms of the named gradients, in matrix form for 2-D contractions, and with every step substituted and
simplified by SymPy (``symgrad.explanation.simplify``), where a value normalized by its own sum
(``e / sum(e)``, the softmax) is named so SymPy can cancel the sum (cross-entropy: ``dloss (p - Y) / N``).
The saved values are ``lower(spec).backward.saved``, each with the chain-rule steps that read it.
"""
from __future__ import annotations

import sympy as sp

from ..spec import tensor as T
from .model import Equation, Heading, Para, Table, m
from .simplify import agrees, nice, simplest
from .windows import reads_windows


def _pull_constants(e):
    """``Sum(c f(j), j) -> c Sum(f(j), j)`` for every factor c free of the summation index j."""
    def pull(s):
        (j, lo, hi), = s.limits
        out = 0
        for term in sp.Add.make_args(sp.expand(s.function)):
            c, rest = [], []
            for f in sp.Mul.make_args(term):
                (rest if f.has(j) else c).append(f)
            out += sp.Mul(*c) * sp.Sum(sp.Mul(*rest), (j, lo, hi))
        return out
    return e.replace(lambda x: isinstance(x, sp.Sum) and len(x.limits) == 1, pull)


def shape_math(shape, S) -> object:
    if not shape:
        return S.text("scalar")
    inner = ", ".join(str(d) for d in shape)
    return m(None, latex="(" + ", ".join(sp.latex(d) for d in shape) + ")", text=f"({inner})")


class GradientSections:
    """Mixin of the layer builder (``symgrad.explanation.layers.PageBuilder``)."""

    def final(self):
        S, nt, d = self.S, self.nt, self.d
        self.doc.add(Heading(2, S.text("h_final")))
        grad_ids = {g.id for g in d.grad_inputs}
        said = False
        steps = {(e.defines, e.rhs): e for e in self.doc.equations() if e.role in ("chain", "total")}
        for inp in self.spec.diff_inputs:
            g = d.grads[inp.name]
            if g.id not in nt.names:
                nt.names[g.id] = "d" + inp.name
            idx = nt.idx(inp.shape)
            compact = nt.element(g, idx, stop=self.stop_named)
            compact = compact if compact.has(sp.Sum) else nice(compact)
            concat = any(isinstance(n, T.Concat) for n in T.walk([g]))
            full = nt.element(g, idx, stop=lambda n: n.id in self.fwd_ids or n.id in grad_ids)
            # a scatter-add (Fold) is re-indexed by symgrad.explanation.textbook_windows instead:
            # sympy.simplify moves its Piecewise through the sums and gains nothing
            simple = compact if concat or reads_windows(g) else simplest(full)
            step = steps.get((nt.name(g), compact))
            if step is not None:        # the step computed the whole gradient: it is the final one, no repeat
                step.role = "final"
                if simple != compact:
                    if not said:
                        self.doc.add(Para(S("final_update") + [" "] + S("final_all")))
                        said = True
                    self.eq(g, simple, "simplified", idx)
            else:
                self.doc.add(Para(S("final_intro", x=m(self.ref(inp)))))
                self.eq(g, compact, "final", idx)
                mat = nt.matrix(g)
                if mat is not None:
                    self.doc.add(Equation(sp.MatrixSymbol(nt.name(g), *inp.shape), mat, role="matrix"))
                if concat:
                    continue     # the blocks of a concatenation read better than one Piecewise per element
                if simple != compact:
                    self.doc.add(Para(S("final_full")))
                    self.eq(g, simple, "simplified", idx)
            self._normalized(g, simple, idx)
            self._named_product(g, idx, [compact, simple])
        if not said:
            self.doc.add(Para(S("final_update") + [" "] + S("final_in_steps")))

    def _named_product(self, g, idx, shown):
        """The gradient in terms of a named product ``p = a*b`` of the forward pass and its gradient ``dp``.

        Every step is substituted down to forward values, upstream gradients and ``dp``; ``a`` is
        replaced by ``p / b`` (exact, as ``p = a b``); factors that do not depend on a summation index
        are taken out of the sums and common factors out of the whole (``sympy.factor_terms``). For
        LayerNorm (``xhat = xc rstd``) this is the compact ``rstd (dxhat - sum(dxhat)/D - xhat
        sum(dxhat xhat)/D)``. Shown when it differs from the forms above, is no longer than SymPy's, divides
        by no ``b`` (which may be 0) and agrees with them numerically.
        """
        S, nt, d = self.S, self.nt, self.d
        grad_ids = {gi.id for gi in d.grad_inputs}
        for p in d.forward_nodes:
            if not (isinstance(p, T.Map) and p.name and len(p.args) == 2 and p.expr == p.args[0].sym * p.args[1].sym
                    and p.id in d.adjoints and all(a.name for a in p.args) and p.args[0].shape == p.shape):
                continue
            a, b = p.args
            dp = d.adjoints[p.id]
            if dp.id not in nt.names or dp.id == g.id:
                continue
            full = nt.element(g, idx, stop=lambda n: n.id in self.fwd_ids or n.id in grad_ids or n.id == dp.id)
            A, P = sp.IndexedBase(nt.name(a)), sp.IndexedBase(nt.name(p))

            def swap(e, b=b, a=a):
                return P[e.indices] / self.ref(b, nt.align(list(e.indices), a.shape, b.shape))

            new = full.replace(lambda e: isinstance(e, sp.Indexed) and e.base == A, swap)
            if new == full:
                continue
            new = sp.factor_terms(_pull_constants(sp.expand(new)))
            back = new.replace(lambda e: isinstance(e, sp.Indexed) and e.base == P,      # p -> a b again
                               lambda e: A[e.indices] * self.ref(b, nt.align(list(e.indices), a.shape, b.shape)))
            B = nt.name(b)
            divides = any(x.exp.is_negative and str(getattr(x.base, "base", x.base)) == B for x in new.atoms(sp.Pow))
            if (new.has(A) or divides or any(new == x for x in shown) or sp.count_ops(new) > sp.count_ops(shown[-1])
                    or not agrees(full, back)):
                continue
            self.doc.add(Para(S("final_named", p=m(self.ref(p)), a=m(self.ref(a)), b=m(self.ref(b)),
                                dp=m(self.ref(dp, nt.idx(p.shape))))))
            self.eq(g, new, "simplified", idx)
            return

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
            if p is None:           # a value of its own; an existing one (softmax's a) was defined in forward
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
                    tot = d.adjoints.get(nt.resolve(s.arg).id)
                    g = nt.name(tot) if tot is not None and tot.id in nt.names else "d" + nt.name(nt.resolve(s.arg))
                    readers += S("why_step", g=g, k=self.step_no.get(id(s), "?"))
                    readers.append("; ")
            rows.append([[m(self.ref(n))], [code], [shape_math(n.shape, S)], readers[:-1]])
            self.doc.saved.append(nt.name(n))
        if rows:
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
