"""``symgrad generate``: render every requested kernel for every target, then write them.

All sources are rendered in memory first, so a spec that fails leaves the output folder as it was;
each file is written atomically and only when its content changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import SymgradError
from .registry import REGISTRY
from .codegen.render import TMP_PREFIX, TMP_SUFFIX, commit, discard, pid_alive, stage


@dataclass
class GenerateResult:
    written: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    differing: list = field(default_factory=list)   # with check=True: stale or missing files
    foreign: list = field(default_factory=list)     # with check=True: files generation does not produce


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


def _stale_temporaries(folder: Path) -> list[Path]:
    """Temporaries of earlier runs that were killed between a write and its rename."""
    out = []
    for p in folder.glob(f"{TMP_PREFIX}*{TMP_SUFFIX}") if folder.is_dir() else []:
        parts = p.name.split(".")
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        if pid is None or not pid_alive(pid):
            out.append(p)
    return out


def _inside(out: Path, folders) -> None:
    """Refuse to write through a symlinked subfolder that leads out of ``out``."""
    root = out.resolve()
    for d in folders:
        p = out / d
        if p.exists() and not p.resolve().is_relative_to(root):
            raise SymgradError(f"{p} is a link to {p.resolve()}, outside the output folder {out}; "
                               f"refusing to write through it (remove the link or pick another --out)")


def generate(names=None, targets=None, out="generated", check: bool = False,
             strict: bool = False) -> GenerateResult:
    """Write (or with ``check=True`` compare) the kernels of ``names`` (default: all registered).

    Writing is all or nothing: every changed file is first written to a temporary file beside its
    target; only when all were written are they renamed into place (a failure removes them all).
    Temporaries left by a killed earlier run are removed. With ``check=True`` and every kernel
    (no ``names``), files in the target folders that generation does not produce are reported too.
    """
    files = render_all(names, targets, strict)
    out = Path(out)
    res = GenerateResult()
    folders = sorted({Path(rel).parent for rel in files})
    if check:
        for rel, text in files.items():
            p = out / rel
            try:
                same = p.read_text(encoding="utf-8") == text
            except (OSError, UnicodeDecodeError):
                same = False
            (res.unchanged if same else res.differing).append(str(p))
        if not names:
            made = {out / rel for rel in files}
            for d in folders:
                if (out / d).is_dir():
                    res.foreign += [str(p) for p in sorted((out / d).iterdir()) if p not in made]
        return res
    if out.exists() and not out.is_dir():
        raise SymgradError(f"output folder {out} exists and is not a folder")
    parent = out.resolve().parent
    if not out.exists() and not parent.is_dir():
        raise SymgradError(f"cannot create output folder {out}: its parent {parent} does not exist")
    _inside(out, folders)
    for d in folders:
        for p in _stale_temporaries(out / d):
            p.unlink(missing_ok=True)
    staged = []
    try:
        for rel, text in files.items():
            p = out / rel
            try:
                tmp = stage(p, text)
            except OSError as e:
                raise SymgradError(f"cannot write {p}: {e.strerror or e} (is the output folder writable?); "
                                   f"nothing was changed") from e
            (res.unchanged if tmp is None else res.written).append(str(p))
            if tmp is not None:
                staged.append((tmp, p))
    except BaseException:
        for tmp, _ in staged:
            discard(tmp)
        raise
    for tmp, p in staged:
        commit(tmp, p)
    return res
