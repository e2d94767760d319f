"""Issue 18, item 7: optimizer rows of `symgrad check` under their own column headers."""
from click.testing import CliRunner

from symgrad.cli import main
from symgrad.verify.report import Report, Row


def test_each_kind_of_row_under_its_own_header():
    r = CliRunner().invoke(main, ["check", "adam", "dense"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    adam = next(k for k, line in enumerate(lines) if line.startswith("adam "))
    dense = next(k for k, line in enumerate(lines) if line.startswith("dense "))
    head_adam = max(k for k in range(adam) if lines[k].startswith("kernel"))
    head_dense = max(k for k in range(dense) if lines[k].startswith("kernel"))
    assert "f-f* at end" in lines[head_adam] and "max abs err" not in lines[head_adam]
    assert "max abs err" in lines[head_dense] and head_dense > adam


def test_table_starts_a_header_only_where_columns_change():
    rows = [Row("a", "x", 1, 1, True), Row("a", "y", 1, 1, True), Row("b", "f", 1, 1, True, "", ("u", "v"))]
    table = Report(rows).table()
    assert table.count("kernel") == 2 and table.index(" u ") > table.index("a        ")
