"""One package per target (``numpy``, ``c``, ...); each registers itself with the registry when
imported. ``load_all`` imports every package found here, so a new target is a new folder only."""
from __future__ import annotations

import importlib
import pkgutil


def load_all() -> list[str]:
    """Import (and so register) every target package under ``symgrad/targets``; their names."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
    return names
