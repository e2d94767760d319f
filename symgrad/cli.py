"""The ``symgrad`` command line: generate, check, list (more views join as subcommands)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from .api import __version__
from .errors import SymgradError
from .registry import REGISTRY


def _load_specs(paths) -> list[str]:
    """Import user spec files (Python modules that call symgrad.layer / symgrad.optimizer ...).

    Returns the names of the kernels the files registered (new names, and names a file re-registered
    with ``replace=True``), in registration order. Any error in a file is reported as ``FILE: ...``.
    """
    defined: list[str] = []
    for p in paths:
        path = Path(p)
        if not path.is_file() or path.suffix != ".py":
            raise SymgradError(f"--spec {p}: not a Python file")
        name = f"symgrad_user_spec_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        before = {s.name: s for s in REGISTRY}
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except SymgradError as e:
            sys.modules.pop(name, None)
            raise SymgradError(f"{p}: {e}") from e
        except Exception as e:  # noqa: BLE001 - a user's file may raise anything: report it, no traceback
            sys.modules.pop(name, None)
            text = e.msg if isinstance(e, SyntaxError) else str(e)
            raise SymgradError(f"{p}{_user_line(e, path)}: {type(e).__name__}: {text}") from e
        defined += [s.name for s in REGISTRY if before.get(s.name) is not s and s.name not in defined]
    return defined


def _user_line(e: BaseException, path: Path) -> str:
    """``:LINE`` of the deepest frame of ``e`` inside the user's file ``path`` (or of a SyntaxError)."""
    if isinstance(e, SyntaxError) and e.lineno:
        return f":{e.lineno}"
    line, tb, target = "", e.__traceback__, str(path.resolve())
    while tb is not None:
        if str(Path(tb.tb_frame.f_code.co_filename).resolve()) == target:
            line = f":{tb.tb_lineno}"
        tb = tb.tb_next
    return line


def _load_formulas(formulas) -> list[str]:
    """Register activations given as ``NAME=EXPR`` (parsed safely, see symgrad.spec.parse)."""
    from .spec.layer import activation
    from .spec.parse import parse_definition
    names = []
    for text in formulas:
        name, expr = parse_definition(text)
        activation(name, expr)
        names.append(name)
    return names


def _user_kernels(specs, formulas) -> list[str]:
    """Load ``--spec`` files and ``--formula`` definitions; the names of the kernels they define."""
    return _load_specs(specs) + _load_formulas(formulas)


def _default_names(names, specs, formulas, defined):
    """The kernels a command works on: NAMES if given; else what --spec/--formula define; else all."""
    if names:
        return list(names)
    if specs or formulas:
        if not defined:
            given = ", ".join([*(f"--spec {p}" for p in specs), *(f"--formula {f}" for f in formulas)])
            raise SymgradError(f"{given}: defines no kernel; name the kernels to use (see `symgrad list`)")
        return defined
    return None


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SymgradError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)


def spec_option(f):
    f = click.option("--formula", "formulas", multiple=True, metavar="NAME=EXPR",
                     help="An activation by its formula, e.g. 'swish=z/(1+exp(-z))' (repeatable).")(f)
    return click.option("--spec", "specs", multiple=True, type=click.Path(),
                        help="A Python file defining your own layers or optimizers (repeatable).")(f)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="symgrad")
def main():
    """symgrad: SymPy-derived back-propagation and optimizer kernels, generated and checked."""


@main.command()
@click.argument("names", nargs=-1)
@click.option("--target", type=click.Choice([*REGISTRY.targets(), "all"]), default="all", show_default=True,
              help="Which kernels to emit.")
@click.option("--out", "out", default="generated", show_default=True, type=click.Path(file_okay=False),
              help="Output folder (gets numpy/ and c/ subfolders).")
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit non-zero naming the files that differ from a fresh generation.")
@spec_option
def generate(names, target, out, check_only, specs, formulas):
    """Generate kernels for NAMES (default: every registered kernel; with --spec/--formula, only the
    kernels those define)."""
    from .generation import generate as gen
    todo = _default_names(names, specs, formulas, _user_kernels(specs, formulas))
    targets = REGISTRY.targets() if target == "all" else (target,)
    res = gen(todo, targets, out, check=check_only, strict=target != "all")
    if check_only:
        if res.foreign:
            for f in res.foreign:
                click.echo(f"not generated: {f}", err=True)
        if res.differing or res.foreign:
            for f in res.differing:
                click.echo(f"differs: {f}", err=True)
            click.echo(f"{len(res.differing)} file(s) differ, {len(res.foreign)} not generated; run `symgrad "
                       f"generate` to refresh them and remove the others", err=True)
            sys.exit(1)
        click.echo(f"{len(res.unchanged)} file(s) up to date")
        return
    for f in res.written:
        click.echo(f"wrote {f}")
    click.echo(f"{len(res.written)} written, {len(res.unchanged)} unchanged in {out}")


