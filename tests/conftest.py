import importlib.util

import numpy as np
import pytest

import symgrad

LAYER_KINDS = ("layer", "activation", "loss")


def layer_names():
    return [s.name for s in symgrad.REGISTRY if s.kind in LAYER_KINDS]


try:
    import torch
    torch.set_default_dtype(torch.float64)
except ImportError:  # torch is a test extra; comparisons skip without it
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (pip install -e '.[test]')")


def rel_err(got, ref):
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if got.size == 0:
        return 0.0
    scale = np.max(np.abs(ref))
    return float(np.max(np.abs(got - ref)) / (scale if scale > 0 else 1.0))


def import_path(path, name="mod"):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _have_cc():
    try:
        from symgrad.c_build import compiler
        compiler()
        return True
    except Exception:  # noqa: BLE001 - any failure means: no usable compiler
        return False


HAVE_CC = _have_cc()
# The registry-wide tests run over both backends; the C one needs a C compiler.
BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(not HAVE_CC, reason="no C compiler: apt-get install gcc"))]
