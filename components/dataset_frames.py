"""Dataset files as DataFrames: reading their rows and flattening each record into derived columns.

Each record of a dataset kind becomes one row of derived columns (field shapes, role
sequences, prompt/response text, whether the boxed answer extracts, ...), so that every check
of the validate stage is a real Great Expectations expectation on a column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.answers import extract_answer
from components.artifacts import DataError, read_records

SUFFIXES = (".jsonl", ".parquet")
SHAPE_NAMES = {"str": "a string", "messages": "a list of {role, content} turns"}
MISSING = object()

# Field -> required shape. "messages" means a non-empty list of {"role": str, "content": str};
# "str|messages" either (a probe is a bare completion prompt, or a question asked in chat).
SCHEMA: dict[str, dict[str, str]] = {
    "pretrain": {"text": "str"},
    "sft": {"messages": "messages"},
    "prefs": {"prompt": "messages", "chosen": "messages", "rejected": "messages"},
    "rl": {"prompt": "messages", "answer": "str", "solution": "str?"},
    "eval": {"prompt": "messages", "answer": "str", "solution": "str?"},
    "val": {"prompt": "messages", "answer": "str", "solution": "str?"},
    "probe": {"prompt": "str|messages", "answer": "str"},
}
# Non-capturing groups: GX runs these through pandas str.contains, which warns on capture groups.
USER_TURNS = r"^(?:system,)?user(?:,assistant,user)*$"
# Derived column -> (source field, regex its role sequence must match).
ROLE_COLUMNS = {
    "sft": {"roles": ("messages", r"^(?:system,)?user,assistant(?:,user,assistant)*$")},
    "prefs": {
        "prompt_roles": ("prompt", USER_TURNS),
        "chosen_roles": ("chosen", "^assistant$"),
        "rejected_roles": ("rejected", "^assistant$"),
    },
    "rl": {"prompt_roles": ("prompt", USER_TURNS)},
    "eval": {"prompt_roles": ("prompt", USER_TURNS)},
    "val": {"prompt_roles": ("prompt", USER_TURNS)},
    "probe": {"prompt_roles": ("prompt", USER_TURNS)},  # chat probes only: a bare prompt has no roles (null, skipped)
}
# Derived text column -> source field; each gets the non-empty / length-bound check.
TEXT_COLUMNS = {
    "pretrain": {"text": "text"},
    "sft": {"prompt_text": "messages", "response_text": "messages"},
    "prefs": {"prompt_text": "prompt", "chosen_text": "chosen", "rejected_text": "rejected"},
    "rl": {"prompt_text": "prompt", "solution": "solution"},
    "eval": {"prompt_text": "prompt", "solution": "solution"},
    "val": {"prompt_text": "prompt", "solution": "solution"},
    "probe": {"prompt_text": "prompt"},
}
# Derived bool column -> source field whose text must carry a boxed answer extract_answer finds.
BOXED_COLUMNS = {
    "sft": {"answer_parseable": "messages"},
    "prefs": {"answer_parseable": "chosen"},
    "rl": {"solution_parseable": "solution"},
    "eval": {"solution_parseable": "solution"},
    "val": {"solution_parseable": "solution"},
}


def read_rows(path: Path) -> list[tuple[int, Any, str | None]]:
    """(line number, record, parse error) per non-blank line: a bad line is reported, not fatal."""
    if path.suffix == ".parquet":
        import pandas as pd

        records = pd.read_parquet(path).to_dict(orient="records")
        return [(i, _plain(record), None) for i, record in enumerate(records, start=1)]
    if path.suffix not in SUFFIXES:
        raise ValueError(f"unsupported format {path.suffix!r} (use .jsonl or .parquet)")
    rows = []
    with path.open("rb") as handle:  # bytes, so bad UTF-8 is reported per line, not for the file
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                reason = f"not valid JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else "not valid UTF-8"
                rows.append((lineno, line.decode("utf-8", "replace").strip(), reason))
                continue
            error = None if isinstance(record, dict) else f"not a JSON object (a {type(record).__name__})"
            rows.append((lineno, record, error))
    return rows


def read_dataset(path: str | Path, kind: str) -> list[dict]:
    """A `kind` dataset's records for a stage to train or evaluate on: at least one, each with the
    schema's fields in their shapes; else a DataError naming the file, the row and the field.
    (The validate stage checks far more; this is what a stage run on its own needs.)"""
    records = read_records(path)
    if not records:
        raise DataError(f"{path}: no rows (a {kind} dataset needs at least one)")
    for row, record in enumerate(records, start=1):
        for field, wanted in SCHEMA[kind].items():
            got = shape(record.get(field, MISSING))
            if wanted.endswith("?") and got in ("missing", "null"):
                continue
            if got not in wanted.rstrip("?").split("|"):
                described = " or ".join(SHAPE_NAMES[want] for want in wanted.rstrip("?").split("|"))
                raise DataError(f"{path}: row {row}: field {field!r} must be {described}, got {got}")
    return records


def _plain(value: Any) -> Any:
    """Parquet hands back numpy arrays and scalars; turn them into the types JSONL gives."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if hasattr(value, "tolist"):
        value = value.tolist()
    return [_plain(item) for item in value] if isinstance(value, list) else value


