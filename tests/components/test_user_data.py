"""Your own data as people have it: column mappings, HF datasets folders, a system prompt, clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from components import data, validate
from components.artifacts import DataError, read_records
from components.user_data import FileSpec, load
from tests.conftest import REPO


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _problems(n: int, offset: int = 0) -> list[tuple[str, int]]:
    return [(f"Ana has {i + offset} pens and buys {i + 3} more. How many pens does she have?", 2 * i + offset + 3) for i in range(n)]


def test_gsm8k_rows_become_sft_conversations_and_verifiable_prompts(tmp_path):
    rows = [{"question": "Tom has 1,000 coins and loses 1. How many are left?", "answer": "1000 - 1 = 999\n#### 999"}]
    path = _jsonl(tmp_path / "gsm.jsonl", rows)
    sft = load("sft", FileSpec(path=str(path), format="gsm8k"))
    assert (
        sft[0]["messages"][-1]["content"].endswith("The answer is \\boxed{999}.") and "1000 - 1 = 999" in sft[0]["messages"][-1]["content"]
    )
    assert load("rl", FileSpec(path=str(path), format="gsm8k"))[0] == {
        "prompt": [{"role": "user", "content": rows[0]["question"]}],
        "answer": "999",
    }


def test_problem_solution_takes_the_boxed_answer_even_nested(tmp_path):
    import pandas as pd

    path = tmp_path / "math.parquet"
    pd.DataFrame([{"problem": "Halve 1.", "solution": "One half: $\\boxed{\\frac{1}{2}}$"}]).to_parquet(path)
    assert load("eval", FileSpec(path=str(path), format="problem_solution"))[0]["answer"] == "\\frac{1}{2}"


def test_a_datasets_folder_with_renamed_columns_and_a_system_prompt(tmp_path):
    from datasets import Dataset

    Dataset.from_list([{"q": "What is 2+3?", "a": 5}]).save_to_disk(str(tmp_path / "eval"))
    rows = load("eval", FileSpec(path=str(tmp_path / "eval"), format="question_answer", question="q", answer="a"), "Be brief.")
    assert rows == [{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"}], "answer": "5"}]


@pytest.mark.parametrize(
    ("rows", "spec", "kind", "message"),
    [
        (
            [{"question": "q1", "answer": "1"}, {"q": "q2"}],
            {"format": "question_answer"},
            "eval",
            r"x.jsonl: row 2: column 'question' is missing .*data.files.<kind>.question",
        ),
        (
            [{"question": "q", "answer": "no final answer"}],
            {"format": "gsm8k"},
            "rl",
            r"row 1: column 'answer' does not end in '#### <answer>'",
        ),
        (
            [{"problem": "p", "solution": "no box"}],
            {"format": "problem_solution"},
            "rl",
            r"row 1: column 'solution' has no \\boxed\{\} final answer",
        ),
        ([{"question": "q", "answer": "5"}], {"format": "question_answer"}, "sft", "has no worked solution to fine-tune on"),
        ([{"messages": "not turns"}], {"format": "messages"}, "sft", "column 'messages' is not a list of chat turns"),
    ],
)
def test_a_row_that_does_not_fit_its_mapping_names_file_row_and_column(tmp_path, rows, spec, kind, message):
    path = _jsonl(tmp_path / "x.jsonl", rows)
    with pytest.raises(DataError, match=message):
        load(kind, FileSpec(path=str(path), **spec))


def _readme_example() -> dict:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- own-data example[^>]*-->\n```yaml\n(.*?)```", text, re.DOTALL)
    assert block, "README's own-data example is gone"
    return yaml.safe_load(block.group(1))


def test_the_readmes_own_data_example_runs_as_written_and_passes_validation(tmp_path, monkeypatch):
    import pandas as pd
    from datasets import Dataset

    monkeypatch.chdir(tmp_path)
    train, rl, held_out = _problems(12), _problems(8, offset=100), _problems(6, offset=300)
    _jsonl(Path("my/train.jsonl"), [{"question": q, "answer": f"{a - 3} + 3 = {a}\n#### {a}"} for q, a in train])
    prefs = [
        {
            "prompt": q,
            "chosen": f"<think>\nsum\n</think>\nThe answer is \\boxed{{{a}}}.",
            "rejected": f"<think>\nsum\n</think>\nThe answer is \\boxed{{{a + 1}}}.",
        }
        for q, a in _problems(6, offset=200)
    ]
    _jsonl(Path("my/prefs.jsonl"), prefs)
    pd.DataFrame([{"problem": q, "solution": f"<think>\nadd\n</think>\nThe answer is \\boxed{{{a}}}."} for q, a in rl]).to_parquet(
        "my/rl.parquet"
    )
    Dataset.from_list([{"q": q, "a": a} for q, a in held_out]).save_to_disk("my/eval")

    cfg = data.Config(**{**_readme_example()["data"], "out_dir": str(tmp_path / "data")})
    result = data.run(cfg)
    assert set(result.outputs) >= {"sft", "prefs", "rl", "eval"} and "probe" not in result.outputs
    first = read_records(result.outputs["sft"])[0]["messages"]
    assert first[0] == {"role": "system", "content": "Think step by step, then give the final answer in \\boxed{}."}
    assert read_records(result.outputs["eval"])[0]["answer"] == str(held_out[0][1])
    checked = validate.run(validate.Config(), {k: v for k, v in result.outputs.items() if k != "data_dir"}, str(tmp_path / "report"))
    assert checked.metrics["passed"], checked.info.get("failures")
