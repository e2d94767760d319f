"""DistributedDataParallel over symgrad.torch layers and optimizer: 2 gloo processes on 127.0.0.1
train as one process on the whole batch (examples/ddp_train.py, float64, 20 steps, 1e-12)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HAVE_CC, needs_torch, torch

ROOT = Path(__file__).resolve().parents[1]


@needs_torch
@pytest.mark.skipif(not HAVE_CC, reason="no C compiler: apt-get install gcc")
def test_ddp_two_processes_equal_one_process():
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "ddp_train.py"), "--procs", "2", "--steps", "20",
                        "--tolerance", "1e-12", "--timeout", "120"],
                       capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"2 processes, 20 steps: loss ([\d.]+) -> ([\d.]+).*whole batch: ([\d.e+-]+)", r.stdout)
    assert m, r.stdout + r.stderr
    first, last, diff = map(float, m.groups())
    assert last < first            # it trained
    assert diff <= 1e-12
