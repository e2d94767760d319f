"""Issue 18, item 4: each page ends with the textbook form, proven equal to the derived one by SymPy."""
import sympy as sp

from symgrad.explanation import explain
from symgrad.explanation.textbook import OPTIMIZERS, proves_zero, plain, by_name, compose


def test_adam_shows_kingma_ba_mhat_vhat_and_sympy_proves_it():
    ex = explain("adam")
    md = ex.markdown()
    assert r"\hat{m} \leftarrow \frac{m}{1 - \beta_{1}^{t}}" in md and r"\hat{v} \leftarrow" in md
    assert r"p \leftarrow p - \frac{\eta \hat{m}}{\epsilon + \sqrt{\hat{v}}}" in md
    assert "Kingma & Ba" in md and ex.doc.equations("proof")[0].rhs == 0
    assert md.index("As textbooks write it") > md.index("## Update")


def test_every_textbook_optimizer_form_is_proven_and_a_wrong_one_is_not():
    for name in OPTIMIZERS:
        proof = explain(name).doc.equations("proof")
        assert len(proof) == 1 and proof[0].rhs == 0, name
        assert explain(name, lang="zh").doc.equations("proof")[0].rhs == 0
    # the proof can fail: a textbook Adam without the bias correction of v is not the derived step
    src, flags, given, lines = OPTIMIZERS["adam"]
    wrong = list(lines)
    wrong[3] = (wrong[3][0], sp.Symbol("exp_avg_sq"))
    from symgrad.registry import REGISTRY
    from symgrad.explanation.textbook import variant  # noqa: E402
    v = variant(REGISTRY.get("adam"), flags)
    derived = {k.name: e for k, e in compose([(eq.lhs, eq.rhs) for eq in v.equations]).items()}
    book = {k.name: e for k, e in compose(wrong).items()}
    assert not proves_zero(by_name(plain(book["p"]) - plain(derived["p"]), given))


def test_layernorm_textbook_form_with_mean_is_proven():
    doc = explain("layernorm").doc
    (form,) = doc.equations("textbook")
    assert "mean" in str(form.rhs) and doc.equations("proof")[0].rhs == 0
    assert r"\operatorname{mean}_{d'}" in explain("layernorm").markdown()


def test_lstm_in_torch_documented_equations_is_proven():
    ex = explain("lstm")
    forms = ex.doc.equations("textbook")
    assert [str(e.lhs).split("[")[0] for e in forms] == ["i", "f", "g", "o", "c_new", "h_new"]
    assert ex.doc.equations("proof")[-1].rhs == 0
    md = ex.markdown()
    assert r"{{W}^{\mathrm{ii}}_{k,d}}" in md and r"\sum_{d=0}^{D - 1}" in md
