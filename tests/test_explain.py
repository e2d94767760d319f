"""``symgrad explain``: the printed derivation is the derivation that generates the kernels.

The central test evaluates the SymPy objects the document holds (forward equations, chain-rule
products, final gradients in index notation, matrix forms, SymPy-simplified forms) with NumPy on random
inputs and compares them with the generated kernel (``symgrad.load``).
"""
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symgrad as sg
from symgrad.cli import main
from symgrad.explanation import Explanation, explain, explainable
from symgrad.explanation.evaluate import run
from symgrad.explanation.render import latex_document

from symgrad.explanation.windows import dim_values
from symgrad.verify.layers import outputs_of, size_settings

from conftest import layer_names


ROOT = Path(__file__).resolve().parents[1]
SIZES = {"N": 4, "D": 3, "M": 2, "C": 5, "n_elems": 7}
N, D, M = sg.dims("N D M")
u = sp.Symbol("u", real=True)


@sg.layer(x=(N, D), W=(D, M), V=(D, M), register=False)
def explain_gated(x, W, V, scale=0.5):
    """A user's layer: tanh(x W) * sigmoid(x V) * scale + mean over features of x."""
    gate = sg.apply(1 / (1 + sp.exp(-u)), fn="sigmoid", u=(x @ V).named("g"))
    return sg.tanh(x @ W) * gate * scale + sg.mean(x, axis=-1, keepdims=True)


@sg.loss(z=(N, M), target=sg.constant((N, M)), register=False)
def explain_logcosh(z, target):
    """A user's loss: mean log(cosh(z - target)) (a stop_gradient-free, broadcasting-free check)."""
    return sg.mean(sg.log((sg.exp(z - target) + sg.exp(target - z)) / 2))


@sg.layer(x=(N, D), register=False)
def explain_rowmax(x):
    """A max reduction with a gradient (the arg-max rule) and an output of a different shape."""
    return sg.max(x, axis=-1)


@sg.layer(x=(N, D), W=(D, D), register=False)
def explain_square(x, W):
    """Two outputs, a repeated dimension (W is D x D) and a transpose."""
    return ((x @ W) @ W).named("p"), (x.T @ x).named("q")


@sg.layer(x=(N, D), gamma=(D,), beta=(D,), register=False)
def explain_layernorm(x, gamma, beta, eps=1e-5):
    """LayerNorm over the last axis written as a user would (REFERENCE.md semantics)."""
    xc = (x - sg.mean(x, axis=-1, keepdims=True)).named("xc")
    rstd = (1 / sg.sqrt(sg.mean(xc * xc, axis=-1, keepdims=True) + eps)).named("rstd")
    return (xc * rstd).named("xhat") * gamma + beta


USER = {s.name: s for s in (explain_gated, explain_logcosh, explain_rowmax, explain_square, explain_layernorm)}


@pytest.fixture(scope="module", autouse=True)
def registered():
    for s in USER.values():
        sg.REGISTRY.add(s)
    yield
    for s in USER.values():
        sg.REGISTRY.remove(s.name)


def _numeric_recurrent(spec, seed=0):
    """A recurrent layer: the printed one-step equations against a T = 1 run of the kernel.

    With T = 1 the cell runs once with h = h0, c = c0, its upstream gradients dh_new = dhs[0] + dhT and
    dc_new = dcT, and its gradients are the kernel's (dx[0], dh0, dc0, dW_ih, ...)."""
    cell = spec.cell
    rng = np.random.default_rng(seed)
    sizes = {d: SIZES.get(str(d), 3) for d in spec.dims}
    sizes[spec.time] = 1
    shape = lambda s: tuple(int(sp.sympify(d).xreplace(sizes)) for d in s)  # noqa: E731
    vals = {i.name: rng.standard_normal(shape(i.shape)) for i in spec.inputs}
    k = sg.load(spec.name)
    outs, cache = k.forward(*vals.values())
    ups = [rng.standard_normal(o.shape) for o in outs]
    grads = k.backward(cache, *ups)
    env = {}
    for ci, ki in zip(cell.inputs, spec.inputs):
        env[ci.name] = vals[ki.name][0] if ci.name in spec.sequence else vals[ki.name]
    # upstream of the cell: d(output) of every step's output plus the final-state gradient
    finals = dict(zip(spec.state, ups[len(spec.outputs):]))
    for g in cell.derivation.grad_inputs:
        s = next(s for s, o in zip(spec.state, cell.outputs) if o is g.upstream_of)
        env[g.name] = finals[s] + (ups[spec.outputs.index(s)][0] if s in spec.outputs else 0)
    ref = {}
    for ci, g in zip(cell.diff_inputs, grads):
        ref["d" + ci.name] = g[0] if ci.name in spec.sequence else g
    ref.update(zip([o.name for o in cell.outputs], outs[len(spec.outputs):]))
    env.update({h.name: h.default for h in cell.hypers})
    return run(explain(spec.name).doc, env, sizes), ref