@main.command("list")
@spec_option
def list_(specs, formulas):
    """List the registered kernels by kind (with --spec/--formula: only the kernels those define)."""
    todo = _default_names((), specs, formulas, _user_kernels(specs, formulas))
    for spec in (REGISTRY.get(n) for n in todo) if todo is not None else REGISTRY:
        first = (spec.doc or "").strip().splitlines()
        click.echo(f"{spec.name:<24} {spec.kind:<11} {first[0] if first else ''}")


@main.command()
@click.argument("names", nargs=-1)
@click.option("--backend", type=click.Choice(REGISTRY.targets()), default="numpy", show_default=True)
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@spec_option
def check(names, backend, dtype, seed, specs, formulas):
    """Check kernels against central finite differences (float32: against float64).

    Optimizers: each example step sequence lowers a quadratic (float32: agrees with float64)."""
    from .verify import check as run
    todo = _default_names(names, specs, formulas, _user_kernels(specs, formulas))
    rep = run(todo, backend=backend, dtype=dtype, seed=seed)
    click.echo(rep.table())
    bad = [r for r in rep.rows if not r.passed]
    if bad or not rep.rows:
        click.echo(f"{len(bad)} of {len(rep.rows)} checks failed", err=True)
        sys.exit(1)
    click.echo(f"all {len(rep.rows)} checks passed")


@main.command()
@click.argument("workloads", nargs=-1, type=click.Choice(["percall", "mlp", "lstm_step", "torch_layernorm",
                                                           "torch_tiny", "dense", "layernorm", "lstm", "adam",
                                                           "conv2d", "maxpool2d", "batchnorm2d"]))
@click.option("--threads", type=int, default=2, show_default=True, help="Threads for BLAS, OpenMP and torch.")
@click.option("--dtype", "dtypes", multiple=True, type=click.Choice(["float32", "float64"]),
              help="Repeatable; default both.")
@click.option("--repeats", type=int, default=5, show_default=True)
@click.option("--markdown", type=click.Path(dir_okay=False), help="Also write the table as Markdown here.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save a PNG of the ratios (needs matplotlib).")
@click.option("--small", is_flag=True, help="Tiny sizes (a smoke test, not a measurement).")
@click.option("--no-generate", is_flag=True, help="Skip timing `symgrad generate`.")
@click.option("--keep-openblas-env", is_flag=True,
              help="Keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for the timed run (by default they are unset there, "
                   "so OpenBLAS picks its own kernels for this CPU).")
@click.option("--torch-last", is_flag=True,
              help="Import torch only after the C kernels have loaded (as a process that imports symgrad first): "
                   "the kernels then run on the system's OpenMP with symgrad's wait policy, and torch shares it.")
def bench(workloads, threads, dtypes, repeats, markdown, plot, small, no_generate, keep_openblas_env, torch_last):
    """Time generated NumPy and C kernels against hand NumPy and torch (same process, torch imported
    first unless --torch-last, alternating blocks), with GFLOP/s, the bandwidth bound and the BLAS core
    type."""
    import os
    import subprocess
    if os.environ.get("SYMGRAD_BENCH_CHILD") != "1":
        # BLAS and OpenMP read their thread counts when they load: measure in a child process
        from .bench.timing import measuring_env
        env = {**measuring_env(threads, keep_openblas_env), "SYMGRAD_BENCH_CHILD": "1"}
        args = [*workloads, "--threads", str(threads), "--repeats", str(repeats)]
        args += [a for d in dtypes for a in ("--dtype", d)]
        args += [a for flag, v in (("--markdown", markdown), ("--plot", plot)) if v for a in (flag, v)]
        args += ["--small"] * small + ["--no-generate"] * no_generate + ["--torch-last"] * torch_last
        r = subprocess.run([sys.executable, "-m", "symgrad.cli", "bench", *args], env=env)
        sys.exit(r.returncode)
    from .bench import suite as benchmarks

    def progress(items):
        with click.progressbar(items, label="benchmarking", file=sys.stderr,
                               item_show_func=lambda j: f"{j[0]} {j[1]}" if j else "") as bar:
            yield from bar
    report = benchmarks.run(list(workloads) or None, tuple(dtypes) or ("float32", "float64"), threads,
                            repeats, small, progress, with_generate=not no_generate, torch_first=not torch_last)
    click.echo(benchmarks.table(report))
    if markdown:
        from pathlib import Path
        Path(markdown).write_text(benchmarks.table(report, markdown=True) + "\n", encoding="utf-8")
        click.echo(f"wrote {markdown}")
    if plot:
        benchmarks.plot(report, plot)
        click.echo(f"wrote {plot}")


