"""The README's fault table, written by the fault tests themselves (docs/faults.md).

Each fault test records one row of what it did and measured; at the end of a session that ran
any, tests/conftest.py writes the table. What a row says is what the test asserted.
"""

from __future__ import annotations

from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "docs" / "faults.md"
_rows: list[tuple[str, str, str]] = []


def record(fault: str, happened: str, lost: str) -> None:
    _rows.append((fault, happened, lost))


def _existing() -> dict[str, tuple[str, str, str]]:
    """The table's rows as last written, by fault: a run of some fault tests keeps the others' rows."""
    if not TABLE.is_file():
        return {}
    rows = [line.split(" | ") for line in TABLE.read_text().splitlines() if line.startswith("| ") and not line.startswith("| fault |")]
    return {cells[0][2:]: (cells[0][2:], cells[1], cells[2].removesuffix(" |")) for cells in rows if len(cells) == 3}


def write() -> Path | None:
    """Write docs/faults.md: the rows recorded in this session over those of the last run."""
    if not _rows:
        return None
    merged = _existing() | {row[0]: row for row in _rows}
    lines = [
        "# Faults survived",
        "",
        "Written by the fault tests (`tests/e2e/test_faults.py`) on their last run; every row is what",
        "that test asserted. Regenerate with `.venv/bin/python -m pytest tests/e2e/test_faults.py`.",
        "",
        "| fault | what happened | what was lost |",
        "|---|---|---|",
        *(f"| {fault} | {happened} | {lost} |" for fault, happened, lost in sorted(merged.values())),
        "",
    ]
    TABLE.write_text("\n".join(lines))
    return TABLE
