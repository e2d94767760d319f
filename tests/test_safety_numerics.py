"""Extreme values (issue 16, row 6): the same answer as torch on both backends."""
import numpy as np
import pytest

import symgrad

from conftest import BACKENDS, needs_torch, torch


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_propagates_nan_like_torch(backend, dtype):
    z = np.array([np.nan, 1.0, -1.0, 0.0, np.inf, -np.inf], dtype=dtype)
    k = symgrad.load("relu", backend, dtype)
    a, cache = k.forward(z)
    (dz,) = k.backward(cache, np.ones_like(z))
    zt = torch.tensor(z, requires_grad=True)
    at = torch.relu(zt)
    at.backward(torch.ones_like(zt))
    np.testing.assert_array_equal(a, at.detach().numpy())
    np.testing.assert_array_equal(dz, zt.grad.numpy())


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_relu_row_with_nan_stays_nan(backend):
    k = symgrad.load("dense_relu", backend)
    y, _ = k.forward(np.array([[np.nan, 1.0], [1.0, 2.0]]), np.eye(2), np.zeros(2))
    assert np.isnan(y[0]).all() and np.array_equal(y[1], [1.0, 2.0])
