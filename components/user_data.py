"""Your own data as you have it: a column mapping from common dataset shapes to the recipe's formats.

`data.files.<kind>` is a path (a file already in TRL's formats: `messages`; `prompt`/`answer`;
`prompt`/`chosen`/`rejected`) or a mapping that says how to read yours:

    files:
      sft:  {path: gsm8k/train.jsonl, format: gsm8k}                  # question / answer "... #### 42"
      rl:   {path: math/train.parquet, format: problem_solution}      # problem / solution with \\boxed{}
      eval: {path: my_eval/, format: question_answer, question: q, answer: a}   # an HF `datasets` folder
      prefs: my/prefs.jsonl

Formats: `trl` (the default), `messages` (a column of chat turns), `question_answer` (a question
and its short final answer), `problem_solution` (a problem and a worked solution whose final
answer is in `\\boxed{}`), `gsm8k` (a question and an answer ending in `#### <final>`). The column
names default to those words and can be renamed (`question: q`). `system_prompt`, when set, is
put before every prompt. Each row that does not fit is an error naming the file, the row and
the column, before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field

from components.answers import THINK_CLOSE, THINK_OPEN, extract_answer
from components.artifacts import DataError, read_records
from components.config import StrictModel

Format = Literal["trl", "messages", "question_answer", "problem_solution", "gsm8k"]
GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


class FileSpec(StrictModel):
    """One of your files and how to read it."""

    path: str = Field(min_length=1, description="a JSONL or parquet file, or a Hugging Face `datasets` folder (save_to_disk)")
    format: Format = Field("trl", description="the shape of its rows")
    question: str = Field("question", description="question_answer, gsm8k: the question's column")
    answer: str = Field("answer", description="question_answer: the final answer's column; gsm8k: the worked answer's")
    problem: str = Field("problem", description="problem_solution: the problem's column")
    solution: str = Field("solution", description="problem_solution: the worked solution's column (with \\boxed{})")
    messages: str = Field("messages", description="messages: the column of chat turns")


def read_rows(path: str) -> list[dict]:
    """Rows of a JSONL/parquet file, or of a Hugging Face `datasets` folder."""
    folder = Path(path)
    if folder.is_dir():
        if not (folder / "dataset_info.json").is_file() and not (folder / "state.json").is_file():
            raise DataError(f"{path}: a folder, but not a Hugging Face dataset saved with save_to_disk (no dataset_info.json)")
        from datasets import load_from_disk

        return [dict(row) for row in load_from_disk(str(folder))]
    return read_records(path)


def load(kind: str, spec: str | FileSpec, system_prompt: str | None = None) -> list[dict]:
    """The rows of `spec` in the recipe's format for `kind` (sft, prefs, rl, eval, probe, pretrain)."""
    spec = FileSpec(path=spec) if isinstance(spec, str) else spec
    rows = read_rows(spec.path)
    if not rows:
        raise DataError(f"{spec.path}: the {kind} file is empty")
    out = [_convert(kind, spec, row, i) for i, row in enumerate(rows, start=1)]
    return [_with_system_prompt(kind, record, system_prompt) for record in out] if system_prompt else out


def _column(spec: FileSpec, row: dict, i: int, field: str) -> str:
    column = getattr(spec, field)
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        present = ", ".join(sorted(row)) or "none"
        raise DataError(
            f"{spec.path}: row {i}: column {column!r} is missing or empty (format {spec.format}; its columns: {present}); "
            f"map yours with data.files.<kind>.{field}"
        )
    return str(value)


def _convert(kind: str, spec: FileSpec, row: dict, i: int) -> dict:
    if spec.format == "trl":
        return _trl(kind, row)
    if spec.format == "messages":
        turns = row.get(spec.messages)
        if not isinstance(turns, list) or not turns:
            raise DataError(f"{spec.path}: row {i}: column {spec.messages!r} is not a list of chat turns (format messages)")
        return _verifiable_or_chat(kind, [dict(t) for t in turns[:-1]], str(turns[-1].get("content", "")), None, spec, i)
    if spec.format == "question_answer":
        question, answer = _column(spec, row, i, "question"), _column(spec, row, i, "answer")
        return _verifiable_or_chat(kind, [{"role": "user", "content": question}], None, answer, spec, i)
    if spec.format == "problem_solution":
        problem, solution = _column(spec, row, i, "problem"), _column(spec, row, i, "solution")
        answer = extract_answer(solution)
        if answer is None:
            raise DataError(f"{spec.path}: row {i}: column {spec.solution!r} has no \\boxed{{}} final answer (format problem_solution)")
        return _verifiable_or_chat(kind, [{"role": "user", "content": problem}], solution, answer, spec, i)
    question, worked = _column(spec, row, i, "question"), _column(spec, row, i, "answer")  # gsm8k
    match = GSM8K_FINAL.search(worked)
    if match is None:
        raise DataError(f"{spec.path}: row {i}: column {spec.answer!r} does not end in '#### <answer>' (format gsm8k)")
    final = match.group(1).replace(",", "")
    reasoning = worked[: match.start()].strip()
    solution = f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\nThe answer is \\boxed{{{final}}}."
    return _verifiable_or_chat(kind, [{"role": "user", "content": question}], solution, final, spec, i)


def _verifiable_or_chat(kind: str, prompt: list[dict], solution: str | None, answer: str | None, spec: FileSpec, i: int) -> dict:
    if kind == "sft":
        if solution is None:
            raise DataError(f"{spec.path}: row {i}: format {spec.format} has no worked solution to fine-tune on (sft needs one)")
        return {"messages": [*prompt, {"role": "assistant", "content": solution}]}
    if kind == "probe":  # a bare completion prompt, as a base model sees text (a `trl` file may ask in chat: a messages prompt)
        if answer is None:
            raise DataError(f"{spec.path}: row {i}: no final answer for the probe (format {spec.format})")
        return {"prompt": prompt[-1]["content"], "answer": answer}
    if kind in ("rl", "eval", "val"):
        if answer is None:
            answer = extract_answer(solution or "")
        if answer is None:
            raise DataError(f"{spec.path}: row {i}: no verifiable final answer for {kind} (format {spec.format})")
        return {"prompt": prompt, "answer": answer}
    raise DataError(f"{spec.path}: format {spec.format} cannot make {kind} data; give {kind} in TRL's format (format trl)")


def _as_messages(value, role: str):
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def _trl(kind: str, row: dict) -> dict:
    """TRL's standard formats; plain-string prompts and completions become the conversational form."""
    record = dict(row)
    if kind in ("rl", "eval", "val", "prefs") and "prompt" in record:
        record["prompt"] = _as_messages(record["prompt"], "user")
    if kind == "prefs":
        for key in ("chosen", "rejected"):
            if key in record:
                record[key] = _as_messages(record[key], "assistant")
    if "answer" in record and not isinstance(record["answer"], str):
        record["answer"] = str(record["answer"])
    return record


def _with_system_prompt(kind: str, record: dict, system_prompt: str) -> dict:
    system = {"role": "system", "content": system_prompt}
    for key in ("messages", "prompt"):
        turns = record.get(key)
        if isinstance(turns, list) and turns and turns[0].get("role") != "system" and kind != "probe":
            record[key] = [system, *turns]
    return record
