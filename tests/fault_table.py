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


def write() -> Path | None:
    """Write docs/faults.md from the rows recorded in this session, if any."""
    if not _rows:
        return None
    lines = [
        "# Faults survived",
        "",
        "Written by the fault tests (`tests/e2e/test_faults.py`) on their last run; every row is what",
        "that test asserted. Regenerate with `.venv/bin/python -m pytest tests/e2e/test_faults.py`.",
        "",
        "| fault | what happened | what was lost |",
        "|---|---|---|",
        *(f"| {fault} | {happened} | {lost} |" for fault, happened, lost in sorted(_rows)),
        "",
    ]
    TABLE.write_text("\n".join(lines))
    return TABLE
