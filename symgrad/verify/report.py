"""The result of ``symgrad check``: one row per checked value, a table, truthy when all passed."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Row:
    kernel: str
    argument: str
    max_abs: float
    max_rel: float
    passed: bool
    note: str = ""
    cols: tuple = ("max abs err", "max rel err")   # what the two numbers are (a header per kind of row)


@dataclass
class Report:
    rows: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    def table(self) -> str:
        """Rows under the header of their own columns: a new header line wherever the columns change
        (layers: errors against finite differences; an optimizer's descent: f - f* and its ratio)."""
        lines, cols, width = [], None, 0
        for r in self.rows:
            if r.cols != cols:
                cols = r.cols
                head = f"{'kernel':<24} {'argument':<16} {cols[0]:>12} {cols[1]:>12}  result"
                width = max(width, len(head))
                lines += ([""] if lines else []) + [head, "-" * len(head)]
            lines.append(f"{r.kernel:<24} {r.argument:<16} {r.max_abs:12.3e} {r.max_rel:12.3e}  "
                         f"{'pass' if r.passed else 'FAIL'}{('  ' + r.note) if r.note else ''}")
        if not lines:
            head = f"{'kernel':<24} {'argument':<16} {'max abs err':>12} {'max rel err':>12}  result"
            lines = [head, "-" * len(head)]
        return "\n".join(lines)

    def __bool__(self):
        return self.passed
