"""Rendering kernels with Jinja and writing them: deterministic, atomic, only when changed.

Each target package keeps its templates in its own ``templates/`` folder, loaded with
``jinja2.PackageLoader``: ``render("symgrad.targets.c", "layer.c.j2", ctx=...)``.
"""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

import jinja2

from ..version import __version__


@lru_cache(maxsize=None)
def environment(package: str) -> jinja2.Environment:
    """The Jinja environment of one target package (its ``templates/`` folder)."""
    e = jinja2.Environment(loader=jinja2.PackageLoader(package, "templates"), keep_trailing_newline=True,
                           undefined=jinja2.StrictUndefined, autoescape=False)
    e.filters["pyrepr"] = repr
    e.filters["prefix"] = lambda s, p: p + s
    e.filters["head"] = lambda t: t[0]
    e.globals["version"] = __version__
    return e


def render(package: str, template: str, **context) -> str:
    """``template`` of target ``package`` rendered, trailing spaces and blank end lines removed."""
    text = environment(package).get_template(template).render(**context)
    lines = [l.rstrip() for l in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # exists, owned by someone else
        return True
    return True


TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"


def _same(path: Path, text: str) -> bool:
    try:
        return path.is_file() and path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def stage(path: Path, text: str) -> str | None:
    """Write ``text`` to a temporary file beside ``path`` (named ``.NAME.<pid>.xxxx.tmp``) and return
    its name, or None when ``path`` already holds ``text``. ``commit`` renames it into place."""
    path = Path(path)
    if _same(path, text):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX,
                               dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        discard(tmp)
        raise
    return tmp


def commit(tmp: str, path: Path):
    os.replace(tmp, path)


def discard(tmp: str):
    try:
        os.unlink(tmp)
    except OSError:
        pass


def write_atomic(path: Path, text: str) -> bool:
    """Write ``text`` to ``path``; skip if unchanged. Returns True when the file was (re)written.

    A regular file (or a missing one) is written through a temporary file and a rename, so a reader
    never sees half a file; a symlink is followed (the file it points to is replaced, the link stays);
    a device or FIFO (``/dev/null``, ``/dev/stdout``, a pipe) is written into, never replaced by a
    regular file; a folder is an error.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(21, "is a folder", str(path))
        with open(path, "w", encoding="utf-8", newline="\n") as f:   # a device or FIFO: write into it
            f.write(text)
        return True
    tmp = stage(path, text)
    if tmp is None:
        return False
    try:
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    return True
