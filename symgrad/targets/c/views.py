"""Arrays as views for the C target: flat indices by strides, so a slice reads its source in place,
an elementwise part of a concatenation writes straight into its column block, and a recurrent
kernel's per-step arrays are ``base + t*size`` into buffers stacked over time (no copies)."""
from __future__ import annotations

import sympy as sp

from ...ir import nodes as ir
from ...errors import SpecError
from ...ir.nodes import is_one, prod
from ...ir.schedule import concat_parts
from ...codegen.printers import ccode


def cint(e) -> str:
    """An integer index/size expression (dims are int64_t)."""
    return ccode(sp.sympify(e))


def cfactor(e) -> str:
    """``cint``, a sum in parentheses: for a size pasted into a product or a quotient (``_c*{size}``
    with a user layer's axis of size ``D + M`` read ``_c*D + M``: wrong values, silently)."""
    e = sp.sympify(e)
    return f"({cint(e)})" if isinstance(e, sp.Add) else cint(e)


def merge_groups(order, arrays: dict, reduced=()) -> list:
    """``order`` (axes in loop order) cut into runs of consecutive axes that one loop can cover: two
    neighbours merge when every array of ``arrays`` (name -> {axis: (size, stride)} over the axes it
    spans) spans both, the outer one's stride being the inner one's times its size, or spans neither,
    and every reduction of ``reduced`` (sets of axes) takes both or neither. Used for BatchNorm's
    channel groups (H, W -> H*W) and for the statements of a sample loop ((H_out, W_out) -> one loop)."""
    groups = [[order[0]]] if order else []
    for a in order[1:]:
        b = groups[-1][-1]
        ok = all((b in r) == (a in r) for r in reduced)
        for ax in arrays.values() if ok else ():
            if (b in ax) != (a in ax) or (a in ax and sp.expand(ax[b][1] - ax[a][1] * ax[a][0]) != 0):
                ok = False
                break
        if ok:
            groups[-1].append(a)
        else:
            groups.append([a])
    return groups


class Views:
    """Mixin of ``CBody``: ``self.views`` maps a name to (base pointer, offset, strides)."""
    def cname(self, name) -> str:
        """The C name of array or temporary ``name`` (``temp_names``: ``t0`` -> ``sum_x``)."""
        return self.names.get(name, name)

    def index(self, shape, dom, ivars, strides=None, offset=0) -> str:
        """Flat index of an array of ``shape`` broadcast (right-aligned) into domain ``dom``
        (``strides``/``offset``: a view into another buffer, else C-contiguous)."""
        if dom == "flat":  # one loop over every element: full arrays by i0, scalars by 0
            return "0" if tuple(shape) == () else "i0"
        shape, r = tuple(shape), len(dom)
        off = r - len(shape)
        terms = [sp.sympify(offset)]
        for ax, d in enumerate(shape):
            if is_one(d):
                continue
            stride = prod(shape[ax + 1:]) if strides is None else strides[ax]
            terms.append(sp.Symbol(ivars[off + ax]) * stride)
        return cint(sp.Add(*terms))

    def at(self, name, shape, dom, ivars) -> str:
        """The C lvalue of array ``name`` (of ``shape``) at the current point of domain ``dom``."""
        v = self.views.get(name)
        if v is None:
            return f"{self.cname(name)}[{self.index(shape, dom, ivars)}]"
        base, offset, strides = v
        return f"{base}[{self.index(shape, dom, ivars, strides, offset)}]"

    def ptr(self, name) -> str:
        """A pointer to the first element of a C-contiguous array or view."""
        v = self.views.get(name)
        if v is None:
            return self.cname(name)
        base, offset, strides = v
        shape = tuple(self.shapes[name])
        if any(not is_one(d) and sp.simplify(st - prod(shape[a + 1:])) != 0
               for a, (d, st) in enumerate(zip(shape, strides))):
            raise SpecError(f"{self.k.name}: the C target cannot pass the strided view {name!r} as a whole array")
        return base if sp.sympify(offset) == 0 else f"({base} + {cint(offset)})"

    def concat_parts(self, f) -> set:
        if not hasattr(self, "_parts"):
            self._parts = concat_parts(f, {a.name for a in self.cf.args})
        return self._parts

    def blocks(self) -> dict:
        """Parts written in place into a concatenation -> the concatenation (for comments)."""
        return {p: s.out for s in self.f.body if isinstance(s, ir.Concat) for p in s.parts
                if p in self.concat_parts(self.f)}

    def contiguous(self, shape):
        return tuple(prod(tuple(shape)[a + 1:]) for a in range(len(shape)))

    def plan_views(self):
        """Slices read their source in place; an elementwise part of a concatenation is written
        straight into its column block."""
        self.alias, self.copies = {}, set()
        args = {a.name for a in self.cf.args}
        for s in self.f.body:
            if isinstance(s, ir.Slice) and (s.out in self.views or s.out in args):
                self.copies.add(s.out)  # a slice saved for backward (or returned) is stored: copied
            elif isinstance(s, ir.Slice):
                self.slice_view(s)
                self.alias[s.out] = self.alias.get(s.src, s.src)
            if isinstance(s, ir.Concat):
                col = sp.Integer(0)
                for part, w in zip(s.parts, s.widths):
                    if part in self.concat_parts(self.f) and part not in self.views:
                        base, off, st = self.views.get(s.out, (self.cname(s.out), 0, self.contiguous(s.shape)))
                        self.views[part] = (base, sp.sympify(off) + col * st[-1], st)
                    col += w

    def slice_view(self, s, name=None):
        base, off, st = self.views.get(s.src, (self.cname(s.src), 0, self.contiguous(self.shapes[s.src])))
        self.views[name or s.out] = (base, sp.sympify(off) + sp.sympify(s.start) * st[-1], st)

    def slice_copy(self, s, depth):
        dom = tuple(s.shape)
        ivars = [f"i{a}" for a in range(len(dom))]
        self.slice_view(s, "_slice")
        d = self.loops(dom, range(len(dom)), ivars, depth)
        self.emit(f"{self.at(s.out, dom, dom, ivars)} = {self.at('_slice', dom, dom, ivars)};", d)
        self.close(d, depth)

    def concat(self, s, depth):
        """Parts not written in place (inputs, zero blocks) are copied into their column block."""
        col = sp.Integer(0)
        dom = tuple(s.shape)
        ivars = [f"i{a}" for a in range(len(dom))]
        for part, w in zip(s.parts, s.widths):
            if part is None or part not in self.concat_parts(self.f):
                block = dom[:-1] + (w,)
                base, off, st = self.views.get(s.out, (self.cname(s.out), 0, self.contiguous(dom)))
                self.views["_block"] = (base, sp.sympify(off) + col * st[-1], st)
                d = self.loops(block, range(len(block)), ivars, depth)
                src = "0" if part is None else self.at(part, self.shapes[part], block, ivars)
                self.emit(f"{self.at('_block', block, block, ivars)} = {src};", d)
                self.close(d, depth)
            col += w
