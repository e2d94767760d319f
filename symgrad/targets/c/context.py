"""C target: kernel IR -> the context that ``templates/c/layer.h.j2`` and ``layer.c.j2`` render."""
from __future__ import annotations

import sympy as sp

from ...codegen.printers import C_TYPES
from ...ir import nodes as ir
from ...ir.rewrite import added_products
from ...spec.tensor import ANY
from .layer import CBody, cint
from .names import Glossary, renamed, temp_names
from .plan import WINOGRAD_TILES, kept, plan, plan_kept, shape_doc
from ..numpy.layer import NumpyLayerEmitter

VARIANTS = C_TYPES

# Conventional meanings of dimension names (data, for the header's legend); others get their axis.
DIM_MEANING = {"N": "batch", "D": "input features", "M": "output features", "C": "classes",
               "H": "hidden units", "T": "time steps", str(ANY): "elements of the any-shape arrays, flattened"}

HELPERS = ("max", "min", "exp", "tanh", "sigmoid", "softplus", "heaviside", "sign", "gemm", "prep", "prepa", "window", "wino", "chunks", "rows", "copy", "stream", "skew")


def _role_text(a, fname, k) -> str:
    if a.role == "out":
        return "output, overwritten" if fname.startswith("forward") else "gradient, overwritten (not accumulated)"
    if a.role == "cache":
        copy = next((n for n, c in kept(k).items() if c == a.name), None)
        if copy is not None:
            return f"written: a copy of {copy} for the backward pass (pass it to backward as {copy})"
        return "written: saved for the backward pass"
    if a.role == "index":
        return "int64 class ids in [0, %s) (out-of-range ids give an all-zero one-hot row)" % _bound(a, k)
    if a.role == "scalar":
        return "upstream gradient, by value"
    if a.role == "in":
        g = next((x for x in k.grad_outputs if x.name == a.name), None)
        if g is not None:
            return "upstream gradient, read"
        return "read" + (", from forward" if fname == "backward" else "")
    return ""


def _bound(a, k):
    b = next((x.bound for x in k.inputs if x.name == a.name), None)
    return str(b)


class CLayerEmitter:
    def __init__(self, k: ir.Kernel):
        self.k = k
        self.fwd, self.bwd = plan(k)
        self.kept = plan_kept(k)   # (forward IR, CFunc) of NAME_forward_kept, or None
        self.np = NumpyLayerEmitter(k)

    def dim_legend(self) -> list[str]:
        out = []
        for d in self.k.dims:
            where = next(((a.name, ax) for a in self.k.inputs for ax, x in enumerate(a.shape) if x == d), None)
            meaning = DIM_MEANING.get(str(d), "")
            loc = f"axis {where[1]} of {where[0]}" if where and d != ANY else ""
            out.append(f"{d} = " + ", ".join(x for x in (meaning, loc) if x))
        return out

    def params(self, cf, real) -> list[str]:
        out = []
        for a in cf.args:
            if a.role in ("out", "cache", "scratch"):
                out.append(f"{real} *restrict {a.name}")
            elif a.role == "in":
                out.append(f"const {real} *restrict {a.name}")
            elif a.role == "index":
                out.append(f"const int64_t *restrict {a.name}")
            elif a.role in ("scalar", "hyper"):
                out.append(f"{real} {a.name}")
            else:
                out.append(f"int64_t {a.name}")
        return out

    def arg_docs(self, cf) -> list[str]:
        rows = []
        for a in cf.args:
            if a.role in ("dim", "hyper"):
                continue
            if a.role == "scratch":
                rows.append(f"scratch: {cint(cf.scratch_size())} elements of work space "
                            f"(= {self.k.name}_{cf.name}_scratch_size(...)), contents undefined afterwards")
                continue
            rows.append(f"{a.name} {shape_doc(a.shape)}: {_role_text(a, cf.name, self.k)}")
        for n, v in self.k.hypers:
            rows.append(f"{n}: hyperparameter (default {v!r})")
        return rows

    def context(self) -> dict:
        k = self.k
        funcs = []
        pairs = [(self.fwd, k.forward), (self.bwd, k.backward)]
        if self.kept is not None:
            pairs.insert(1, (self.kept[1], self.kept[0]))
        for cf, f in pairs:
            names, glossary = self.named(cf, f)
            added = added_products(f)   # y = b, then y += x @ W (add_into_product)
            eqs = [self.np.equation(s).replace(" = ", " += ", 1) if i in added else self.np.equation(s)
                   for i, s in enumerate(renamed(f, names).body)]
            variants = []
            for sfx, dtype, real in VARIANTS:
                body = CBody(k, f, cf, dtype, glossary=glossary, names=names).body()
                variants.append(dict(sfx=sfx, real=real, params=self.params(cf, real), body=body))
            dims = [a.name for a in cf.args if a.role == "dim"]
            funcs.append(dict(name=cf.name, eqs=eqs, docs=self.arg_docs(cf), variants=variants,
                              scratch=cint(cf.scratch_size()) if cf.scratch else None,
                              dims=dims, carve=[(names.get(n, n), o) for n, o in self.carve(cf)]))
        text = "\n".join(l for fn in funcs for v in fn["variants"] for l in v["body"])
        return dict(k=k, funcs=funcs, legend=self.dim_legend(),
                    helpers={h: f"sg_{h}_" in text for h in HELPERS},
                    doc=(k.doc or k.kind).strip().splitlines()[0] if k.doc else k.kind,
                    guard=f"SYMGRAD_{k.name.upper()}_H", saved=k.backward.saved, kept=list(kept(k)),
                    wino_tiles=WINOGRAD_TILES)

    def named(self, cf, f):
        """C names for the generated temporaries of ``f`` (``t0`` -> ``sum_x``: what they hold) and
        the glossary of the derivation's names that ``f`` inlined away (``xc``, ``xhat``, ``dxhat``)."""
        args = {a.name for a in cf.args}
        g = Glossary(list(self.k.equations) + list(self.k.grad_equations), args | {s.out for s in f.body})
        names = temp_names(f, args, g)
        names |= {f"_part_{a}": f"_part_{b}" for a, b in names.items()}
        return names, g

    def carve(self, cf) -> list[tuple]:
        """Scratch arrays as (name, offset) into the one scratch buffer."""
        out, off = [], sp.Integer(0)
        for n, s in cf.scratch:
            out.append((n, cint(off)))
            size = sp.Integer(1)
            for d in s:
                size *= sp.sympify(d)
            off += size
        return out
