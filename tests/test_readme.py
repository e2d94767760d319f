"""README.md: every code block runs as written after the set-up command, and the page stays a README.

The blocks run in order in one temporary folder that stands for a fresh clone after the set-up
command (a copy of ``examples/``, then the set-up's main job ``symgrad generate``), so nothing is
written into the repository. ``python`` blocks run with this interpreter, fed on standard input as
if pasted (a block whose first line is ``# NAME.py`` is also saved as that file, as the README asks);
``bash``/``sh`` blocks run line by line and ``console`` blocks their ``$ `` lines, with ``symgrad``
and ``python`` meaning ``python -m symgrad`` and this interpreter. The set-up commands themselves
(venv, ``pip install``, the test suite) are compared with ``.ci/run`` instead of run.

The pages the README links to stay inside the repository, and the tables of ``docs/contract.md``
(argument lists, gradients, hyperparameter defaults) stay in step with the generated kernels.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import HAVE_CC

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 250
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
SETUP_MARK = "python3 -m venv"


@dataclass
class Block:
    lang: str
    code: str
    line: int   # line of the opening fence in README.md

    def where(self) -> str:
        return f"README.md:{self.line} ({self.lang} block)"


def blocks(text: str) -> list[Block]:
    return [Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def commands(block: Block) -> list[str]:
    """The commands of a shell block: logical lines (backslash continuations joined), no comments;
    in a console block only the lines after a ``$`` prompt."""
    lines, current = [], ""
    for raw in block.code.splitlines():
        if block.lang == "console":
            if not raw.startswith("$ "):
                continue
            raw = raw[2:]
        piece = raw.strip()
        if piece.endswith("\\"):
            current += piece[:-1].rstrip() + " "
            continue
        line = current + piece
        current = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def readme_blocks() -> list[Block]:
    return blocks(README.read_text(encoding="utf-8"))


# -- the page ------------------------------------------------------------------------------------
def test_readme_is_at_most_250_lines():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines; move reference material to a page under docs/"


def test_links_stay_inside_the_repository():
    """README.md and the docs pages link only to files of the repository, and those files exist."""
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    bad = []
    for page in pages:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            path = target.split("#", 1)[0]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or path.startswith("/"):
                bad.append(f"{page.name}: {target} (not a file of the repository)")
                continue
            if not path:
                continue
            resolved = (page.parent / path).resolve()
            if not resolved.is_relative_to(ROOT):
                bad.append(f"{page.name}: {target} (outside the repository)")
            elif not resolved.exists():
                bad.append(f"{page.name}: {target} (no such file)")
    assert not bad, bad


def test_readme_keeps_reference_material_in_docs():
    text = README.read_text(encoding="utf-8")
    assert "shared/" not in text, "a clone has no shared/ folder"
    bench_rows = [line for line in (ROOT / "docs" / "bench.md").read_text(encoding="utf-8").splitlines()
                  if line.startswith("| ") and "(ms)" not in line]
    assert bench_rows and not any(row in text for row in bench_rows), "README copies docs/bench.md"
    for page in ("contract", "architecture", "c-backend", "optimizers", "bench", "bad-input"):
        assert f"(docs/{page}.md)" in text, f"README links docs/{page}.md"


# -- the set-up commands: the same steps as CI -------------------------------------------------------
def normalized(step: str) -> str:
    """A shell step with pip's quiet flag dropped and ``python -m pip`` written ``pip``."""
    words = [w for w in shlex.split(step) if w != "-q"]
    if words[:3] == ["python", "-m", "pip"]:
        words = words[2:]
    return " ".join(words)


def setup_blocks() -> list[Block]:
    found = [b for b in readme_blocks() if SETUP_MARK in b.code]
    assert len(found) == 2, "README gives two set-up commands (the main job; the test suite)"
    return found


def setup_steps(block: Block) -> list[str]:
    (line,) = commands(block)
    return [normalized(s) for s in line.split(" && ")]


