"""Smoke test of the symgrad.torch cost measurement (symgrad.bench.interop) on tiny sizes."""
import pytest

from conftest import HAVE_CC, needs_torch


@needs_torch
@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=pytest.mark.skipif(not HAVE_CC, reason="no C compiler"))])
def test_interop_measure_runs_on_tiny_sizes(backend):
    from symgrad.bench.interop import GOALS, measure
    from symgrad.bench.timing import alternating_medians
    r = measure(large=(16, 32), tiny=(2, 4), backend=backend, blocks=2, calls_large=1, calls_tiny=2)
    assert set(r.times) == {(c, w) for c in GOALS for w in ("symgrad", "torch")}
    assert all(t > 0 for t in r.times.values()) and r.ratio("tiny") > 0
    text = r.table()
    assert "layernorm large N=16 D=32" in text and "layernorm tiny  N=2 D=4" in text and "goal <= 0.6" in text
    calls = []
    t = alternating_medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, gap=0.0, block=0.0)
    assert set(t) == {"a", "b"}
    assert calls[4:] == ["a", "b"] * 3     # after two calls each to size the blocks: one block each, in turn
