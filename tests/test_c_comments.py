"""The generated C reads like llm.c: every pass over memory (a loop nest or a GEMM call) carries a
one-line comment saying what it computes, in the derivation's names."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "generated" / "c").glob("*.c"))

FUNC = re.compile(r"^(static )?(void|int|double) (\w+)\(.*\)$")
DECL = re.compile(r"^(const )?(float|double|int64_t|int)\b[^;]*;$")
ONE_LINE_FOR = re.compile(r"^(if \(.*\) )?for \(.*;$")


def functions(src: str) -> dict:
    """The kernel functions of a generated file (not its static inline helpers): name -> body lines."""
    out, name, body = {}, None, []
    for line in src.splitlines():
        m = FUNC.match(line)
        if m:
            name, body = m.group(3), []
        elif name and line == "}":
            out[name] = body
            name = None
        elif name and line != "{":
            body.append(line.strip())
    return out


def tree(lines):
    """Nested [header, children] nodes from lines that open blocks with a trailing '{'."""
    root = ["", []]
    stack = [root]
    for line in lines:
        if line.startswith("} ") and line.endswith("{"):   # "} else {": the block closes, the next opens
            stack.pop()
            node = [line[2:], []]
            stack[-1][1].append(node)
            stack.append(node)
        elif line == "}" or line.startswith("} "):
            stack.pop()
        elif line.endswith("{"):
            node = [line, []]
            stack[-1][1].append(node)
            stack.append(node)
        else:
            stack[-1][1].append(line)
    assert len(stack) == 1, "unbalanced braces"
    return root


def text(node) -> str:
    return node if isinstance(node, str) else node[0] + "\n" + "\n".join(text(c) for c in node[1])


def is_work(node) -> bool:
    t = text(node)
    return "for (" in t or "sg_gemm_" in t


def skippable(node) -> bool:
    """What may stand between a comment and the pass it names: declarations, macros, block openers,
    and the one-line loops of the same pass (zeroing an output, copies)."""
    if not isinstance(node, str):
        return False
    return bool(DECL.match(node) or node.startswith("SG_") or ONE_LINE_FOR.match(node))


def uncommented(children, before=()) -> list:
    """Work items among ``children`` not preceded by a comment; ``before``: the enclosing items up to
    this block (a block that is no loop is transparent: the comment may stand before it)."""
    bad = []
    for i, c in enumerate(children):
        if not is_work(c):
            continue
        prev = list(before) + list(children[:i])
        ok = False
        while prev:
            p = prev.pop()
            if isinstance(p, str) and p.startswith("/*"):
                ok = True
                break
            if p != "{" and not skippable(p):
                break
        if not ok:
            bad.append(text(c).splitlines()[0])
    return bad


def check(node, before=(), level="function") -> list:
    header, children = node
    bad = []
    works = [c for c in children if is_work(c)]
    loop = header.startswith("for (")
    rows = header.startswith("for (int64_t i0 =")
    time = header.startswith("for (int64_t _t =")
    if level == "function" or time or (rows and len(works) > 1):
        bad += uncommented(children, before)
    for i, c in enumerate(children):
        if isinstance(c, str):
            continue
        block = not c[0].startswith("for (")
        if level == "function" and block:   # a wrapper block: its first pass may be named before it
            bad += check(c, list(before) + list(children[:i]) + ["{"], "function")
        else:
            bad += check(c, (), "inner")
    return bad


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_every_pass_over_memory_is_named(path):
    src = path.read_text()
    funcs = {n: b for n, b in functions(src).items() if not n.endswith("_scratch_size")}
    assert funcs, path
    for name, body in funcs.items():
        bad = check(tree(body))
        assert not bad, (path.name, name, bad)


def test_the_checker_finds_an_unnamed_pass():
    body = ["/* pass 1 */", "for (int64_t i = 0; i < n; ++i) {", "x[i] = 0;", "}",
            "for (int64_t i = 0; i < n; ++i) {", "y[i] = 0;", "}"]
    assert check(tree(body)) == ["for (int64_t i = 0; i < n; ++i) {"]
    rows = ["/* rows */", "for (int64_t i0 = 0; i0 < N; ++i0) {", "/* pass 1 */", "{", "double _acc = 0.0;",
            "for (int64_t i1 = 0; i1 < D; ++i1) {", "_acc += x[i1];", "}", "}",
            "for (int64_t i1 = 0; i1 < D; ++i1) {", "y[i1] = 0;", "}", "}"]
    assert check(tree(rows)) == ["for (int64_t i1 = 0; i1 < D; ++i1) {"]


def comments(path, func):
    body = functions((ROOT / "generated" / "c" / path).read_text())[func]
    return [l for l in body if l.startswith("/*")]


def test_layernorm_backward_names_its_passes_in_the_derivations_names():
    notes = comments("layernorm.c", "layernorm_backward_f64")
    passes = [c for c in notes if c.startswith("/* pass ")]
    assert [c.split(":")[0] for c in passes] == ["/* pass 1", "/* pass 2"], notes
    assert "dxhat" in passes[0] and "xhat" in passes[0].replace("dxhat", "") and "dgamma" in passes[0]
    assert "dx = " in passes[1] and "dxhat" in passes[1]
    assert any("column sums dgamma, dbeta: per chunk of rows, then summed" in c for c in notes), notes


def test_gemm_and_recurrent_comments():
    assert "/* dW = x^T dy (GEMM) */" in comments("dense.c", "dense_backward_f32")
    notes = comments("lstm.c", "lstm_forward_f32") + comments("lstm.c", "lstm_backward_f32")
    for phrase in ("before the time loop", "the time loop: one step", "after the time loop",
                   "the time loop, backward"):
        assert any(phrase in c for c in notes), (phrase, notes)


def test_the_names_the_comments_use_are_defined():
    """A pass comment that says ``dxhat`` where the code computes ``dy*gamma`` defines the name."""
    notes = comments("layernorm.c", "layernorm_backward_f64")
    assert any("dxhat = dy*gamma" in c and "xhat = rstd*xc" in c and "xc = x - mean" in c for c in notes), notes


def test_temporary_names_are_unique_valid_c_and_never_an_argument():
    import symgrad
    from symgrad.ir.rewrite import c_kernel
    from symgrad.targets.c.context import CLayerEmitter
    from symgrad.targets.c.names import Glossary, temp_names
    from symgrad.targets.c.plan import C_KEYWORDS

    k = c_kernel(symgrad.REGISTRY.get("softmax"))
    e = CLayerEmitter(k)
    names, _ = e.named(e.fwd, k.forward)
    assert names.get("t0") == "max_z"
    args = {a.name for a in e.fwd.args} | {"max_z"}            # an argument already called max_z
    g = Glossary(list(k.equations), args | {s.out for s in k.forward.body})
    assert "max_z" not in temp_names(k.forward, args, g).values()
    for name in ("layernorm", "softmax_cross_entropy", "dense_tanh", "mse", "bce_logits"):
        k = c_kernel(symgrad.REGISTRY.get(name))
        e = CLayerEmitter(k)
        for cf, f in ((e.fwd, k.forward), (e.bwd, k.backward)):
            names, _ = e.named(cf, f)
            new = list(names.values())
            assert len(new) == len(set(new)), names
            held = {a.name for a in cf.args} | set(f.shapes)
            for n in new:
                assert re.fullmatch(r"[A-Za-z_]\w*", n) and n not in C_KEYWORDS and n not in held, (name, n)
