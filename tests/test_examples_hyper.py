"""Issue 18, item 7 (examples): --hyper names and flag combinations checked before training starts."""
import time

import pytest
from click.testing import CliRunner

from symgrad.cli import main
from symgrad.examples._common import ExampleError, check_hypers


@pytest.mark.parametrize("args, words", [
    (["--hyper", "momentum=0.9"], ["adam has no hyperparameter 'momentum'", "beta1=0.9", "amsgrad=False"]),
    (["--optimizer", "sgd", "--hyper", "nesterov=true"], ["nesterov=True requires momentum > 0", "dampening=0"]),
    (["--optimizer", "sgd", "--hyper", "nesterov=2"], ["expected true or false"]),
    (["--optimizer", "rmsprop", "--hyper", "centered=0.5"], ["expected true or false", "centered=False"]),
    (["--optimizer", "adam", "--hyper", "amsgrad=true", "--hyper", "beta1=true"], ["beta1: expected a number"]),
])
def test_bad_hyper_is_a_clean_error_before_training(args, words):
    t0 = time.perf_counter()
    r = CliRunner().invoke(main, ["train", "digits", "--quiet", *args])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "Traceback" not in r.output, r.output
    for w in words:
        assert w in r.output, (w, r.output)
    assert "epoch" not in r.output and time.perf_counter() - t0 < 20          # nothing trained


def test_good_combinations_pass_the_check():
    check_hypers("sgd", {"momentum": 0.9, "nesterov": True})
    check_hypers("adam", {"amsgrad": True, "beta1": 0.8})
    with pytest.raises(ExampleError, match="dampening"):
        check_hypers("sgd", {"momentum": 0.9, "dampening": 0.1, "nesterov": True})