def shape(value: Any) -> str:
    """A field's shape for the schema check: 'str', 'messages', or what it is instead."""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and value:
        for i, turn in enumerate(value, start=1):
            if not (isinstance(turn, dict) and isinstance(turn.get("role"), str) and isinstance(turn.get("content"), str)):
                return f"list whose turn {i} lacks a string 'role' and 'content'"
        return "messages"
    return "empty list" if value == [] else type(value).__name__


def _joined(turns: list[dict], role: str | None = None) -> str:
    return "\n".join(t["content"].strip() for t in turns if role is None or t["role"] == role).strip()


def flatten(kind: str, record: dict) -> dict[str, Any]:
    """Derived columns of one record; a column stays unset (null) when its field is malformed,
    so GX map expectations skip it and only the schema check reports the row."""
    row = {f"{field}_type": shape(record.get(field, MISSING)) for field in SCHEMA[kind]}
    valid = {field: record[field] for field, want in SCHEMA[kind].items() if row[f"{field}_type"] in want.rstrip("?").split("|")}
    for field, turns in valid.items():
        if isinstance(turns, list):
            row[f"{field}_roles"] = ",".join(t["role"] for t in turns)
    if kind == "pretrain" and "text" in valid:
        row["text"] = valid["text"].strip()
    if kind == "sft" and "messages" in valid:
        turns = valid["messages"]
        row["roles"] = row.pop("messages_roles")
        row["prompt_text"] = _joined(turns[:-1], "user")
        row["response_text"] = turns[-1]["content"].strip()
        row["answer_parseable"] = extract_answer(row["response_text"]) is not None
    if kind == "prefs":
        for side in ("chosen", "rejected"):
            if side in valid:
                row[f"{side}_text"] = _joined(valid[side])
        if "chosen" in valid:
            row["answer_parseable"] = extract_answer(row["chosen_text"]) is not None
    if kind in ("prefs", "rl", "eval", "val", "probe") and "prompt" in valid:
        prompt = valid["prompt"]
        row["prompt_text"] = prompt.strip() if isinstance(prompt, str) else _joined(prompt, "user")
    if "answer" in valid:
        row["answer"] = valid["answer"]
    if "solution" in valid:
        row["solution"] = valid["solution"].strip()
        row["solution_parseable"] = extract_answer(row["solution"]) is not None
    if "prompt_text" in row:  # duplicates and contamination compare case- and spacing-blind
        row["prompt_key"] = " ".join(row["prompt_text"].lower().split())
    return row


def to_frame(kind: str, rows: list[tuple[int, Any, str | None]]):
    import pandas as pd

    flat = [{"line": line, "parse_error": error, **({} if error else flatten(kind, record))} for line, record, error in rows]
    # Fixed columns, so an empty or wholly broken file still gets every expectation.
    columns = [
        "line",
        "parse_error",
        *(f"{f}_type" for f in SCHEMA[kind]),
        *ROLE_COLUMNS.get(kind, {}),
        *TEXT_COLUMNS[kind],
        *BOXED_COLUMNS.get(kind, {}),
    ]
    columns += ["answer"] * ("answer" in SCHEMA[kind]) + ["prompt_key"] * (kind != "pretrain")
    return pd.DataFrame.from_records(flat, columns=columns)
