"""Issue 18, item 1: the notation a teacher puts on the board, one test per rule, over every page."""
import re

import pytest

from symgrad.explanation import explain, explainable

NAMES = explainable()


@pytest.fixture(scope="module")
def pages():
    return {(n, lang): explain(n, lang=lang) for n in NAMES for lang in ("en", "zh")}


def test_gradient_of_a_hatted_value_is_d_hat(pages):
    md = pages["layernorm", "en"].markdown()
    assert r"d\hat{x}" in md
    for (n, lang), ex in pages.items():
        assert r"\hat{d" not in ex.markdown() and r"\hat{d" not in ex.latex(), n


def test_multi_letter_names_are_upright_words(pages):
    md = pages["layernorm", "en"].markdown()
    for word in ("mean", "var", "rstd", "eps", "xc"):
        assert r"\mathrm{%s}" % word in md
    assert r"d\gamma" in md and r"d\mathrm{mean}" in md and r"d\mathrm{gates}" in pages["lstm", "en"].markdown()
    italic = re.compile(r"(?<![\\a-zA-Z{])\{(?:d)?(mean|var|rstd|eps|gates|xc|pred|target|lse|gamma)\}_")
    for (n, lang), ex in pages.items():
        assert not italic.search(ex.markdown()), (n, italic.search(ex.markdown()).group(0))


def test_tanh_of_the_cell_is_not_a_power(pages):
    md = pages["lstm", "en"].markdown()
    assert "{tanh}^" not in md and r"{\left(\tanh c\right)}_{n,k}" in md
    assert r"{{\left(\tanh c\right)}_{n,k}}^{2}" in md or r"{\left(\tanh c\right)}_{n,k}^{2}" in md


def test_lstm_gates_in_torch_order(pages):
    doc = pages["lstm", "en"].doc
    fwd = [e.defines for e in doc.equations("forward")]
    gates = [g for g in fwd if g in ("i", "f", "g", "o")]
    assert gates == ["i", "f", "g", "o"]
    assert fwd.index("o") < fwd.index("c_new")        # the four gates, then the cell and the output
    steps = [h.text for h in doc.blocks if getattr(h, "level", 0) == 3]
    zs = [s.split()[-1] for s in steps if "back to z_" in s]
    assert zs == ["z_i", "z_f", "z_g", "z_o"]


def test_no_empty_identities(pages):
    for (n, lang), ex in pages.items():
        for e in ex.doc.equations():
            lhs, rhs = (re.sub(r"[{}_,\s]", "", str(x)) for x in (e.lhs, e.rhs))
            assert lhs != rhs, (n, e.lhs, e.rhs)
    md = pages["lstm", "en"].markdown()
    assert r"\frac{\partial L}{\partial {{h}_{0}}_{n,k}}" in md or r"\partial {h_{0}}_{n,k}" in md


def test_batch_legend_never_calls_b_the_mini_batch(pages):
    for (n, lang), ex in pages.items():
        text = ex.markdown()
        assert "b (mini-batch)" not in text and "b（小批量" not in text, n
    assert "mini-batch size" in pages["dense", "en"].markdown() and "小批量的大小" in pages["dense", "zh"].markdown()


def test_local_derivative_of_a_contraction_keeps_its_indices(pages):
    md = pages["dense_sigmoid", "en"].markdown()
    assert r"\frac{\partial {u}_{n,m}}{\partial {x}_{n,d}} = {W}_{d,m}" in md
    assert r"\frac{\partial u}{" not in md
    for (n, lang), ex in pages.items():
        assert not re.search(r"\\frac\{\\partial [a-z]\}\{\\partial \{", ex.markdown()), n


def test_update_rules_in_textbook_term_order(pages):
    md = pages["adam", "en"].markdown()
    assert r"m \leftarrow \beta_{1} m + \left(1 - \beta_{1}\right) g" in md
    assert r"v \leftarrow \beta_{2} v + \left(1 - \beta_{2}\right) g^{2}" in md
    assert r"\beta_{1}^{t - k}" in md and r"\beta_{1}^{- k + t}" not in md
    assert "β₁⋅m + (1 - β₁)⋅g" in pages["adam", "en"].text()
    assert r"p \leftarrow p - \eta g" in pages["sgd", "en"].markdown()
    for (n, lang), ex in pages.items():
        assert "+ -" not in ex.markdown(), n


# -- the gaps a teacher would fill ---------------------------------------------------------------------
def test_layernorm_says_why_the_xc_term_vanishes(pages):
    doc = pages["layernorm", "en"].doc
    md = pages["layernorm", "en"].markdown()
    assert "vanishes" in md and r"\sum_{d=0}^{D - 1} {\mathrm{xc}}_{n,d}" in md
    aux = doc.equations("aux")
    assert any(e.rhs == 0 and "Sum" in str(e.lhs) for e in aux)    # SymPy's proof that sum_d xc = 0
    assert "消失" in pages["layernorm", "zh"].markdown()


def test_stop_gradient_sentence_said_once_and_right(pages):
    md = pages["softmax_cross_entropy", "en"].markdown()
    assert md.count("through stop\\_gradient") == 1
    said = next(line for line in md.splitlines() if "stop\\_gradient" in line)
    assert "${e}_{n,c}$ does depend on" in said and r"${\mathrm{lse}}_{n}$ does not" in said
    assert pages["softmax_cross_entropy", "zh"].markdown().count("stop\\_gradient") == 1


def test_lstm_bptt_start_sentence(pages):
    zh = pages["lstm", "zh"].markdown()
    assert "最后一步之前没有来自未来的梯度" not in zh and "之后没有更晚的时间步传回梯度" in zh
    assert "has no later step sending gradient back" in pages["lstm", "en"].markdown()


def test_losses_say_dloss_is_one(pages):
    for n in ("mse", "bce_logits", "softmax_cross_entropy"):
        assert "∂L/∂L = 1" in pages[n, "en"].markdown() and "∂L/∂L = 1" in pages[n, "zh"].markdown(), n
    assert "∂L/∂L = 1" not in pages["dense", "en"].markdown()