@main.command()
@click.argument("names", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "latex", "markdown", "html"]), default="text",
              show_default=True, help="text: Unicode for a terminal; latex: a fragment; markdown: $$ blocks; "
              "html: one self-contained page (MathML, the graph inline).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of headings and prose (zh: 中文).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of standard output.")
@click.option("--standalone", is_flag=True, help="With --format latex: a complete document (documentclass ...).")
@click.option("--all", "all_", is_flag=True, help="Every explainable kernel.")
@click.option("--site", "site", type=click.Path(file_okay=False), default=None,
              help="Write NAME.html, NAME.zh.html and an index.html for every explainable kernel into this folder.")
@click.option("--docs", "docs", type=click.Path(file_okay=False), default=None,
              help="Write NAME.md and NAME.zh.md pages into this folder (e.g. docs/derivations).")
@click.option("--check", "check_only", is_flag=True,
              help="With --docs: write nothing; exit 1 naming the pages that differ from a fresh run.")
@click.option("--graph", "graph", type=click.Path(dir_okay=False), default=None,
              help="Also write the computational graph of NAME as SVG to this file.")
@click.option("--summary", is_flag=True, help="The board version: legend, final gradients and saved values only.")
@click.option("--numbers", is_flag=True,
              help="Worked numbers: the derivation on a tiny input, computed by the kernel and the printed formulas.")
@click.option("--seed", type=int, default=0, show_default=True, help="With --numbers: the random input's seed.")
@spec_option
def explain(names, fmt, lang, out, standalone, all_, site, docs, check_only, specs, formulas, graph, summary, numbers,
            seed):
    """Print the derivation of NAMES step by step (forward, chain rule, final gradients)."""
    from .explanation import explain as explain_one, explainable
    _load_specs(specs)
    _load_formulas(formulas)
    if docs is not None:
        from .explanation.docs import write_docs
        changed, same = write_docs(docs, None if all_ or not names else list(names), check=check_only)
        if check_only:
            for f in changed:
                click.echo(f"differs: {f}", err=True)
            if changed:
                click.echo(f"{len(changed)} page(s) differ; run `symgrad explain --all --docs {docs}`", err=True)
                sys.exit(1)
            click.echo(f"{len(same)} page(s) up to date")
            return
        for f in changed:
            click.echo(f"wrote {f}")
        click.echo(f"{len(changed)} written, {len(same)} unchanged in {docs}")
        return
    if site is not None:
        from .explanation.html import write_site
        try:
            written = write_site(site, None if all_ or not names else list(names))
        except OSError as e:
            raise SymgradError(f"--site {site}: cannot write ({e.strerror or e})") from e
        click.echo(f"{len(written)} file(s) written in {site}")
        return
    if check_only:
        raise SymgradError("--check needs --docs FOLDER")
    todo = explainable() if all_ else list(names)
    if not todo:
        raise SymgradError("explain: give a kernel NAME (see `symgrad list`) or --all")
    if graph is not None:
        if len(todo) != 1:
            raise SymgradError("--graph: give exactly one kernel NAME")
        from .explanation.graph import to_svg
        from .codegen.render import write_atomic
        try:
            write_atomic(Path(graph), to_svg(explain_one(todo[0], lang=lang).doc))
        except OSError as e:
            raise SymgradError(f"--graph {graph}: cannot write ({e.strerror or e})") from e
        click.echo(f"wrote {graph}", err=True)
    parts = []
    for name in todo:
        ex = explain_one(name, lang=lang)
        if numbers:
            from .explanation import Explanation
            from .explanation.numbers import worked
            ex = Explanation(worked(name, lang=lang, seed=seed)[0], ex.spec)
        if summary:
            ex = ex.summary()
        if fmt == "html":
            from .explanation.html import to_html
            from .explanation.graph import to_svg
            parts.append(to_html(ex.doc, to_svg(ex.doc) if not numbers else None))
            continue
        parts.append(ex.latex(standalone=standalone) if fmt == "latex" else ex.render(fmt))
    text = "\n".join(parts)
    if out:
        from .codegen.render import write_atomic
        try:
            write_atomic(Path(out), text)
        except OSError as e:
            raise SymgradError(f"--out {out}: cannot write ({e.strerror or e})") from e
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)


from .examples.cli import register as _register_examples  # noqa: E402 - train, plot

_register_examples(main)


if __name__ == "__main__":  # pragma: no cover
    main()
