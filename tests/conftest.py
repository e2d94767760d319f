import importlib.util

import numpy as np
import pytest

import symgrad

LAYER_KINDS = ("layer", "activation", "loss", "recurrent")


def layer_names():
    return [s.name for s in symgrad.REGISTRY if s.kind in LAYER_KINDS]


try:
    import torch
    torch.set_default_dtype(torch.float64)
except ImportError:  # torch is a test extra; comparisons skip without it
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (pip install -e '.[test]')")


def rel_err(got, ref, floor=0.0):
    """Max abs error relative to the reference's largest magnitude (at least ``floor``: an
    exactly-zero reference, such as LayerNorm's dx at D = 1, is compared on the scale 1)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if got.size == 0:
        return 0.0
    scale = max(np.max(np.abs(ref)), floor)
    return float(np.max(np.abs(got - ref)) / (scale if scale > 0 else 1.0))


def import_path(path, name="mod"):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _have_cc():
    try:
        from symgrad.targets.c.build import compiler
        compiler()
        return True
    except Exception:  # noqa: BLE001 - any failure means: no usable compiler
        return False


HAVE_CC = _have_cc()
# The registry-wide tests run over both backends; the C one needs a C compiler.
BACKENDS = [pytest.param(t, marks=pytest.mark.skipif(t == "c" and not HAVE_CC, reason="no C compiler: apt-get install gcc"))
            for t in symgrad.REGISTRY.targets()]   # every registered target


def require_target(name, backend):
    """Skip (visibly) a kernel/backend pair that has no emitter yet."""
    from symgrad import REGISTRY
    if not REGISTRY.supports(symgrad.REGISTRY.get(name), backend):
        pytest.skip(f"no {backend} emitter for {symgrad.REGISTRY.get(name).kind} kernels yet")
