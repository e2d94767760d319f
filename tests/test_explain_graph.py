"""Issue 18, item 2: a computational-graph picture per derivation (SVG), committed beside each page."""
import re
from pathlib import Path

from click.testing import CliRunner

from symgrad.cli import main
from symgrad.explanation import explain, explainable
from symgrad.explanation.graph import graph_of, to_svg

DOCS = Path(__file__).resolve().parents[1] / "docs" / "derivations"


def test_graph_has_forward_values_backward_local_derivatives_and_saved_values():
    doc = explain("dense_sigmoid").doc
    g = graph_of(doc)
    kinds = {i: k for i, _lab, _det, k in g["nodes"]}
    assert set(kinds) == {"x", "W", "b", "u", "z", "a"}
    assert kinds["a"] == "saved" and kinds["b"] == "input" and kinds["z"] == "value"
    fwd = {(s, d) for s, d, _l, st in g["edges"] if st == "forward"}
    assert {("x", "u"), ("W", "u"), ("u", "z"), ("b", "z"), ("z", "a")} <= fwd
    back = {(s, d): lab for s, d, lab, st in g["edges"] if st == "backward"}
    assert back[("a", "z")] == r"$\left(1 - {a}_{n,m}\right) {a}_{n,m}$"     # the local derivative used
    assert back[("u", "x")] == "${W}_{d,m}$"
    det = {i: d for i, _lab, d, _k in g["nodes"]}
    assert det["z"] == "${b}_{m} + {u}_{n,m}$"


def test_svg_is_deterministic_and_every_page_links_its_committed_graph(tmp_path):
    doc = explain("layernorm").doc
    a, b = to_svg(doc), to_svg(doc)
    assert a == b and a.lstrip().startswith("<?xml") and "<svg" in a
    assert not re.search(r"\d{4}-\d\d-\d\dT", a)                      # no date in the file
    for name in explainable():
        svg = DOCS / f"{name}.svg"
        assert svg.is_file(), name
        for suffix in (".md", ".zh.md"):
            assert f"]({name}.svg)" in (DOCS / f"{name}{suffix}").read_text(encoding="utf-8")


def test_optimizer_graph_is_the_data_flow_of_its_updates():
    g = graph_of(explain("adam").doc)
    labels = [lab for _i, lab, _d, _k in g["nodes"]]
    assert labels.count("m") == 2 and "g" in labels and "p" in labels      # m and its new version


def test_cli_graph(tmp_path):
    out = tmp_path / "g.svg"
    r = CliRunner().invoke(main, ["explain", "dense", "--graph", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().count("<svg") == 1
    r = CliRunner().invoke(main, ["explain", "dense", "relu", "--graph", str(out)])
    assert r.exit_code == 2 and "exactly one" in r.output
