"""``symgrad generate``: render every requested kernel for every target, then write them.

All sources are rendered in memory first, so a spec that fails leaves the output folder as it was;
each file is written atomically and only when its content changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import SymgradError
from .registry import REGISTRY
from .codegen.render import write_atomic


@dataclass
class GenerateResult:
    written: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    differing: list = field(default_factory=list)   # with check=True: stale or missing files


def render_all(names=None, targets=None, strict: bool = False) -> dict[str, str]:
    """Every file of ``names`` x ``targets``, then each target's project files for the kernels it
    emitted (``REGISTRY.register_project_files``: the C target's build files list exactly these
    kernels). Pairs a target has no emitter for are skipped, unless ``strict`` (a target the user
    named explicitly), where they are an error."""
    names = list(names) if names else REGISTRY.names()
    targets = REGISTRY.targets() if targets is None else targets
    files: dict[str, str] = {}
    emitted: dict[str, list] = {t: [] for t in targets}
    for name in names:
        spec = REGISTRY.get(name)
        for t in targets:
            if strict or REGISTRY.supports(spec, t):
                files.update(REGISTRY.emit(spec, t))
                emitted[t].append(spec)
    for t in targets:   # then each target's files about all its kernels (C: CMakeLists.txt, Makefile)
        files.update(REGISTRY.project_files(t, emitted[t]))
    return dict(sorted(files.items()))


def generate(names=None, targets=None, out="generated", check: bool = False,
             strict: bool = False) -> GenerateResult:
    """Write (or with ``check=True`` compare) the kernels of ``names`` (default: all registered)."""
    files = render_all(names, targets, strict)
    out = Path(out)
    res = GenerateResult()
    if check:
        for rel, text in files.items():
            p = out / rel
            try:
                same = p.read_text(encoding="utf-8") == text
            except (OSError, UnicodeDecodeError):
                same = False
            (res.unchanged if same else res.differing).append(str(p))
        return res
    if out.exists() and not out.is_dir():
        raise SymgradError(f"output folder {out} exists and is not a folder")
    parent = out.resolve().parent
    if not out.exists() and not parent.is_dir():
        raise SymgradError(f"cannot create output folder {out}: its parent {parent} does not exist")
    for rel, text in files.items():
        p = out / rel
        try:
            changed = write_atomic(p, text)
        except OSError as e:
            raise SymgradError(f"cannot write {p}: {e.strerror or e} (is the output folder writable?)") from e
        (res.written if changed else res.unchanged).append(str(p))
    return res
