"""Held-out discipline: tuning reads the validation split, and is refused the held-out set."""

import pytest

from components import evaluate, tuning
from components.artifacts import write_records


def problems(start: int, n: int) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": f"What is {i}+1?"}], "answer": str(i + 1)} for i in range(start, start + n)]


@pytest.fixture
def data_dir(tmp_path):
    write_records(tmp_path / "eval.jsonl", problems(0, 10))
    write_records(tmp_path / "val.jsonl", problems(100, 10))
    return tmp_path


def test_tuning_reads_the_validation_split(data_dir):
    assert tuning.validation_set(data_dir) == data_dir / "val.jsonl"


def test_the_held_out_set_is_refused_by_name_and_by_content(data_dir, tmp_path):
    with pytest.raises(tuning.HeldOutError, match="held-out eval set"):
        tuning.refuse_held_out(data_dir / "eval.jsonl", data_dir)
    copy = tmp_path / "copy" / "renamed.jsonl"
    copy.parent.mkdir()
    copy.write_bytes((data_dir / "eval.jsonl").read_bytes())
    with pytest.raises(tuning.HeldOutError, match="held-out eval set"):
        tuning.refuse_held_out(copy, data_dir)


def test_the_held_out_probe_is_refused_to_a_sweep(data_dir):
    write_records(data_dir / "probe.jsonl", [{"prompt": "23+15=", "answer": "38"}])
    with pytest.raises(tuning.HeldOutError, match="held-out probe; tuning reads a validation probe"):
        tuning.refuse_held_out(data_dir / "probe.jsonl", data_dir)
    with pytest.raises(tuning.HeldOutError, match="held-out probe"):
        evaluate.evaluate_for_tuning(evaluate.Config(), "no-model", data_dir, data_dir / "out", {"probe": str(data_dir / "probe.jsonl")})


def test_a_validation_split_that_overlaps_the_held_out_set_is_refused(data_dir):
    write_records(data_dir / "val.jsonl", problems(5, 10))
    with pytest.raises(tuning.HeldOutError, match="5 prompt"):
        tuning.validation_set(data_dir)


def test_no_validation_split_says_how_to_get_one(tmp_path):
    with pytest.raises(tuning.HeldOutError, match="n_val"):
        tuning.validation_set(tmp_path)


def test_a_sweep_evaluates_on_validation_problems_only(data_dir, monkeypatch):
    seen = {}
    monkeypatch.setattr(evaluate, "run", lambda cfg, inputs, out: seen.update(inputs))
    evaluate.evaluate_for_tuning(evaluate.Config(), "some/model", data_dir, data_dir / "out")
    assert seen["eval"] == str(data_dir / "val.jsonl")
    with pytest.raises(tuning.HeldOutError):
        evaluate.evaluate_for_tuning(
            evaluate.Config(), "m", data_dir, data_dir / "out", extra_inputs={"probe": str(data_dir / "eval.jsonl")}
        )
