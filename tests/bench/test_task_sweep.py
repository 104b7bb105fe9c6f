"""bench/task_sweep.py: each run draws its own task, pretrains its own base on it and scores its SFTs on validation only."""

import json

from components.artifacts import read_records
from components.data import solution_steps
from tests.bench import load_script
from tests.conftest import tiny_overrides


def test_a_run_trains_on_its_own_harder_task_and_scores_on_validation(tmp_path):
    bench = load_script("task_sweep")
    tiny = tiny_overrides()
    params = {"data": tiny["data"], "base": tiny["base"], "sft": tiny["sft"] | {"use_cpu": True}}
    run = {"min_steps": 5, "max_steps": 6}

    rows = list(bench.sweep_one("ops5-6", run, params, {"max_steps": 4}, [1, 2], tmp_path, {"warmup_steps": 2}))

    # the run's own data follows its setting, not params.yaml's (max_steps 3 there)
    answers = [record["messages"][-1]["content"] for record in read_records(tmp_path / "data" / "sft.jsonl")]
    assert {len(solution_steps(answer)) for answer in answers} <= {5, 6}
    assert [row["model"] for row in rows] == ["base", "sft", "sft"]
    assert [row.get("sft_seed") for row in rows] == [None, 1, 2]
    assert all(row["task"] == run for row in rows)
    assert all(row["base"] == {"warmup_steps": 2} and "base_seed" not in row for row in rows), "params.yaml's base seed, overrides named"
    assert rows[1]["sft"] == {"max_steps": 4}, "an SFT row names its overrides of the sft section"
    for row in rows[1:]:
        assert 0.0 <= row["val_pass@1"] <= 1.0 and 0.0 <= row["val_probe_accuracy"] <= 1.0
    # the two seeds are two trainings, each scored in its own folder
    assert (tmp_path / "sft-seed1-eval").is_dir() and (tmp_path / "sft-seed2-eval").is_dir()
    json.dumps(rows)  # one JSON line per model


def test_base_seeds_pretrain_one_base_each_with_the_overrides_on_one_draw_of_data(tmp_path):
    bench = load_script("task_sweep")
    tiny = tiny_overrides()
    params = {"data": tiny["data"], "base": tiny["base"], "sft": tiny["sft"] | {"use_cpu": True}}

    rows = list(bench.sweep_one("lr", {}, params, {"max_steps": 2}, [0], tmp_path, {"learning_rate": 0.002}, [3, 4]))

    assert [(row["model"], row["base_seed"]) for row in rows] == [("base", 3), ("sft", 3), ("base", 4), ("sft", 4)]
    assert all(row["base"] == {"learning_rate": 0.002} for row in rows), "every row names the base's overrides"
    # two bases, each in its own folder, each SFT'd from its own base
    assert (tmp_path / "base-base3" / "model").is_dir() and (tmp_path / "base-base4" / "model").is_dir()
    assert (tmp_path / "sft-base3-seed0-eval").is_dir() and (tmp_path / "sft-base4-seed0-eval").is_dir()
    weights = [(tmp_path / f"base-base{seed}" / "model" / "model.safetensors").read_bytes() for seed in (3, 4)]
    assert weights[0] != weights[1], "the base seed reaches the base's initialisation"


def test_no_sft_seeds_trains_and_probes_the_bases_only(tmp_path):
    """`--seeds` with no seed: a base-schedule screen, each base's loss and validation probe, no SFT."""
    bench = load_script("task_sweep")
    tiny = tiny_overrides()
    params = {"data": tiny["data"], "base": tiny["base"], "sft": tiny["sft"] | {"use_cpu": True}}

    rows = list(bench.sweep_one("screen", {}, params, {}, [], tmp_path, {"weight_decay": 0.1}, [0]))

    assert [(row["model"], row["base_seed"]) for row in rows] == [("base", 0)]
    assert rows[0]["base"] == {"weight_decay": 0.1} and 0.0 <= rows[0]["val_probe_accuracy"] <= 1.0
    assert not list(tmp_path.glob("sft-*")), "no SFT was trained"
