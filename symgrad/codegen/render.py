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


def write_atomic(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` through a temporary file and a rename; skip if unchanged.

    Returns True when the file was (re)written.
    """
    path = Path(path)
    if path.is_file():
        try:
            if path.read_text(encoding="utf-8") == text:
                return False
        except (OSError, UnicodeDecodeError):
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True
