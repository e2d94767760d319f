"""Issue 18, item 5: the board version (--summary) and a default page no longer than needed."""
from pathlib import Path

from click.testing import CliRunner

from symgrad.cli import main
from symgrad.explanation import explain, explainable

DOCS = Path(__file__).resolve().parents[1] / "docs" / "derivations"


def test_dense_sigmoid_page_is_at_most_half_of_232_lines_and_keeps_every_step():
    for suffix in (".md", ".zh.md"):
        assert len((DOCS / f"dense_sigmoid{suffix}").read_text(encoding="utf-8").splitlines()) <= 116
    ex = explain("dense_sigmoid")
    md = ex.markdown()
    doc = ex.doc
    from symgrad.registry import REGISTRY
    steps = REGISTRY.get("dense_sigmoid").derivation.steps
    for k in range(1, len(steps) + 1):
        assert f"**Step {k}: " in md
    assert len(doc.equations("local")) >= len(steps)
    assert len(doc.equations("chain")) + len(doc.equations("final")) == len(steps)   # each step's product


def test_final_gradients_do_not_repeat_the_steps():
    for name in explainable():
        doc = explain(name).doc
        heads = [k for k, b in enumerate(doc.blocks) if getattr(b, "level", 0) == 2]
        start = next((k for k in heads if doc.blocks[k].text == "Final gradients"), None)
        if start is None:
            continue
        end = next((k for k in heads if k > start), len(doc.blocks))
        before = {(e.defines, str(e.rhs)) for e in doc.blocks[:start] if type(e).__name__ == "Equation"}
        for e in doc.blocks[start:end]:
            if type(e).__name__ == "Equation":
                assert (e.defines, str(e.rhs)) not in before, (name, e.defines)
    assert len(explain("dense").doc.equations("final")) == 3      # each in its step, none repeated


def test_summary_is_legend_final_gradients_and_saved_values():
    ex = explain("layernorm").summary()
    heads = [b.text for b in ex.doc.blocks if getattr(b, "level", 0) == 2]
    assert len(heads) == 3 and heads[0].startswith("Symbols") and heads[1] == "Final gradients" \
        and heads[2].startswith("Saved")
    assert ex.doc.equations("final") and not ex.doc.equations("chain")
    r = CliRunner().invoke(main, ["explain", "layernorm", "--summary", "--lang", "zh"])
    assert r.exit_code == 0 and "最终梯度" in r.output and "第 1 步：" not in r.output
    assert len(r.output.splitlines()) < len(CliRunner().invoke(main, ["explain", "layernorm", "--lang", "zh"])
                                            .output.splitlines()) / 2
    assert "Update equations" in explain("adam").summary().text()
