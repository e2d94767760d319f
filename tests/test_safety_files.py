"""Files under misuse (issue 16, rows 1, 2, 13, 14, 15): the compile cache verifies what it loads,
writers never replace a device or write through a link out of the output folder, a failed
generation changes nothing, a killed run leaves nothing that a later run or --check misses."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symgrad
from symgrad.codegen.render import write_atomic
from symgrad.generation import generate
from symgrad.targets.c.build import build, verified

from conftest import HAVE_CC

needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
SRC = {"sg_probe.c": "double sg_probe_twice(double x) { return 2 * x; }\n"}


def _load_relu_in_child(cache):
    code = ("import symgrad, numpy as np; k = symgrad.load('relu', backend='c');"
            "print(k.forward(np.array([1.0, -2.0]))[0].tolist())")
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "SYMGRAD_CACHE": str(cache)},
                          capture_output=True, text=True, timeout=600)


@needs_cc
@pytest.mark.parametrize("size", [0, 100, 1000])
def test_a_truncated_cached_library_is_rebuilt(tmp_path, size):
    r = _load_relu_in_child(tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "[1.0, 0.0]", r.stderr
    (so,) = tmp_path.glob("relu-*.so")
    with open(so, "r+b") as f:
        f.truncate(size)
    assert not verified(so)
    r = _load_relu_in_child(tmp_path)          # a new process: the library is rebuilt, not loaded
    assert r.returncode == 0 and r.stdout.strip() == "[1.0, 0.0]", (r.returncode, r.stderr[-500:])
    assert verified(so) and so.stat().st_size > 1000


@needs_cc
def test_a_foreign_file_with_the_cache_name_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE", str(tmp_path))
    path = build("sg_probe", SRC)
    path.write_bytes(b"not a library")
    assert build("sg_probe", SRC) == path and verified(path)


@needs_cc
def test_stale_build_temporaries_are_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE", str(tmp_path))
    dead = 2 ** 22 + 12345   # above the usual pid range: no such process
    stale = tmp_path / f".sg_probe-{dead}-abcd.so.tmp"
    stale.write_bytes(b"half a library")
    alive = tmp_path / f".sg_probe-{os.getpid()}-abcd.so.tmp"
    alive.write_bytes(b"a build in progress")
    build("sg_probe", {"sg_probe.c": SRC["sg_probe.c"] + "/* changed */\n"})
    assert not stale.exists() and alive.exists()


def test_an_unwritable_cache_is_a_compiler_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("SYMGRAD_CACHE", str(blocker / "cache"))
    with pytest.raises(symgrad.CompilerError, match="SYMGRAD_CACHE"):
        build("sg_probe", SRC)


def test_write_atomic_writes_into_a_device_instead_of_replacing_it():
    devnull = Path(os.devnull)
    before = os.stat(devnull)
    assert write_atomic(devnull, "text\n")
    after = os.stat(devnull)
    assert devnull.is_char_device() and (before.st_ino, before.st_rdev) == (after.st_ino, after.st_rdev)


def test_write_atomic_into_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    write_atomic(fifo, "through the pipe\n")
    assert reader.communicate(timeout=30)[0] == "through the pipe\n"
    assert fifo.is_fifo()


def test_write_atomic_follows_a_symlink_and_refuses_a_folder(tmp_path):
    target = tmp_path / "real.md"
    target.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    assert write_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path, "x")


def test_explain_out_dev_null_keeps_the_device():
    r = subprocess.run([sys.executable, "-m", "symgrad.cli", "explain", "relu", "--out", os.devnull],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert Path(os.devnull).is_char_device()


def test_generate_refuses_a_symlinked_subfolder_that_leaves_the_output(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = tmp_path / "gen"
    out.mkdir()
    (out / "numpy").symlink_to(outside, target_is_directory=True)
    with pytest.raises(symgrad.SymgradError, match="outside the output folder"):
        generate(["relu"], out=out)
    assert not list(outside.iterdir()) and not (out / "c").exists()


def test_generate_writes_all_or_nothing(tmp_path):
    out = tmp_path / "gen"
    (out / "c").mkdir(parents=True)
    (out / "numpy").write_text("a file where the numpy folder should be")
    with pytest.raises(symgrad.SymgradError, match="nothing was changed"):
        generate(["relu"], out=out)
    assert not list((out / "c").iterdir())


def test_a_killed_generation_leaves_nothing_that_check_misses(tmp_path):
    out = tmp_path / "gen"
    generate(["relu"], out=out)
    dead = 2 ** 22 + 54321
    stale = out / "c" / f".relu.h.{dead}.x1y2.tmp"
    stale.write_text("half a header")
    r = subprocess.run([sys.executable, "-m", "symgrad.cli", "generate", "relu", "--out", str(out), "--check"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0   # naming kernels checks those files only
    res = generate(None, out=out, check=True)
    assert str(stale) in res.foreign
    generate(["relu"], out=out)
    assert not stale.exists()
