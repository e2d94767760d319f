"""The Python side of a C layer call, written once at load time as Python source and compiled.

A call of a compiled kernel must cost microseconds, so nothing that can be decided at load time is
decided per call: the argument checks are the NumPy module's own lines (same errors, same messages),
shapes and the scratch size are Python expressions of the dims (printed from SymPy once), the ctypes
functions have their argument types set, and the argument list is a fixed tuple of expressions (the
arrays as one tuple to the library's ``NAME_t`` twin of the function, ``shims.py``). A call then
validates, allocates its outputs, cache and scratch, and calls C; no SymPy on the path.
What the cache keeps passes through the NumPy module's ``_owned``, as in the NumPy backend: a saved
input or a returned output is copied (the C kernel reads a caller's array by address, so an in-place
edit between forward and backward would change the gradient), every cached buffer made read-only;
what the kernel itself allocated for the cache is fresh and goes through ``_sealed`` (read-only, never
copied: a large one lives on the memory pool, ``memory.py``, and owns no data).

``layer_source(k, fwd, bwd, any_ref)`` returns the source of ``forward``/``backward``; it runs in a
namespace with the NumPy module's helpers (``_real``, ``_check_shape`` ...), the ctypes functions
(``_FWD``/``_BWD`` by dtype), ``_CT`` (ctypes real type by dtype), ``_npempty``/``_empty``/``_LARGE``
(``np.empty`` and the pool), ``_contig`` and the
cache validators ``_cached``/``_cached_ids``/``_dims_of`` of ``CKernel``.
"""
from __future__ import annotations

from ...codegen.printers import pycode
from ...ir.nodes import shape_text
from ...spec.tensor import ANY
from ..numpy.layer import NumpyLayerEmitter
from .runtime import POINTER_ROLES, address_source

IND = "    "


def _shape(shape) -> str:
    """Python source of a shape tuple; an any-shape array has the shape of its reference input."""
    if tuple(shape) == (ANY,):
        return "shape"
    return "(" + "".join(f"{pycode(d)}, " for d in shape) + ")"


def _alloc(cf, roles, only=None) -> list[str]:
    """Allocation of ``cf``'s arguments whose role is in ``roles`` (``only``: these names, no scratch)."""
    lines = []
    for a in cf.args:
        if a.role in roles and (only is None or a.name in only):   # a small array straight from NumPy (no
            shp = _shape(a.shape)                                  # second Python frame), a large one from the pool
            lines.append(f"{a.name} = _empty({shp}, dtype) if ({pycode(a.size())}) * _ITEM[dtype] >= _LARGE "
                         f"else _npempty({shp}, dtype)")   # no np.empty of a large array first (memory._count)
    if only is not None:
        return lines
    if cf.scratch:
        # scratch pages are not mapped ahead (populate=False): a kernel may touch only part of it (a
        # convolution's per-chunk slots), and mapping all of it cost a fifth of the convolution's time;
        # from the pool, what the kernel touched stays mapped for the next call
        # its size decides first: np.empty of a large scratch mapped and unmapped it on every call (a
        # convolution's 11 MB: 5-8% of a small conv2d's forward+backward)
        lines.append(f"_n = max({pycode(cf.scratch_size())}, 1)")   # inline: a frame per call costs 0.1-0.2 us
        lines.append("scratch = _scratch((_n,), dtype) if _n * _ITEM[dtype] >= _LARGE else _npempty((_n,), dtype)")
    return lines


def _call(cf, table: str, tupled: bool) -> str:
    """The C call of ``cf`` through ``table`` (dtype -> ctypes function): with ``tupled``, its
    arrays as one tuple to the ``NAME_t`` entry point (``shims.py``), else each array's address."""
    arrays = [a.name for a in cf.args if a.role in POINTER_ROLES]
    args = ["(" + "".join(f"{n}, " for n in arrays) + ")"] if tupled and arrays else []
    for a in cf.args:
        if a.role in POINTER_ROLES:
            if not tupled:
                args.append(address_source(a.name))
        elif a.role in ("hyper", "scalar"):
            args.append(f"_ct({a.name})")
        else:
            args.append(a.name)
    return f"{table}[dtype]({', '.join(args)})"


