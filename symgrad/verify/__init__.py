"""``symgrad.check``: numerical checks of the generated kernels, one rule per kernel kind.

Layers, activations, losses and recurrent layers: central finite differences (``layers``);
optimizers and averages: descent or tracking on a quadratic, schedules: SymPy at 30 digits
(``optimizers``); float32 kernels against the float64 ones.
"""
from __future__ import annotations

from ..registry import REGISTRY
from .layers import check_layer
from .optimizers import check_optimizer, check_schedule
from .report import Report, Row

REGISTRY.register_rule("check", ("layer", "activation", "loss", "recurrent"))(check_layer)
REGISTRY.register_rule("check", ("optimizer",))(check_optimizer)
REGISTRY.register_rule("check", ("schedule",))(check_schedule)


def check(names=None, backend="numpy", dtype="float64", seed=0, sizes=None) -> Report:
    """Check kernels numerically; returns a ``Report`` (truthy when everything passed).

    Without ``names``: every kernel the backend has an emitter for."""
    rep = Report()
    if not names:
        names = [n for n in REGISTRY.names() if REGISTRY.supports(REGISTRY.get(n), backend)]
    for name in names:
        spec = REGISTRY.get(name)
        rule = REGISTRY.rule("check", spec)
        if rule is None:
            continue
        rep.rows += rule(spec, backend, dtype, seed, sizes)
    return rep


__all__ = ["Report", "Row", "check", "check_layer", "check_optimizer", "check_schedule"]
