"""The layout's rules, checked on the source: no import cycles in symgrad/ (imports inside functions
count, importing a package counts as importing its ``__init__``), no private name imported from
another module, no dispatch on kernel-kind strings outside the registry."""
import ast
import re
from pathlib import Path

import symgrad

PKG = Path(symgrad.__file__).parent


def _modules():
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        ispkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if ispkg else parts)] = (p, ispkg)
    return out


def _imports(mod, ispkg, node, mods):
    """Modules of symgrad that ``node`` imports: ``from X import Y`` imports X (its ``__init__`` when a
    package) and X.Y when Y is a submodule; ``import X.Y`` imports X.Y (and binds X without ``as``)."""
    names = []
    if isinstance(node, ast.Import):
        for a in node.names:
            names.append(a.name)
            if a.asname is None and "." in a.name:
                names.append(a.name.split(".")[0])
    else:
        if node.level:
            base = mod.split(".") if ispkg else mod.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        names.append(name)
        names += [f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in mods]
    return [n for n in names if n in mods]


def test_import_graph_has_no_cycle():
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, (p, ispkg) in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[m] |= set(_imports(m, ispkg, node, mods)) - {m}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
    assert sum(len(v) for v in graph.values()) > 100   # the walk saw the package's imports


def test_no_private_name_is_imported_across_modules():
    bad = []
    for p in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("symgrad")):
                bad += [f"{p.relative_to(PKG)}: {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad


def test_no_kind_dispatch_outside_the_registry():
    """Kernel kinds are dispatched by the registry's rules; a module comparing ``spec.kind`` (or a
    kernel's ``k.kind``) with a kind's name would be a second, hidden registry."""
    kinds = "|".join(sorted({s.kind for s in symgrad.REGISTRY} | {"recurrent", "cell"}))
    pat = re.compile(r"\b(spec|k|s|self\.spec|self\.k)\.kind\s*(==|!=|in|not in)\s*[\(\[\{]?\s*['\"](" + kinds + ")['\"]")
    bad = [f"{p.relative_to(PKG)}:{i}" for p in PKG.rglob("*.py") if p.name != "registry.py"
           for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pat.search(line)]
    assert not bad, bad


def test_the_cli_choices_come_from_the_registry():
    from click.testing import CliRunner
    from symgrad.cli import main
    out = CliRunner().invoke(main, ["generate", "--help"]).output
    assert all(t in out for t in symgrad.REGISTRY.targets())