def _numeric(name, seed=0, settings=None):
    """(document results, kernel outputs by name) on random inputs; ``settings``: size parameters
    (stride, padding, dilation) passed to forward and bound in the printed formulas."""
    spec = sg.REGISTRY.get(name)
    if spec.kind == "recurrent":
        return _numeric_recurrent(spec, seed)
    rng = np.random.default_rng(seed)
    settings = settings or {}
    sizes = dim_values(spec, {d: SIZES.get(str(d), 3) for d in spec.dims}, settings)
    shape = lambda s: tuple(int(sp.sympify(d).xreplace(sizes)) for d in s)  # noqa: E731
    vals = {}
    for i in spec.inputs:
        vals[i.name] = (rng.integers(0, int(i.bound.xreplace(sizes)), size=shape(i.shape)) if i.kind == "index"
                        else rng.standard_normal(shape(i.shape)))
    k = sg.load(name)
    out, cache = outputs_of(spec, k.forward(*[vals[i.name] for i in spec.inputs], **settings))
    ups = {g.name: (rng.standard_normal(shape(g.shape)) if g.shape else 1.3) for g in spec.derivation.grad_inputs}
    grads = k.backward(cache, *ups.values())
    ref = {"d" + i.name: g for i, g in zip(spec.diff_inputs, grads)}
    ref.update(zip([o.name for o in spec.outputs], out))
    env = {**vals, **ups, **{h.name: h.default for h in spec.hypers}}
    return run(explain(name).doc, env, sizes), ref


@pytest.mark.parametrize("name", layer_names() + list(USER))
def test_printed_formulas_evaluate_to_the_kernel(name):
    spec = sg.REGISTRY.get(name)
    for settings in size_settings(spec):     # every size setting the checker uses (stride 2, padding 1, ...)
        results, ref = _numeric(name, settings=settings)
        roles = {}
        for eq, val in results:
            key = eq.defines or str(eq.lhs)
            if key in ref and eq.role in ("forward", "final", "simplified", "matrix"):
                r = np.asarray(ref[key], dtype=np.float64)
                got = np.asarray(val, dtype=np.float64).reshape(r.shape)
                assert np.allclose(got, r, rtol=1e-10, atol=1e-12), (name, settings, eq.role, key,
                                                                     np.max(np.abs(got - r)))
                roles[eq.role] = roles.get(eq.role, 0) + 1
        assert roles.get("final") == len(spec.diff_inputs), roles   # every final gradient was compared
        assert roles.get("forward", 0) >= 1


def test_chain_rule_steps_come_from_the_derivation():
    spec = sg.REGISTRY.get("dense_sigmoid")
    doc = explain("dense_sigmoid").doc
    heads = [b.text for b in doc.blocks if type(b).__name__ == "Heading" and b.level == 3]
    assert len(heads) == len(spec.derivation.steps)
    local = [e for e in doc.equations("local")]
    a, z = sp.IndexedBase("a"), sp.IndexedBase("z")
    n, m = sp.symbols("n m", integer=True)
    # SymPy's derivative of the sigmoid, and the engine's rewrite sigma (1 - sigma) in terms of the output
    assert any(sp.simplify(e.rhs - sp.exp(-z[n, m]) / (1 + sp.exp(-z[n, m])) ** 2) == 0 for e in local)
    assert any(e.rhs == a[n, m] * (1 - a[n, m]) for e in local)
    finals = {e.defines: e.rhs for e in doc.equations("final")}
    d, x, delta = sp.Symbol("d", integer=True), sp.IndexedBase("x"), sp.IndexedBase("delta")
    assert finals["dW"] == sp.Sum(x[n, d] * delta[n, m], (n, 0, N - 1))           # dW_dm = sum_n x_nd delta_nm
    mats = {str(e.lhs): e.rhs for e in doc.equations("matrix")}
    assert mats["dW"] == sp.MatMul(sp.MatrixSymbol("x", N, D).T, sp.MatrixSymbol("delta", N, M))


def test_softmax_cross_entropy_collapses_to_p_minus_onehot():
    doc = explain("softmax_cross_entropy").doc
    last = doc.equations("simplified")[-1]
    n, c = sp.symbols("n c", integer=True)
    p, Y = sp.IndexedBase("p"), sp.IndexedBase("Y")
    C, Nn = sp.Symbol("C", integer=True, positive=True), sp.Symbol("N", integer=True, positive=True)
    assert sp.simplify(last.rhs - sp.Symbol("dloss", real=True) * (p[n, c] - Y[n, c]) / Nn) == 0
    aux = doc.equations("aux")[0]
    assert aux.defines == "p" and str(aux.rhs) == "e[n, c]/s[n]"
    md = explain("softmax_cross_entropy").markdown()
    assert "softmax(" in md and r"{p}_{n,c}" in md
    assert C in doc.dims.values()