def layer_source(k, fwd, bwd, any_ref, kept=None, tupled=False) -> str:
    """``forward(*inputs, *hypers, dtype=None) -> (out..., cache)`` and ``backward(cache, *grads)``.

    ``kept``: ``(names, CFunc)`` of ``NAME_forward_kept`` (``plan.plan_kept``), which writes the cache's
    copies of the caller's arrays (``names``: array -> its copy) in the kernel's own passes. Forward
    calls it when every such array is the caller's own object (nothing converted or made contiguous:
    the usual call) and ``borrow`` is false; otherwise the plain forward, with the copies ``_owned``
    makes (none of an array the conversion already copied)."""
    e = NumpyLayerEmitter(k)
    binds, checks, _ = e.validation(k.inputs)
    dims = [str(d) for d in k.dims]
    reals = [a for a in k.inputs if a.kind == "real"]
    sig = "".join(f"{a.name}, " for a in k.inputs) + "".join(f"{n}={v!r}, " for n, v in k.hypers)
    sig += "".join(f"{n}={'None' if isinstance(v, str) else v}, " for n, v, _ in k.sizes)
    L = [f"def forward({sig}*, dtype=None, borrow=False):",
         f"dtype = _dtype(dtype, {''.join(a.name + ', ' for a in reals)})"]
    saved = set(k.backward.saved)   # a saved input is owned where it is converted (_owned, as in NumPy)
    buffers = {a.name for a in k.inputs if a.buffer}   # updated in place: never converted, copied into the cache
    names = kept[0] if kept else {}
    late = [a.name for a in k.inputs if a.name in names]   # owned after the checks, on the plain path
    conv = {a.name: (f'_buffer("{a.name}", {a.name}, dtype)' if a.buffer else f'_real("{a.name}", {a.name}, dtype)')
            if a.kind == "real" else f'_ids("{a.name}", {a.name})' for a in k.inputs}
    L += [f"_in_{n} = {n}" for n in late]
    L += [f"{a.name} = {conv[a.name]}" if a.name in names else
          f"{a.name} = _owned({conv[a.name]}, {a.name}, borrow)" if a.name in saved and a.name not in buffers
          else f"{a.name} = {conv[a.name]}" for a in k.inputs]
    L += [f'{n} = {"_flag" if isinstance(v, bool) else "_hyper"}("{n}", {n})' for n, v in k.hypers]
    L += binds + checks
    L += [f"{a.name} = _contig_ids({a.name})" if a.kind == "index" else f"{a.name} = _contig({a.name})"
          for a in k.inputs]
    L += _alloc(fwd, ("out", "cache"))
    L.append("_ct = _CT[dtype]")
    items = ['"kernel": NAME', '"backend": "c"', '"dtype": dtype'] + [f'"{d}": {d}' for d in dims]
    items.append('"shape": shape' if any_ref else '"shape": ()')
    outputs, inputs = {o.name for o in k.outputs}, {a.name for a in k.inputs}
    items += [f'"{n}": {n}' for n, _ in k.hypers]

    def cache_items(copies):
        return items + [f'"{n}": {names[n]}' if copies and n in names else   # made read-only below
                        f'"{n}": {n}' if n in inputs and n not in buffers else
                        f'"{n}": _owned({n}, {n})' if n in buffers else   # forward itself updates a buffer: always copied
                        f'"{n}": _owned({n}, {n}, borrow)' if n in outputs else
                        f'"{n}": _sealed({n}, borrow)'
                        for n in k.backward.saved]   # a returned output or a buffer is copied; the kernel's own made read-only
    if names:
        cond = " and ".join(["not borrow"] + [f"{n} is _in_{n}" for n in late])
        L.append(f"if {cond}:   # the usual call: the kernel writes the cache's copies in its own passes")
        L += [IND + line for line in _alloc(kept[1], ("cache",), set(names.values()))]
        L.append(IND + _call(kept[1], "_FWDK", tupled))
        L += [f"{IND}{c}.setflags(write=False)" for c in names.values()]   # the cache's copies: read-only
        L += [f"{IND}_copyto({b}, {v})" for b, v in k.updates]   # the buffers' new values, after the kernel ran
        L.append(IND + "cache = {" + ", ".join(cache_items(True)) + "}")
        L.append("else:")
        L += [f"{IND}{n} = _owned({n}, _in_{n}, borrow)" for n in late]
        L.append(IND + _call(fwd, "_FWD", tupled))
        L += [f"{IND}_copyto({b}, {v})" for b, v in k.updates]
        L.append(IND + "cache = {" + ", ".join(cache_items(False)) + "}")
    else:
        L.append(_call(fwd, "_FWD", tupled))
        L += [f"_copyto({b}, {v})" for b, v in k.updates]   # the buffers' new values, after the kernel ran
        L.append("cache = {" + ", ".join(cache_items(False)) + "}")
    outs = [f"{o.name}[()]" if tuple(o.shape) == () else o.name for o in k.outputs]
    # (out, cache), out a tuple when there are several (docs/contract.md; the NumPy backend's form)
    L.append(f"return ({outs[0]}, cache)" if len(outs) == 1 else f"return ({', '.join(outs)}), cache")
    src = L[0] + "\n" + "".join(IND + line + "\n" for line in L[1:])

    gsig = ", ".join(f"{g.name}=1.0" if k.loss else g.name for g in k.grad_outputs)
    B = [f"def backward(cache, {gsig}):",
         "cache, dtype = _header(cache)"]
    for d in dims:   # a size must be a non-negative int (inlined: a call here costs as much as the check)
        B.append(f'{d} = cache.get("{d}")')
        B.append(f"if type({d}) is not int or {d} < 0:")
        B.append(f'    {d} = _dims_of(cache, "{d}")')
    B += e.out_dim_binds(cached=True)
    if any_ref:
        B.append('shape = tuple(cache.get("shape", ()))')
        B.append(f"if _prod(shape) != {ANY}:")
        B.append(f"    raise TypeError(f\"cache: 'shape' {{shape}} does not match {ANY} = {{{ANY}}}\")")
    kinds = {a.name: a.kind for a in k.inputs}
    for n in k.backward.saved:
        shp = _shape(k.backward.shapes[n])
        if kinds.get(n) == "index":
            B.append(f'{n} = _cached_ids(cache, "{n}", {shp})')
        else:   # exactly what forward stored, else _cached raises the message
            B.append(f'{n} = cache.get("{n}")')
            B.append(f"if type({n}) is not _ndarray or {n}.dtype != dtype or {n}.shape != {shp} "
                     f"or not {n}.flags.c_contiguous:")
            B.append(f'    {n} = _cached(cache, "{n}", {shp}, dtype)')
    for g in k.grad_outputs:
        if tuple(g.shape) == ():
            B.append(f'{g.name} = _scalar("{g.name}", {g.name}, dtype)')
        else:
            B.append(f'{g.name} = _real("{g.name}", {g.name}, dtype)')
            B.append(f'if {g.name}.shape != {_shape(g.shape)}: '
                     f'_check_shape("{g.name}", {g.name}, {_shape(g.shape)}, "{shape_text(g.shape)}")')
            B.append(f"{g.name} = _contig({g.name})")
    B += [f'{n} = _hyper("{n}", cache.get("{n}"))' for n, _ in k.hypers]
    B += _alloc(bwd, ("out",))
    B.append("_ct = _CT[dtype]")
    B.append(_call(bwd, "_BWD", tupled))
    B.append("return (" + "".join(f"{r}, " for r in k.backward.returns) + ")")
    src += "\n\n" + B[0] + "\n" + "".join(IND + line + "\n" for line in B[1:])
    return src


