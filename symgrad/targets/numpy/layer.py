"""NumPy target for layers: kernel IR -> the context ``templates/numpy/layer.py.j2`` renders."""
from __future__ import annotations

import sympy as sp

from ...ir import nodes as ir
from ...spec.tensor import ANY
from ...codegen.printers import mathstr, pycode

_MATMUL = {  # einsum of two 2-D operands -> matmul with transposes
    "ik,kj->ij": "{a} @ {b}", "ki,kj->ij": "{a}.T @ {b}",
    "ik,jk->ij": "{a} @ {b}.T", "ki,jk->ij": "{a}.T @ {b}.T",
    "kj,ik->ij": "{b} @ {a}", "kj,ki->ij": "{b}.T @ {a}",
    "jk,ik->ij": "{b} @ {a}.T", "jk,ki->ij": "{b}.T @ {a}.T",
}


def _canon(subscripts: str) -> str:
    """Rename einsum letters in order of appearance in the output (i, j) then contracted (k)."""
    lhs, out = subscripts.split("->")
    mapping = {}
    for c, new in zip(out, "ij"):
        mapping[c] = new
    for c in lhs.replace(",", ""):
        if c not in mapping:
            mapping[c] = "k"
    return "".join(mapping.get(c, c) for c in subscripts)


class NumpyLayerEmitter:
    def __init__(self, k: ir.Kernel):
        self.k = k
        self.any_ref = next((a.name for a in k.inputs if tuple(a.shape) == (ANY,)), None)

    # -- shapes ----------------------------------------------------------------------------
    def shape(self, shape) -> str:
        if tuple(shape) == (ANY,):
            return "shape"
        if tuple(shape) == ():
            return "()"
        return "(" + ", ".join(pycode(sp.sympify(d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"

    shape_text = staticmethod(ir.shape_text)

    def code(self, e) -> str:
        """NumPy source of a statement's expression (1/D of a dimension as ``_inv(D)``)."""
        return pycode(e, [str(d) for d in self.k.dims])

    # -- statements ------------------------------------------------------------------------
    def statement(self, s) -> list[str]:
        code = self.code
        lines = [f"{t.name} = {code(e)}" for t, e in getattr(s, "temps", [])]
        if isinstance(s, ir.Elementwise):
            if s.expr.is_Number:
                lines.append(f"{s.out} = np.full({self.shape(s.shape)}, {code(s.expr)}, dtype=dtype)")
            elif s.broadcast:
                lines.append(f"{s.out} = np.broadcast_to({code(s.expr)}, {self.shape(s.shape)}).astype(dtype)")
            else:
                lines.append(f"{s.out} = {code(s.expr)}")
        elif isinstance(s, ir.Reduction):
            fn = "np.sum" if s.kind == "sum" else "np.max"
            if tuple(s.src_shape) == (ANY,) or len(s.axes) == len(s.src_shape):
                axis = "None"
            else:
                axis = str(s.axes[0]) if len(s.axes) == 1 else str(tuple(s.axes))
            keep = ", keepdims=True" if s.keepdims and axis != "None" else ""
            if s.kind == "max":   # an empty axis gives -inf (as the C loops) instead of a ValueError
                keep += ", initial=-np.inf"
            if s.keepdims and axis == "None" and s.shape != ():
                keep = ", keepdims=True"
            lines.append(f"{s.out} = {fn}({code(s.expr)}, axis={axis}{keep})")
        elif isinstance(s, ir.Einsum):
            lines.append(f"{s.out} = {self.einsum(s)}")
        elif isinstance(s, ir.OneHot):
            lines.append(f"{s.out} = ({s.index}[..., None] == np.arange({pycode(s.classes)})).astype(dtype)")
        elif isinstance(s, ir.Expand):
            lines.append(f"{s.out} = np.expand_dims({s.src}, {tuple(s.axes)})")
        elif isinstance(s, ir.Slice):
            lines.append(f"{s.out} = {s.src}[..., {pycode(s.start)}:{pycode(s.stop)}]")
        elif isinstance(s, ir.Window):
            fill = {sp.oo: "np.inf", -sp.oo: "-np.inf"}.get(s.fill) or f"{float(s.fill)!r}"
            n = len(s.size)
            lines.append(f"{s.out} = _unfold({s.src}, {self.tup(s.size)}, {self.tup(s.stride)}, "
                         f"{self.tup(s.padding)}, {self.tup(s.dilation)}, {self.tup(s.shape[-n:])}, {fill})")
        elif isinstance(s, ir.WindowAdd):
            n = len(s.size)
            lines.append(f"{s.out} = _fold({s.src}, {self.tup(s.shape[-n:])}, {self.tup(s.size)}, "
                         f"{self.tup(s.stride)}, {self.tup(s.padding)}, {self.tup(s.dilation)}, "
                         f"{self.tup(s.src_shape[-n:])})")
        elif isinstance(s, ir.Concat):
            parts = [p if p is not None else
                     f"np.zeros({self.shape(tuple(s.shape[:-1]) + (w,))}, dtype=dtype)"
                     for p, w in zip(s.parts, s.widths)]
            lines.append(f"{s.out} = np.concatenate(({', '.join(parts)},), axis=-1)")
        else:  # pragma: no cover
            raise TypeError(s)
        return lines

    @staticmethod
    def tup(values) -> str:
        return "(" + "".join(f"{pycode(sp.sympify(v))}, " for v in values) + ")"

    def einsum(self, s: ir.Einsum) -> str:
        ops = s.operands
        if len(ops) == 1:
            lhs, out = s.subscripts.split("->")
            if len(out) == 2:
                return f"{ops[0]}.T"
            return f"np.transpose({ops[0]}, {tuple(lhs.index(c) for c in out)})"
        canon = _canon(s.subscripts)
        if canon in _MATMUL:
            return _MATMUL[canon].format(a=ops[0], b=ops[1])
        lhs, out = s.subscripts.split("->")
        a, b = lhs.split(",")
        # batch-leading matmul: (..., k) @ (k, j)
        if len(b) == 2 and a[:-1] == out[:-1] and a[-1] == b[0] and b[1] == out[-1]:
            return f"{ops[0]} @ {ops[1]}"
        if len(b) == 2 and a[:-1] == out[:-1] and a[-1] == b[1] and b[0] == out[-1]:
            return f"{ops[0]} @ {ops[1]}.T"
        return f"np.einsum({s.subscripts!r}, {ops[0]}, {ops[1]}, optimize=True)"

    # -- text for docstrings ---------------------------------------------------------------
    def equation(self, s) -> str:
        if isinstance(s, ir.Elementwise):
            return f"{s.out} = {mathstr(ir.full_expr(s))}"
        if isinstance(s, ir.Reduction):
            e = ir.full_expr(s)
            over = "all axes" if len(s.axes) == len(s.src_shape) or tuple(s.src_shape) == (ANY,) else \
                "axis " + ", ".join(str(a) for a in s.axes)
            return f"{s.out} = {s.kind}({mathstr(e)}) over {over}"
        if isinstance(s, ir.Einsum):
            return f"{s.out} = {self.einsum(s)}" if "einsum" not in self.einsum(s) else \
                f"{s.out} = einsum('{s.subscripts}', {', '.join(s.operands)})"
        if isinstance(s, ir.OneHot):
            return f"{s.out} = one_hot({s.index}, {s.classes})"
        if isinstance(s, ir.Slice):
            return f"{s.out} = {s.src}[..., {s.start}:{s.stop}]"
        if isinstance(s, ir.Concat):
            return f"{s.out} = concat({', '.join(p or '0' for p in s.parts)})"
        if isinstance(s, ir.Window):
            return (f"{s.out} = unfold({s.src}, size={self.tup(s.size)}, stride={self.tup(s.stride)}, "
                    f"padding={self.tup(s.padding)}, dilation={self.tup(s.dilation)})")
        if isinstance(s, ir.WindowAdd):
            return (f"{s.out} = fold({s.src}, size={self.tup(s.size)}, stride={self.tup(s.stride)}, "
                    f"padding={self.tup(s.padding)}, dilation={self.tup(s.dilation)}): the transpose of unfold")
        return f"{s.out} = expand_dims({s.src}, {s.axes})"

    def size_binds(self) -> list[str]:
        """Lines that check the size keywords (stride, padding, ...): ints >= their minimum."""
        out = []
        for n, default, minimum in self.k.sizes:
            fallback = f", default={default}" if isinstance(default, str) else ""
            out.append(f"{n} = _size(\"{n}\", {n}, {minimum}{fallback})")
        return out

    def out_dim_binds(self, cached: bool = False) -> list[str]:
        """Lines that compute the window-position dims (``H_out``) from the others; from a cache,
        lines that check the cached ones against the cached sizes."""
        out = []
        for n, num, stride in self.k.out_dims:
            value = f'_out_dim("{n}", {pycode(num)}, {pycode(stride)}, "{num}")'
            out.append(f'_window_cache(cache, "{n}", {n}, {value})' if cached else f"{n} = {value}")
        return out

    def validation(self, inputs) -> tuple[list[str], list[str], list[str]]:
        """Lines that bind the dims from the arguments' shapes, then check every shape.

        Returns (binds, checks, dims in binding order)."""
        plain_dims, order = {}, []
        for a in inputs:
            for ax, d in enumerate(a.shape):
                if isinstance(d, sp.Symbol) and d not in plain_dims and d != ANY:
                    plain_dims[d] = (a.name, ax)
                    order.append(d)
        # each check is inlined as a comparison (a call costs as much as the check: ~0.3 us); the
        # helper runs only to raise its message
        binds = [f'if {a.name}.ndim != {len(a.shape)}: _check_ndim("{a.name}", {a.name}, {len(a.shape)}, '
                 f'"{self.shape_text(a.shape)}")' for a in inputs if tuple(a.shape) != (ANY,)]
        binds += [f"{d} = {plain_dims[d][0]}.shape[{plain_dims[d][1]}]" for d in order]
        binds += self.size_binds() + self.out_dim_binds()
        order += [sp.Symbol(n) for n, _, _ in self.k.sizes] + [sp.Symbol(n) for n, _, _ in self.k.out_dims]
        if self.any_ref:
            binds.append(f"shape = {self.any_ref}.shape")
            binds.append(f"{ANY} = {self.any_ref}.size")
        checks = []
        for a in inputs:
            if tuple(a.shape) == (ANY,):
                if a.name != self.any_ref:
                    checks.append(f'_check_shape("{a.name}", {a.name}, {self.any_ref}.shape, '
                                  f'"the shape of {self.any_ref}")')
            else:
                checks.append(f'if {a.name}.shape != {self.shape(a.shape)}: _check_shape("{a.name}", {a.name}, '
                              f'{self.shape(a.shape)}, "{self.shape_text(a.shape)}")')
            if a.kind == "index":
                checks.append(f'_check_ids("{a.name}", {a.name}, {pycode(a.bound)})')
        return binds, checks, [str(d) for d in order]

    def cache_values(self) -> tuple[set, list[tuple[str, str]]]:
        """(saved inputs, [(name, source of the value the cache keeps)]): every saved array through
        ``_owned``, so the cache holds what backward reads in memory no caller can edit. A saved
        input is owned where it is converted (a conversion may already have made it a copy); a
        returned output is copied, and so is an intermediate that is an input under another name
        (``t = x``); other intermediates are copied only if they are views (``_owned`` looks)."""
        k = self.k
        inputs = {a.name for a in k.inputs}
        outputs = {o.name for o in k.outputs}
        alias = {s.out: str(s.expr) for s in k.forward.body
                 if isinstance(s, ir.Elementwise) and s.expr.is_Symbol and not s.broadcast}
        def is_input(n):
            while n in alias:
                n = alias[n]
            return n in inputs
        buffers = {a.name for a in k.inputs if a.buffer}   # updated in place: never owned at conversion
        saved_inputs = {n for n in k.backward.saved if n in inputs and n not in buffers}
        values = [(n, n if n in saved_inputs else
                   f"_owned({n}, {n})" if n in buffers else   # forward itself updates a buffer: always copied
                   f"_owned({n}, {n}, borrow)" if n in outputs or is_input(n) else f"_owned({n}, None, borrow)")
                  for n in k.backward.saved]
        return saved_inputs, values

    def context(self) -> dict:
        k = self.k
        saved_inputs, cache_values = self.cache_values()
        binds, checks, order = self.validation(k.inputs)
        fwd = [l for s in k.forward.body for l in self.statement(s)]
        bwd = [l for s in k.backward.body for l in self.statement(s)]
        dims_saved = order + (["shape", str(ANY)] if self.any_ref else [])
        return dict(
            dims_legend=order + ([str(ANY)] if self.any_ref else []),
            any_dim=str(ANY),
            saved=[(n, self.shape(k.backward.shapes[n]), n in {a.name for a in k.inputs if a.kind == "index"})
                   for n in k.backward.saved],
            k=k, e=self, binds=binds, checks=checks, fwd=fwd, bwd=bwd, dims_saved=dims_saved,
            fwd_eqs=[self.equation(s) for s in k.forward.body],
            bwd_eqs=[self.equation(s) for s in k.backward.body],
            real_inputs=[a for a in k.inputs if a.kind == "real"],
            index_inputs=[a for a in k.inputs if a.kind == "index"],
            is_loss=k.loss,
            grads=[a for a in k.inputs if a.grad],
            uses_sigmoid=any("_sigmoid(" in l for l in fwd + bwd),
            uses_window=bool(k.sizes or k.out_dims),
            buffers={a.name for a in k.inputs if a.buffer},
            window_checks=self.out_dim_binds(cached=True),
            sizes=[(n, "None" if isinstance(d, str) else d, d) for n, d, _ in k.sizes],
            saved_inputs=saved_inputs, cache_values=cache_values,
        )
