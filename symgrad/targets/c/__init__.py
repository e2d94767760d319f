"""The C target: C99 kernels with headers (``generated/c/NAME.c``, ``NAME.h``), float and double
variants, compiled on demand by ``symgrad.load(..., backend="c")``.

Registers, for every kernel kind, how to emit its files and how to load them (compiled, cached),
and the build files of all the kernels of a run (``CMakeLists.txt``, ``Makefile``, ``symgrad.pc.in``:
one library ``symgrad``). Templates: ``templates/*.j2`` beside this file.
"""
from __future__ import annotations

from ...codegen.render import render
from ...ir.rewrite import c_kernel
from ...registry import REGISTRY
from .build import MATH_FLAGS
from .context import CLayerEmitter
from .optimizer import optimizer_sources, schedule_sources
from .recurrent import context as recurrent_context
from .runtime import loader
from .runtime_layer import CLayer
from .runtime_optimizer import COptimizer, CSchedule
from .runtime_recurrent import CRecurrentLayer

TARGET = "c"


def _pair(spec, template: str, ctx: dict) -> dict[str, str]:
    return {f"c/{spec.name}.h": render(__name__, f"{template}.h.j2", ctx=ctx),
            f"c/{spec.name}.c": render(__name__, f"{template}.c.j2", ctx=ctx)}


def layer_files(spec) -> dict[str, str]:
    return _pair(spec, "layer", CLayerEmitter(c_kernel(spec)).context())


def recurrent_files(spec) -> dict[str, str]:
    return _pair(spec, "recurrent", recurrent_context(spec))


for _kinds, _emit, _cls in ((("layer", "activation", "loss"), layer_files, CLayer),
                            (("recurrent",), recurrent_files, CRecurrentLayer),
                            (("optimizer",), optimizer_sources, COptimizer),
                            (("schedule",), schedule_sources, CSchedule)):
    REGISTRY.register_target(TARGET, _kinds, emit=_emit, load=loader(_cls, _emit))


def project_files(specs) -> dict[str, str]:
    """Build files for a folder of kernels: a CMake project and a Makefile, each building the library
    ``symgrad`` with an install rule and a pkg-config file. They build every ``NAME.c`` they find
    beside them, so their text is the same whichever ``specs`` a run generates (regenerating one
    kernel leaves them, and the other kernels' place in the library, untouched)."""
    flags = " ".join(MATH_FLAGS)   # the flags symgrad's own builds use that change no value (build.py)
    return {f"c/{out}": render(__name__, f"{out}.j2", math_flags=flags)
            for out in ("CMakeLists.txt", "Makefile", "symgrad.pc.in")}


REGISTRY.register_project_files(TARGET, project_files)