def test_setup_commands_are_what_ci_runs():
    ci = [normalized(line) for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd ", "bash .ci/"))]   # system packages: .ci/
    ci = [s for s in ci if s != "pip install --upgrade pip"]
    main_job, tests = (setup_steps(b) for b in setup_blocks())
    assert tests == ci, (tests, ci)
    assert main_job == [ci[0], ci[1], "pip install -e .", "symgrad generate"], main_job
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"torch==2.13.0"' in pyproject and 'symgrad = "symgrad.cli:main"' in pyproject


# -- every block runs ------------------------------------------------------------------------------
def tree_state(root: Path) -> dict[str, int]:
    """Modification times of the repository's files (hidden folders and caches left out)."""
    state = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__" and not d.endswith(".egg-info")]
        for f in files:
            p = Path(folder) / f
            state[str(p.relative_to(root))] = p.stat().st_mtime_ns
    return state


def shims(tmp_path: Path) -> dict[str, str]:
    """The environment of a pasted command: ``symgrad`` and ``python`` as after the set-up command."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in (("symgrad", f"{shlex.quote(sys.executable)} -m symgrad"),
                         ("python", shlex.quote(sys.executable))):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {target} "$@"\n', encoding="utf-8")
        shim.chmod(0o755)
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": pythonpath,
            "MPLBACKEND": "Agg"}


def run(cmd, block: Block, cwd: Path, env: dict, stdin: str | None = None, shown: str = ""):
    r = subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (f"{block.where()}: {shown or cmd} exited {r.returncode}\n"
                               f"--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}")


def needs_cc(code: str) -> bool:
    """Code that compiles C: skipped on a machine without a C compiler (CI has one)."""
    return code.startswith("cc ") or 'backend="c"' in code or "--backend c" in code


def test_every_block_runs_after_the_setup_command(tmp_path):
    work = tmp_path / "clone"
    work.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples")
    env = shims(tmp_path)
    before = tree_state(ROOT)
    setups = setup_blocks()
    ran, skipped = 0, []
    for block in readme_blocks():
        if block in setups:    # venv and pip are compared with .ci/run; the main job runs here
            for step in setup_steps(block):
                if step.startswith("symgrad "):
                    run(["bash", "-c", step], block, work, env)
                    ran += 1
        elif block.lang == "python":
            first = block.code.splitlines()[0].strip()
            m = re.fullmatch(r"#\s*([\w.-]+\.py)", first)
            if m:
                (work / m.group(1)).write_text(block.code, encoding="utf-8")
            if needs_cc(block.code) and not HAVE_CC:
                skipped.append(block.where())
                continue
            run([sys.executable, "-"], block, work, env, stdin=block.code, shown="the block")
            ran += 1
        elif block.lang in ("bash", "sh", "console"):
            for line in commands(block):
                if needs_cc(line) and not HAVE_CC:
                    skipped.append(line)
                    continue
                assert "pip install" not in line, f"{block.where()}: a block needs no network: {line}"
                run(["bash", "-euo", "pipefail", "-c", line], block, work, env, shown=line)
                ran += 1
    assert ran >= 20 - len(skipped), f"only {ran} commands found in README.md"
    after = tree_state(ROOT)
    assert after == before, f"running the README changed the repository: {sorted(set(after.items()) ^ set(before.items()))}"


def test_block_parsing():
    text = ("intro\n```bash\nsymgrad list   # all\n# a comment\nsymgrad generate \\\n  --out x\n```\n"
            "```console\n$ symgrad list\ndense   layer\n```\n```python\n# f.py\nx = 1\n```\n")
    bash, console, py = blocks(text)
    assert (bash.lang, bash.line, commands(bash)) == ("bash", 2, ["symgrad list   # all", "symgrad generate --out x"])
    assert commands(console) == ["symgrad list"]
    assert py.code == "# f.py\nx = 1\n"
    assert normalized('python -m pip install -q -e ".[test]"') == "pip install -e .[test]"


# -- docs/contract.md stays in step with the code ------------------------------------------------------
def table_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def keyword_defaults(fn) -> dict:
    import inspect
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name != "dtype"}


def test_contract_layer_table_matches_the_kernels():
    import inspect

    import symgrad
    rows = table_rows((ROOT / "docs" / "contract.md").read_text(encoding="utf-8"), "| NAME | forward arguments")
    assert len(rows) >= 8
    for names_cell, args_cell, _out, grads_cell in rows:
        documented_args = re.findall(r"(\w+)(?: \(|=)", args_cell)
        documented_defaults = {k: {"None": None, "True": True, "False": False}[v] if v in ("None", "True", "False")
                               else float(v) for k, v in re.findall(r"(\w+)=(None|True|False|[\d.e+-]+)", args_cell)}
        documented_grads = re.findall(r"\w+", grads_cell.split(")")[0])
        for name in re.findall(r"`(\w+)`", names_cell):
            k = symgrad.load(name)
            params = [p for p in inspect.signature(k.module.forward).parameters.values() if p.kind is not p.KEYWORD_ONLY]
            assert [p.name for p in params] == documented_args, (name, params, args_cell)
            assert {p.name: p.default for p in params if p.default is not p.empty} == documented_defaults, name
            assert ["d" + i.name for i in k.spec.diff_inputs] == documented_grads, (name, grads_cell)


def top_level_items(cell: str) -> list[str]:
    """``a=1, b (remark, more), c`` -> ``["a=1", "b", "c"]``: split at commas outside parentheses,
    remarks in parentheses dropped."""
    depth, items, current = 0, [], ""
    for ch in cell + ",":
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(re.sub(r"\([^)]*\)", "", current).strip())
            current = ""
        else:
            current += ch
    return [item for item in items if item]


def test_contract_optimizer_table_matches_the_kernels():
    import symgrad
    rows = table_rows((ROOT / "docs" / "contract.md").read_text(encoding="utf-8"), "| NAME | hyperparameters")
    documented = {}
    for names_cell, hypers_cell in rows:
        (name,) = re.findall(r"`(\w+)`", names_cell)
        hypers = {}
        for item in top_level_items(hypers_cell):
            if item.startswith("as "):
                hypers.update(documented[item.removeprefix("as ")])
            elif "=" in item:
                key, value = item.split("=")
                hypers[key] = {"True": True, "False": False}[value] if value in ("True", "False") else float(value)
            else:
                hypers[item] = "required"
        documented[name] = hypers
    fresh = subprocess.run([sys.executable, "-c", "import symgrad; print(*symgrad.REGISTRY.names('optimizer'))"],
                           capture_output=True, text=True, check=True).stdout.split()   # the built-ins only
    assert set(documented) == set(fresh) - {"ema"}   # ema is documented below the table
    for name, hypers in documented.items():
        k = symgrad.load(name)
        actual = {**keyword_defaults(k.module.step), **keyword_defaults(k.module.init)}
        actual = {key: "required" if type(v).__name__ == "_Required" else v for key, v in actual.items()}
        assert actual == hypers, (name, actual, hypers)
