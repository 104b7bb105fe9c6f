"""Validation results as prose: Great Expectations results turned into the validate stage's messages.

`describe` writes one failed expectation as a sentence (check, file, column and field, an
example line); `_check_summary` is one expectation's entry in summary.json.
"""

from __future__ import annotations

import json
from typing import Any


def describe(name: str, result, records: dict[int, Any], cfg, unit: str) -> str:
    """One failed expectation as a sentence: check, file, column/field, and an example row.

    `cfg` is the validate stage's ValidationConfig (its `example_chars` cuts the example).
    """
    config, res = result.expectation_config, result.result or {}
    meta = config.meta or {}
    column = config.kwargs.get("column") or ",".join(config.kwargs.get("column_list") or [])
    where = f"column '{column}' (field '{meta.get('field', column)}')" if column else "the whole file"
    head = f"{name}: [{meta.get('check', '?')}] {where}: {config.type}"
    error = _exception(result.exception_info)
    if error:
        return f"{head} could not run: {error}"
    if "unexpected_count" not in res:
        return f"{head} failed (observed {res.get('observed_value')!r})"
    text = f"{head} failed for {res['unexpected_count']} of {res.get('element_count')} rows"
    examples, values = res.get("partial_unexpected_index_list") or [], res.get("partial_unexpected_list") or []
    if examples:
        lines = [int(example["line"]) for example in examples]
        more = ", ..." if res["unexpected_count"] > len(lines) else ""
        text += f" ({unit}s {', '.join(map(str, lines))}{more})" if len(lines) > 1 else ""
        line = lines[0]
        record = records.get(line)
        shown = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False, sort_keys=True)
        cut = shown if len(shown) <= cfg.example_chars else shown[: cfg.example_chars] + "..."
        value = f" ({column}={_short(values[0])})" if values and not isinstance(values[0], dict) else ""
        text += f"; e.g. {unit} {line}{value}: {cut}"
    return text


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def _exception(info: Any) -> str | None:
    """GX nests exception info per metric; return the first raised message, if any."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return (info.get("exception_message") or "error") if info["raised_exception"] else None
    return next((m for m in map(_exception, info.values()) if m), None)


def _check_summary(result) -> dict[str, Any]:
    config, res = result.expectation_config, result.result or {}
    return {
        "expectation": config.type,
        "check": (config.meta or {}).get("check"),
        "success": result.success,
        "column": config.kwargs.get("column") or config.kwargs.get("column_list"),
        "unexpected_count": res.get("unexpected_count"),
        "observed_value": res.get("observed_value"),
    }
