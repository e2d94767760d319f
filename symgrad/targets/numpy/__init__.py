"""The NumPy target: vectorized NumPy modules (``generated/numpy/NAME.py``), which need only NumPy,
each with its type stub (``NAME.pyi``, ``stubs.py``).

Registers, for every kernel kind, how to emit its module and how to load it in-process.
Templates: ``templates/*.py.j2`` beside this file.
"""
from __future__ import annotations

from functools import lru_cache

from ...codegen.render import render
from ...ir.lower import lower
from ...registry import REGISTRY
from .layer import NumpyLayerEmitter
from .optimizer import optimizer_source, schedule_source
from .recurrent import context as recurrent_context
from .runtime import module_from_source
from .stubs import stub

TARGET = "numpy"


def layer_files(spec) -> dict[str, str]:
    return {f"numpy/{spec.name}.py": render(__name__, "layer.py.j2", ctx=NumpyLayerEmitter(lower(spec)).context())}


def recurrent_files(spec) -> dict[str, str]:
    return {f"numpy/{spec.name}.py": render(__name__, "recurrent.py.j2", ctx=recurrent_context(spec))}


def optimizer_files(spec) -> dict[str, str]:
    return {f"numpy/{spec.name}.py": optimizer_source(spec)}


def schedule_files(spec) -> dict[str, str]:
    return {f"numpy/{spec.name}.py": schedule_source(spec)}


def with_stub(emit, template: str):
    """``emit`` plus the type stub of the module it writes."""
    def files(spec) -> dict[str, str]:
        out = emit(spec)
        out[f"numpy/{spec.name}.pyi"] = stub(spec.name, out[f"numpy/{spec.name}.py"],
                                             f"symgrad/targets/numpy/templates/{template}")
        return out
    return files


def loader(emit):
    """``load(spec)``: the module ``emit`` writes, executed in this process (cached per spec)."""
    @lru_cache(maxsize=None)
    def load(spec):
        return module_from_source(spec.name, emit(spec)[f"numpy/{spec.name}.py"], TARGET)
    return load


for _kinds, _emit, _template in ((("layer", "activation", "loss"), layer_files, "layer.py.j2"),
                                 (("recurrent",), recurrent_files, "recurrent.py.j2"),
                                 (("optimizer",), optimizer_files, "optimizer.py.j2"),
                                 (("schedule",), schedule_files, "schedule.py.j2")):
    REGISTRY.register_target(TARGET, _kinds, emit=with_stub(_emit, _template), load=loader(_emit))


def numpy_module(spec):
    """The loaded NumPy module of ``spec`` (its argument checks serve the other backends too)."""
    return REGISTRY.target_rules(spec, TARGET).load(spec)
