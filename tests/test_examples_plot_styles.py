"""Issue 18, item 7 (pictures): optimizer curves that overlap stay visible, and coincidences are said."""
from symgrad.examples.optimizers import line_styles, overlaps, plot_optimizers, trajectories


def test_every_run_has_its_own_line_style_and_marker_and_earlier_ones_are_wider():
    st = line_styles(6)
    assert len({(str(s["linestyle"]), s["marker"]) for s in st}) == 6
    widths = [s["lw"] for s in st]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
    assert [s["zorder"] for s in st] == sorted(s["zorder"] for s in st)


def test_coinciding_runs_are_found_and_noted(tmp_path):
    runs = trajectories("rosenbrock")
    pairs = {(a, b) for a, b, _ in overlaps(runs, "rosenbrock")}
    assert ("SGD + momentum 0.9", "Nesterov momentum 0.9") in pairs
    assert ("SGD", "Adam") not in pairs
    assert overlaps(trajectories("beale"), "beale") == []
    out = tmp_path / "o.png"
    plot_optimizers("rosenbrock", out=out, loss_curve=True)
    assert out.stat().st_size > 10000
