"""The validate stage: good data passes; each kind of corruption fails naming check, file and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from components import data
from components.config import ParamsError
from components.validate import Config, main, run

SMALL = {"n_pretrain": 50, "n_sft": 60, "n_prefs": 30, "n_rl": 30, "n_eval": 20, "n_probe": 20}


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory) -> Path:
    """A small generated data folder; tests copy files out of it and never change it."""
    out = tmp_path_factory.mktemp("data")
    data.run(data.Config(out_dir=str(out), **SMALL))
    return out


@pytest.fixture(scope="module")
def good_result(good_dir, tmp_path_factory):
    report = tmp_path_factory.mktemp("report")
    inputs = {path.stem: str(path) for path in sorted(good_dir.glob("*.jsonl"))}
    return run(Config(report_dir=str(report)), inputs)


def lines_of(good_dir: Path, kind: str) -> list[str]:
    return (good_dir / f"{kind}.jsonl").read_text().splitlines()


def edit(line: str, change) -> str:
    record = json.loads(line)
    change(record)
    return json.dumps(record)


def test_good_data_passes_run(good_result):
    assert good_result.stage == "validate"
    assert good_result.info["failures"] == []
    assert good_result.metrics["passed"] == 1.0 and good_result.metrics["n_failed"] == 0
    assert good_result.metrics["n_checks"] > 40
    assert Path(good_result.outputs["report"]).name == "index.html"
    assert Path(good_result.outputs["report"]).is_file()
    summary = json.loads(Path(good_result.outputs["summary"]).read_text())
    assert summary["passed"] == 1.0 and set(summary["datasets"]) == set(data.DATASET_KINDS)
    assert all(check["success"] for ds in summary["datasets"].values() for check in ds["checks"])


def test_good_folder_passes_cli_and_leaves_files_untouched(good_dir, tmp_path, capsys):
    before = {path.name: path.read_bytes() for path in good_dir.iterdir()}
    assert main([str(good_dir), "--report-dir", str(tmp_path / "report")]) == 0
    assert capsys.readouterr().out.startswith("PASS: 7 dataset(s)")
    assert {path.name: path.read_bytes() for path in good_dir.iterdir()} == before
    assert (tmp_path / "report" / "index.html").is_file()


def test_good_single_file_passes_cli(good_dir, tmp_path, capsys):
    assert main([str(good_dir / "prefs.jsonl"), "--report-dir", str(tmp_path)]) == 0
    assert "PASS: 1 dataset(s)" in capsys.readouterr().out


def test_parquet_file_with_an_explicit_kind(good_dir, tmp_path, capsys):
    import pandas as pd

    records = [json.loads(line) for line in lines_of(good_dir, "prefs")]
    target = tmp_path / "pairs.parquet"
    pd.DataFrame(records).to_parquet(target)
    assert main([str(target), "--kind", "prefs", "--report-dir", str(tmp_path / "r")]) == 0, capsys.readouterr().out


# Each case: (kind, function(lines, eval_lines) -> lines, index of the bad line, check, field).
def _set_line(index, value):
    return lambda lines, _: lines[:index] + [value] + lines[index + 1 :]


def _edit_line(index, change):
    return lambda lines, _: lines[:index] + [edit(lines[index], change)] + lines[index + 1 :]


def _swap_roles(record):
    record["messages"] = record["messages"][::-1]


def _copy_eval_prompt(lines, eval_lines):
    question = json.loads(eval_lines[0])["prompt"][0]["content"]
    return _edit_line(2, lambda r: r["messages"][0].update(content=question))(lines, eval_lines)


def _duplicate_prompt(lines, _):
    prompt = json.loads(lines[0])["prompt"]
    return _edit_line(4, lambda r: r.update(prompt=prompt))(lines, _)


def _same_pair(record):
    record["rejected"] = record["chosen"]


CASES = {
    "missing_field": ("eval", _edit_line(2, lambda r: r.pop("answer")), 2, "schema", "answer"),
    "wrong_role_order": ("sft", _edit_line(3, _swap_roles), 3, "roles", "messages"),
    "empty_assistant_text": (
        "sft",
        _edit_line(5, lambda r: r["messages"][1].update(content="  ")),
        5,
        "text length",
        "messages",
    ),
    "text_over_length_bound": (
        "pretrain",
        _edit_line(1, lambda r: r.update(text="1+1=2 " * 1000)),
        1,
        "text length",
        "text",
    ),
    "duplicate_prompts": ("rl", _duplicate_prompt, 0, "duplicate prompts", "prompt"),
    "chosen_equals_rejected": ("prefs", _edit_line(6, _same_pair), 6, "chosen differs from rejected", "chosen"),
    "unparseable_eval_answer": ("eval", _edit_line(4, lambda r: r.update(answer="abc")), 4, "answer format", "answer"),
    "sft_solution_without_boxed_answer": (
        "sft",
        _edit_line(7, lambda r: r["messages"][1].update(content="<think>\n1+1=2\n</think>\nIt is 2.")),
        7,
        "boxed answer",
        "messages",
    ),
    "eval_prompt_copied_into_sft": ("sft", _copy_eval_prompt, 2, "eval contamination", "messages"),
    "line_not_json": ("probe", _set_line(3, '{"prompt": "1+2=", "answer": '), 3, "parse", "parse_error"),
    "line_not_an_object": ("rl", _set_line(2, "[1, 2]"), 2, "parse", "parse_error"),
    "answer_wrong_type": ("probe", _edit_line(8, lambda r: r.update(answer=42)), 8, "schema", "answer"),
    "prompt_wrong_type": ("rl", _edit_line(9, lambda r: r.update(prompt="just a string")), 9, "schema", "prompt"),
    "message_content_wrong_type": (
        "prefs",
        _edit_line(1, lambda r: r["chosen"][0].update(content=None)),
        1,
        "schema",
        "chosen",
    ),
    "empty_file": ("eval", lambda lines, _: [], None, "rows", "whole file"),
    "chat_probe_with_an_assistant_turn": (
        "probe",
        _edit_line(2, lambda r: r.update(prompt=[{"role": "assistant", "content": "Paris"}])),
        2,
        "roles",
        "prompt",
    ),
    "blank_probe_answer": ("probe", _edit_line(5, lambda r: r.update(answer="  ")), 5, "answer format", "answer"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_corruption_is_rejected_with_a_precise_message(case, good_dir, tmp_path, capsys):
    kind, corrupt, bad_index, check, field = CASES[case]
    folder = tmp_path / "data"
    folder.mkdir()
    if check == "eval contamination":  # contamination is checked across files in a folder
        shutil.copy(good_dir / "eval.jsonl", folder / "eval.jsonl")
    lines = corrupt(lines_of(good_dir, kind), lines_of(good_dir, "eval"))
    (folder / f"{kind}.jsonl").write_text("".join(line + "\n" for line in lines))

    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert main([str(folder), "--report-dir", str(tmp_path / "report")]) == 1
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before  # never edits its inputs
    out = capsys.readouterr().out
    failures = [line for line in out.splitlines() if line.startswith("FAIL ")]
    matching = [f for f in failures if f"FAIL {kind}.jsonl: [{check}]" in f and field in f]
    assert matching, out
    if bad_index is not None:
        assert f"line {bad_index + 1}" in matching[0], matching[0]
    assert out.splitlines()[-1].startswith("FAIL: ")


def test_run_reports_failures_without_raising(good_dir, tmp_path):
    broken = tmp_path / "eval.jsonl"
    broken.write_text(lines_of(good_dir, "eval")[0] + "\nnot json at all\n")
    missing = tmp_path / "sft.jsonl"  # a path that does not exist is a data failure for run()
    result = run(Config(report_dir=str(tmp_path / "report")), {"eval": str(broken), "sft": str(missing)})
    assert result.metrics["passed"] == 0.0 and result.metrics["n_failed"] == 2
    text = "\n".join(result.info["failures"])
    assert "sft.jsonl: [read]" in text
    assert "eval.jsonl: [parse]" in text and "line 2" in text and "not json at all" in text


def test_unknown_kind_in_inputs_is_a_usage_error(tmp_path):
    with pytest.raises(ParamsError, match="unknown dataset kind"):
        run(Config(report_dir=str(tmp_path)), {"chat": str(tmp_path / "x.jsonl")})


def test_config_rejects_unknown_keys_and_bad_bounds():
    with pytest.raises(ValueError, match="max_char"):
        Config.model_validate({"max_char": 10})
    with pytest.raises(ValueError, match="min_chars"):
        Config(min_chars=10, max_chars=5)


def test_usage_error_for_a_missing_path(tmp_path, capsys):
    assert main([str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_usage_error_when_the_kind_cannot_be_inferred(good_dir, tmp_path, capsys):
    target = tmp_path / "my_data.jsonl"
    shutil.copy(good_dir / "eval.jsonl", target)
    assert main([str(target)]) == 2
    err = capsys.readouterr().err
    assert "my_data.jsonl" in err and "--kind" in err


def test_usage_error_for_an_unknown_kind_and_an_empty_folder(tmp_path, capsys):
    assert main([str(tmp_path), "--kind", "chat"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "no dataset files" in capsys.readouterr().err


def test_max_duplicate_fraction_tolerates_a_few_repeats(good_dir, tmp_path):
    target = tmp_path / "rl.jsonl"
    target.write_text("".join(line + "\n" for line in _duplicate_prompt(lines_of(good_dir, "rl"), None)))
    strict = run(Config(report_dir=str(tmp_path / "a")), {"rl": str(target)})
    assert strict.metrics["n_failed"] == 1 and "[duplicate prompts]" in strict.info["failures"][0]
    # Both copies count as duplicated: 2 of 30 rows.
    lenient = run(Config(report_dir=str(tmp_path / "b"), max_duplicate_fraction=0.1), {"rl": str(target)})
    assert lenient.metrics["passed"] == 1.0


FRACTION_SOLUTION = "<think>\n1/4+1/4=1/2\n</think>\nThe answer is \\boxed{\\frac{1}{2}}."


def _fraction_rows(good_dir: Path) -> dict[str, list[str]]:
    """sft and rl files whose first row answers with a nested LaTeX fraction (rl: reference `1/2`)."""
    sft = _edit_line(0, lambda r: r["messages"][-1].update(content=FRACTION_SOLUTION))(lines_of(good_dir, "sft"), [])
    rl = _edit_line(0, lambda r: r.update(answer="1/2", solution=FRACTION_SOLUTION))(lines_of(good_dir, "rl"), [])
    return {"sft": sft, "rl": rl}


def test_a_nested_latex_boxed_answer_passes_validation(good_dir, tmp_path):
    inputs = {}
    for kind, lines in _fraction_rows(good_dir).items():
        path = tmp_path / f"{kind}.jsonl"
        path.write_text("".join(line + "\n" for line in lines))
        inputs[kind] = str(path)
    result = run(Config(report_dir=str(tmp_path / "report")), inputs)
    assert result.info["failures"] == []


def test_the_answer_column_stays_plain_numbers(good_dir, tmp_path, capsys):
    # The dataset contract: a reference answer is an integer, decimal or a/b fraction, never LaTeX.
    rl = _edit_line(0, lambda r: r.update(answer="\\frac{1}{2}", solution=FRACTION_SOLUTION))(lines_of(good_dir, "rl"), [])
    (tmp_path / "rl.jsonl").write_text("".join(line + "\n" for line in rl))
    assert main([str(tmp_path / "rl.jsonl"), "--report-dir", str(tmp_path / "report")]) == 1
    assert "FAIL rl.jsonl: [answer format]" in capsys.readouterr().out


def test_a_general_knowledge_probe_in_chat_passes_validation(tmp_path):
    # Chat probes (a user turn; a word for an answer) are a probe set as valid as bare arithmetic.
    out = tmp_path / "data"
    data.run(data.Config(out_dir=str(out), **{**SMALL, "probe": "general_knowledge"}))
    result = run(Config(report_dir=str(tmp_path / "report")), {"probe": str(out / "probe.jsonl"), "eval": str(out / "eval.jsonl")})
    assert result.info["failures"] == []
