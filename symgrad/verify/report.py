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


@dataclass
class Report:
    rows: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    def table(self) -> str:
        head = f"{'kernel':<24} {'argument':<16} {'max abs err':>12} {'max rel err':>12}  result"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.kernel:<24} {r.argument:<16} {r.max_abs:12.3e} {r.max_rel:12.3e}  "
                         f"{'pass' if r.passed else 'FAIL'}{('  ' + r.note) if r.note else ''}")
        return "\n".join(lines)

    def __bool__(self):
        return self.passed
