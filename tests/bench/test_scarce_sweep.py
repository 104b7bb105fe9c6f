"""bench/scarce_sweep.py: a cold start from the first N references, its round 2 and its control, on validation only."""

import json
from pathlib import Path

import pytest
import yaml

from components import tuning
from components.artifacts import read_records
from tests.bench import load_script
from tests.conftest import tiny_overrides


def test_the_cold_start_folder_holds_the_first_n_references_and_every_other_split_unchanged(tmp_path, tiny_data):
    data_dir = Path(tiny_data["eval"]).parent
    folder = load_script("scarce_sweep").cold_start_dir(data_dir, 5, data_dir / "pretrain.jsonl", tmp_path / "cold")

    assert read_records(folder / "sft.jsonl") == read_records(data_dir / "sft.jsonl")[:5]
    for name in ("rl.jsonl", "val.jsonl", "eval.jsonl", "pretrain.jsonl"):
        assert (folder / name).read_bytes() == (data_dir / name).read_bytes()
    assert tuning.validation_set(folder) == folder / "val.jsonl"  # the held-out check still sees the eval set
    with pytest.raises(tuning.HeldOutError):
        tuning.refuse_held_out(folder / "eval.jsonl", folder)


def test_fresh_rl_prompts_share_no_question_with_any_split(tiny_data):
    sweep = load_script("scarce_sweep")
    data_dir = Path(tiny_data["eval"]).parent
    fresh = sweep.fresh_rl_prompts({"data": tiny_overrides()["data"]}, data_dir, 30)

    taken = {sweep.question(r) for name in ("sft", "prefs", "rl", "eval", "val") for r in read_records(data_dir / f"{name}.jsonl")}
    assert len(fresh) == 30 and len({sweep.question(r) for r in fresh}) == 30
    assert not {sweep.question(r) for r in fresh} & taken
    assert all(r["answer"] and "solution" in r for r in fresh)  # verifiable, as data/rl.jsonl's


@pytest.mark.slow
def test_a_drills_base_then_each_cold_start_with_its_round_2_and_control(tmp_path, tiny_data, monkeypatch, capsys):
    tiny = tiny_overrides()
    params = tmp_path / "params.yaml"
    sections = ("data", "base", "sft", "sft_round2", "rejection_sampling")
    params.write_text(yaml.safe_dump({k: tiny[k] for k in sections} | {"data": tiny["data"] | {"n_pretrain": 300}}))
    log = tmp_path / "log.jsonl"
    data_dir = str(Path(tiny_data["eval"]).parent)
    argv = ["scarce_sweep", "--drills-base", "--data", data_dir, "--params", str(params), "--rows", "20", "--rl-prompts", "10"]
    argv += ["--out", str(tmp_path / "out")]
    monkeypatch.setattr("sys.argv", [*argv, "--log", str(log)])
    assert load_script("scarce_sweep").main() == 0

    row = json.loads(log.read_text())
    assert row["rows"] == 20 and row["rl_prompts"] == 10 and row["drills_base"] is True
    for key in ("sft_val_pass@1", "control_val_pass@1", "round2_val_pass@1"):
        assert 0 <= row[key] <= 1
    assert row["rejection_sampling"]["kept"] >= 0
    drills = read_records(tmp_path / "out" / "pretrain_drills.jsonl")
    assert len(drills) == 300 and not any(text["text"].startswith("Q:") for text in drills)  # no worked problem
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == row
