"""Emitters: kernel IR -> source files, one module per target."""
from __future__ import annotations

from ..errors import SpecError
from .render import render

TARGETS = ("numpy", "c")


def supports(spec, target: str) -> bool:
    """Whether ``target`` has an emitter for ``spec``'s kind (``generate --target all`` emits
    every supported pair; naming an unsupported pair explicitly is an error)."""
    if target == "numpy":
        return spec.kind in ("layer", "activation", "loss", "recurrent") or hasattr(spec, "numpy_source")
    if target == "c":
        return spec.kind in ("layer", "activation", "loss", "recurrent") or hasattr(spec, "c_sources")
    return False


def sources(spec, target: str) -> dict[str, str]:
    """The files (relative path -> text) that ``target`` emits for ``spec``."""
    from .printers import UnsupportedFunction
    try:
        if target == "numpy":
            return {f"numpy/{spec.name}.py": numpy_source(spec)}
        if target == "c":
            return c_sources(spec)
    except UnsupportedFunction as e:
        raise SpecError(f"{spec.name}: {e}") from None
    raise SpecError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")


def numpy_source(spec) -> str:
    if spec.kind in ("layer", "activation", "loss"):
        from ..lower import lower
        from .numpy_layer import NumpyLayerEmitter
        return render("numpy/layer.py.j2", ctx=NumpyLayerEmitter(lower(spec)).context())
    if spec.kind == "recurrent":
        from . import numpy_recurrent
        return render("numpy/recurrent.py.j2", ctx=numpy_recurrent.context(spec))
    if hasattr(spec, "numpy_source"):
        return spec.numpy_source()
    raise SpecError(f"no NumPy emitter for kernel kind {spec.kind!r}")


def c_sources(spec) -> dict[str, str]:
    """``c/NAME.h`` and ``c/NAME.c`` for a layer, activation, loss or recurrent layer (optimizers
    bring their own)."""
    if spec.kind in ("layer", "activation", "loss"):
        from .c_context import CLayerEmitter
        from .c_rewrite import c_kernel
        ctx = CLayerEmitter(c_kernel(spec)).context()
        return {f"c/{spec.name}.h": render("c/layer.h.j2", ctx=ctx),
                f"c/{spec.name}.c": render("c/layer.c.j2", ctx=ctx)}
    if spec.kind == "recurrent":
        from . import c_recurrent
        ctx = c_recurrent.context(spec)
        return {f"c/{spec.name}.h": render("c/recurrent.h.j2", ctx=ctx),
                f"c/{spec.name}.c": render("c/recurrent.c.j2", ctx=ctx)}
    if hasattr(spec, "c_sources"):
        return spec.c_sources()
    raise SpecError(f"no C emitter for kernel kind {spec.kind!r}")
