"""Issue 18, item 3: worked numbers, computed by the generated kernels and by the printed expressions."""
import numpy as np
import pytest
from click.testing import CliRunner

from symgrad.cli import main
from symgrad.explanation.numbers import worked
from conftest import layer_names


@pytest.mark.parametrize("name", [n for n in layer_names() if n != "lstm"])
def test_printed_expressions_and_kernel_give_the_same_numbers(name):
    doc, checks = worked(name, seed=1)
    finals = [e.defines for e in doc.equations("final")]
    assert finals and all(f in checks for f in finals)            # every final gradient compared
    for key, (printed, kernel) in checks.items():
        printed = np.asarray(printed, dtype=np.float64).reshape(np.shape(kernel))
        assert np.allclose(printed, kernel, rtol=1e-10, atol=1e-12), (name, key)
    assert doc.equations("number")


def test_dense_sigmoid_numbers_page_en_zh_and_seed():
    doc, _ = worked("dense_sigmoid", seed=0)
    numbers = [e for e in doc.equations("number")]
    assert any(str(e.lhs) == "delta" for e in numbers) and any(e.rel == "<-" for e in numbers)   # SGD update
    r = CliRunner().invoke(main, ["explain", "dense_sigmoid", "--numbers", "--seed", "3"])
    assert r.exit_code == 0 and "One SGD update" in r.output and "agrees to" in r.output
    assert r.output != CliRunner().invoke(main, ["explain", "dense_sigmoid", "--numbers"]).output
    zh = CliRunner().invoke(main, ["explain", "mse", "--numbers", "--lang", "zh"]).output
    assert "数值算例" in zh and "dloss = ∂L/∂L = 1" in zh
    bad = CliRunner().invoke(main, ["explain", "adam", "--numbers"])
    assert bad.exit_code == 2 and "error:" in bad.output
