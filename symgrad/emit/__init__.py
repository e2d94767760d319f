"""Emitters: kernel IR -> source files, one module per target."""
from __future__ import annotations

from ..errors import SpecError
from .render import render

TARGETS = ("numpy",)


def sources(spec, target: str) -> dict[str, str]:
    """The files (relative path -> text) that ``target`` emits for ``spec``."""
    from .printers import UnsupportedFunction
    try:
        if target == "numpy":
            return {f"numpy/{spec.name}.py": numpy_source(spec)}
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