def recurrent_source(spec, k, fwd, bwd, dims, kept=None, tupled=False) -> str:
    """``forward``/``backward`` of a recurrent layer: ``_validate`` (the NumPy module's checks,
    compiled beside this) binds the dims; upstream gradients of the final state default to zeros.
    ``kept``: ``({input: its copy}, CFunc)`` of ``NAME_forward_kept``, called as ``layer_source`` calls
    a layer's: when ``borrow`` is false and every copied input is the caller's own object, the kernel
    writes the cache's copies; otherwise ``_owned`` makes them (none of an array the conversion copied)."""
    names = [i.name for i in spec.inputs]
    sig = "".join(f"{n}, " for n in names) + "".join(f"{n}={v!r}, " for n, v in k.hypers)
    L = [f"def forward({sig}*, dtype=None, borrow=False):",
         f"dtype = _dtype(dtype, {''.join(n + ', ' for n in names)})"]
    fwd_names = {a.name for a in fwd.args}
    copies = kept[0] if kept else {}
    owned = {a.name for a in bwd.args if a.role == "in" and a.name in fwd_names} - set(copies)
    L += [f"_in_{n} = {n}" for n in copies]
    L += [f'{n} = _contig(_owned(_real("{n}", {n}, dtype), {n}, borrow))' if n in owned else
          f'{n} = _contig(_real("{n}", {n}, dtype))' for n in names]
    L.append(f"{', '.join(dims)}, = _validate({', '.join(names)}).values()")
    L += [f'{n} = _hyper("{n}", {n})' for n, _ in k.hypers]
    L += _alloc(fwd, ("out", "cache"))
    L.append("_ct = _CT[dtype]")
    saved = [a.name for a in bwd.args if a.role == "in" and any(a.name == b.name for b in fwd.args)]
    items = ['"kernel": NAME', '"backend": "c"', '"dtype": dtype'] + [f'"{d}": {d}' for d in dims]
    items += [f'"{n}": {n}' for n, _ in k.hypers]

    def cache_items(written):
        return items + [f'"{n}": {copies[n]}' if written and n in copies else f'"{n}": {n}' if n in names
                        else f'"{n}": _owned({n}, {n}, borrow)' if n in spec.output_names
                        else f'"{n}": _sealed({n}, borrow)' for n in saved]
    if copies:
        cond = " and ".join(["not borrow"] + [f"{n} is _in_{n}" for n in copies])
        L.append(f"if {cond}:   # the usual call: the kernel writes the cache's copies inside its time loop")
        L += [IND + line for line in _alloc(kept[1], ("cache",), set(copies.values()))]
        L.append(IND + _call(kept[1], "_FWDK", tupled))
        L += [f"{IND}{c}.setflags(write=False)" for c in copies.values()]
        L.append(IND + "cache = {" + ", ".join(cache_items(True)) + "}")
        L.append("else:")
        L += [f"{IND}{n} = _owned({n}, _in_{n}, borrow)" for n in copies]
        L.append(IND + _call(fwd, "_FWD", tupled))
        L.append(IND + "cache = {" + ", ".join(cache_items(False)) + "}")
    else:
        L.append(_call(fwd, "_FWD", tupled))
        L.append("cache = {" + ", ".join(cache_items(False)) + "}")
    L.append(f"return ({', '.join(spec.output_names)}, ), cache")
    src = L[0] + "\n" + "".join(IND + line + "\n" for line in L[1:])

    ups = [f"d{o}s" for o in spec.outputs] + [f"d{s}T" for s in spec.state]
    B = ["def backward(cache, " + ", ".join(ups[:len(spec.outputs)] + [f"{u}=None" for u in ups[len(spec.outputs):]])
         + "):", "cache, dtype = _header(cache)"]
    B += [f'{d} = _dims_of(cache, "{d}")' for d in dims]
    for a in bwd.args:
        if a.role != "in":
            continue
        shp = _shape(a.shape)
        if a.name in ups:
            if a.name in ups[len(spec.outputs):]:
                B.append(f"if {a.name} is None:")
                B.append(f"    {a.name} = _zeros({shp}, dtype)")
                B.append("else:")
                pre = "    "
            else:
                pre = ""
            B.append(f'{pre}{a.name} = _real("{a.name}", {a.name}, dtype)')
            B.append(f'{pre}_check_shape("{a.name}", {a.name}, {shp}, "{shape_text(a.shape)}")')
            B.append(f"{pre}{a.name} = _contig({a.name})")
        else:
            B.append(f'{a.name} = _cached(cache, "{a.name}", {shp}, dtype)')
    B += [f'{n} = _hyper("{n}", cache.get("{n}"))' for n, _ in k.hypers]
    B += _alloc(bwd, ("out",))
    B.append("_ct = _CT[dtype]")
    B.append(_call(bwd, "_BWD", tupled))
    B.append("return (" + "".join(f"{a.name}, " for a in bwd.args if a.role == "out") + ")")
    return src + "\n\n" + B[0] + "\n" + "".join(IND + line + "\n" for line in B[1:])
