"""Held-out discipline: what tuning may read.

Every choice of a knob (a GRPO setting, the sampling temperature and N of test-time scaling) is
made on the validation split, `data/val.jsonl`; the held-out `eval.jsonl` is read only by the
flow's evaluations of the models it trained, so the numbers in claims.md were not selected on.
The sweeps in bench/ go through `components.evaluate.evaluate_for_tuning`, which takes a data
folder, never an eval file: it reads `validation_set` (checked to share no prompt with the
held-out set), and `refuse_held_out` stops any tuning code that is handed a held-out file itself
(the eval set, or the forgetting probe: a sweep that watches forgetting draws its own probe).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from components.artifacts import DataError, read_records


class HeldOutError(DataError):
    """Tuning code asked for the held-out set, or a validation split that overlaps it."""


def _content(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _prompt_keys(path: Path) -> set[str]:
    return {str(record["prompt"]) for record in read_records(path)}


# What only the flow's evaluations read, and what a sweep reads instead.
HELD_OUT = {
    "eval.jsonl": ("eval set", "the validation split, val.jsonl"),
    "probe.jsonl": ("probe", "a validation probe drawn with another seed"),
}


def refuse_held_out(path: str | Path, data_dir: str | Path) -> None:
    """Raise if `path` is a held-out set of `data_dir`, the eval set or the probe (by name or by content)."""
    path = Path(path)
    for name, (what, instead) in HELD_OUT.items():
        held_out = Path(data_dir) / name
        if path.resolve() == held_out.resolve() or (held_out.is_file() and path.is_file() and _content(path) == _content(held_out)):
            raise HeldOutError(f"{path}: this is the held-out {what}; tuning reads {instead}")


def validation_set(data_dir: str | Path) -> Path:
    """`data_dir/val.jsonl`, checked to exist and to share no prompt with the held-out set."""
    data_dir = Path(data_dir)
    val = data_dir / "val.jsonl"
    if not val.is_file():
        raise HeldOutError(f"{val}: no validation split to tune on (data.n_val, or data.files.val for your own data)")
    refuse_held_out(val, data_dir)
    held_out = data_dir / "eval.jsonl"
    if held_out.is_file():
        shared = _prompt_keys(val) & _prompt_keys(held_out)
        if shared:
            raise HeldOutError(f"{val}: {len(shared)} prompt(s) are also in the held-out {held_out}; e.g. {sorted(shared)[0][:120]}")
    return val