def test_bce_and_softmax_simplify_to_textbook_forms():
    bce = explain("bce_logits").doc.equations("simplified")[-1].rhs
    from symgrad.derive.stable import Sigmoid
    k = sp.Symbol("k", integer=True)
    assert bce.has(Sigmoid(sp.IndexedBase("z")[k])) and "target[k]" in str(bce) and not bce.has(sp.Abs)
    sm = explain("softmax").doc.equations("simplified")[-1].rhs
    assert "Sum(a[n, c']*da[n, c']" in str(sm) and "s[n]" not in str(sm)


def test_saved_values_come_from_the_kernel_ir():
    from symgrad.ir.lower import lower
    for name in ("softmax_cross_entropy", "dense_sigmoid", "sigmoid"):
        saved = lower(sg.REGISTRY.get(name)).backward.saved
        table = [b for b in explain(name).doc.blocks if type(b).__name__ == "Table"][-1]
        codes = [r[1][0] for r in table.rows]
        intermediates = [s for s in saved if s not in [i.name for i in sg.REGISTRY.get(name).inputs]]
        assert set(intermediates) <= set(codes) and all(r[3] for r in table.rows), (name, codes)


def _balanced(tex: str):
    depth = 0
    for i, ch in enumerate(tex):
        if ch == "{" and (i == 0 or tex[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or tex[i - 1] != "\\"):
            depth -= 1
        assert depth >= 0, tex[max(0, i - 80):i + 1]
    assert depth == 0
    envs = re.findall(r"\\(begin|end)\{(\w+\*?)\}", tex)
    stack = []
    for kind, env in envs:
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack.pop() == env, env
    assert not stack


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_latex_braces_and_environments_balance(lang):
    from symgrad.explanation.render import eq_latex
    for name in explainable():
        ex = explain(name, lang=lang)
        _balanced(ex.latex())
        _balanced(ex.latex(standalone=True))
        for e in ex.doc.equations():
            _balanced(eq_latex(e))
    with pytest.raises(AssertionError):
        _balanced(r"\frac{a}{b")          # the checker itself catches an unbalanced brace


def test_mathtext_parses_each_equation():
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("agg")
    from symgrad.explanation.render import eq_latex
    parsed = 0
    for name in explainable():
        for e in explain(name).doc.equations():
            tex = eq_latex(e)
            if r"\begin" in tex:      # cases environments: beyond mathtext, checked by pdflatex below
                continue
            parser.parse("$" + tex + "$")
            parsed += 1
    assert parsed > 50


def _has_tex_file(name):
    if shutil.which("kpsewhich") is None:
        return False
    return subprocess.run(["kpsewhich", name], capture_output=True, text=True).stdout.strip() != ""


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex installed")
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_latex_compiles_with_pdflatex(tmp_path, lang):
    if lang == "zh" and not _has_tex_file("c70gbsn.fd"):
        pytest.skip("no CJK gbsn font for pdflatex (apt-get install latex-cjk-chinese-arphic-gbsn00lp)")
    names = [n for n in explainable() if n not in USER]      # every built-in page
    body = "".join(explain(n, lang=lang).latex() for n in names)
    (tmp_path / "doc.tex").write_text(latex_document(body, lang), encoding="utf-8")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                       capture_output=True, text=True, errors="replace", timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_formats_languages_and_jupyter_reprs():
    ex = sg.explain("dense")
    assert isinstance(ex, Explanation) and callable(sg.explain)
    text = str(ex)
    assert "Backward pass: the chain rule step by step" in text and "dW" in text and "$$" not in text
    assert "∑" in text or "___" in text          # sympy.pretty's summation sign
    md = ex._repr_markdown_()
    assert md.count("$$") % 2 == 0 and "\n$$\n" in md
    assert ex._repr_latex_().startswith("$$")
    zh = explain("dense", lang="zh")
    for head in ("前向传播", "反向传播", "链式法则", "最终梯度", "为反向传播保存的值", "梯度下降"):
        assert head in zh.markdown(), head
    with pytest.raises(ValueError, match="lang"):
        explain("dense", lang="fr")
    with pytest.raises(ValueError, match="format"):
        ex.render("html")
    with pytest.raises(sg.UnknownKernelError, match="nope"):
        explain("nope")


def test_a_new_kind_plugs_in_a_builder():
    """A new kind registers its explain rule; explain() asks the registry for it."""
    from symgrad.explanation.model import Document, Equation, Heading

    class Toy:
        name, kind = "toy_sgd", "toy_optimizer"

    @sg.REGISTRY.register_rule("explain", ("toy_optimizer",))
    def build(spec, lang):
        p, g, lr = sp.symbols("p g lr")
        doc = Document(spec.name, spec.kind, lang, "toy")
        doc.add(Heading(2, "update"))
        doc.add(Equation(p, p - lr * g, rel="<-"))
        return doc

    try:
        ex = explain(Toy())
        assert r"p \leftarrow - g \mathrm{lr} + p" in ex.latex() and "update" in str(ex)
    finally:
        sg.REGISTRY.remove_rule("explain", ("toy_optimizer",))
    with pytest.raises(sg.SymgradError, match="no explanation builder"):
        explain(Toy())


def test_cli_explain(tmp_path):
    r = CliRunner().invoke(main, ["explain", "sigmoid"])
    assert r.exit_code == 0 and "Local derivative" in r.output
    out = tmp_path / "s.md"
    r = CliRunner().invoke(main, ["explain", "softmax", "--format", "markdown", "--lang", "zh", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "反向传播" in out.read_text(encoding="utf-8")
    r = CliRunner().invoke(main, ["explain", "tanh", "--format", "latex", "--standalone"])
    assert r.exit_code == 0 and r.output.startswith(r"\documentclass") and r"\end{document}" in r.output
    r = CliRunner().invoke(main, ["explain", "no_such"])
    assert r.exit_code == 2 and "unknown kernel" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["explain", "dense", "--check"])
    assert r.exit_code == 2 and "--docs" in r.output


def test_cli_docs_write_and_check(tmp_path):
    r = CliRunner().invoke(main, ["explain", "dense", "relu", "--docs", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert {p.name for p in tmp_path.iterdir()} == {"dense.md", "dense.zh.md", "relu.md", "relu.zh.md", "README.md",
                                                    "dense.svg", "relu.svg"}
    r = CliRunner().invoke(main, ["explain", "dense", "relu", "--docs", str(tmp_path), "--check"])
    assert r.exit_code == 0 and "up to date" in r.output
    (tmp_path / "relu.md").write_text("stale\n")
    r = CliRunner().invoke(main, ["explain", "dense", "relu", "--docs", str(tmp_path), "--check"])
    assert r.exit_code == 1 and "relu.md" in r.output


def test_committed_derivation_docs_are_fresh():
    """docs/derivations/ must equal a fresh `symgrad explain --all --docs docs/derivations`."""
    from symgrad.explanation.docs import render_docs
    builtin = [n for n in explainable() if n not in USER]
    files = render_docs(builtin)
    folder = ROOT / "docs" / "derivations"
    stale = [rel for rel, text in files.items()
             if not (folder / rel).is_file() or (folder / rel).read_text(encoding="utf-8") != text]
    assert not stale, f"regenerate with `symgrad explain --all --docs docs/derivations`: {stale}"
    extra = {p.name for p in folder.iterdir()} - set(files)
    assert not extra, f"pages no kernel produces: {sorted(extra)}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/derivations/README.md" in readme and "## Explain" in readme
    index = (folder / "README.md").read_text(encoding="utf-8")
    assert all(f"]({n}.md)" in index and f"]({n}.zh.md)" in index for n in builtin)


def test_code_section_is_the_generated_backward():
    from symgrad.explanation.model import Code
    for name in [n for n in layer_names() if n not in USER and sg.REGISTRY.rule("explain", sg.REGISTRY.get(n))]:
        codes = [b for b in explain(name).doc.blocks if isinstance(b, Code)]
        generated = (ROOT / "generated" / "numpy" / f"{name}.py").read_text(encoding="utf-8")
        if sg.REGISTRY.get(name).kind == "recurrent":   # before, inside and after the time loops
            lines = [line.strip() for line in generated.splitlines()]
            assert len(codes) == 4 and all(c.lines and all(x in lines for x in c.lines) for c in codes), name
            continue
        code = codes[0]
        body = generated[generated.index("def backward("):]
        assert code.lines and all("    " + line + "\n" in body for line in code.lines), name


def test_explain_is_deterministic_across_hash_seeds():
    import os
    import sys
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([sys.executable, "-m", "symgrad.cli", "explain", "softmax_cross_entropy", "dense_tanh",
                            "--format", "markdown", "--lang", "zh"], env=env, capture_output=True, check=True)
        outs.append(r.stdout)
    assert outs[0] == outs[1] and b"$$" in outs[0]
