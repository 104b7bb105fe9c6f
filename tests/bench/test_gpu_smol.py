"""bench/gpu_smol.py: SmolLM2 through SFT and GRPO, evaluated on held-out problems; its results and how they are shown.

The GPU numbers are the device machine's: these tests check that the script runs end to end (on
CPU, `--dry`), that its settings are the smol profile's changed only where recorded, that GRPO
stops at its deadline, and that the committed reports and the README table are the JSON's.
"""

from __future__ import annotations

import json

import pytest
from transformers import TrainerControl, TrainerState

from components import grpo, sft
from components.config import load_section
from tests.bench import load_script, run_script
from tests.conftest import REPO

RESULTS = REPO / "bench" / "results" / "gpu_smol"


def load_bench():
    return load_script("gpu_smol")


def test_settings_are_the_smol_profiles_changed_only_where_recorded():
    bench = load_bench()
    cfg, overrides = bench.configs(bench.parse_args(["--seed-offset", "2"]))
    for name, module in (("sft", sft), ("grpo", grpo)):
        smol = load_section(REPO / "params.yaml", name, module.Config, "smol").model_dump()
        assert cfg[name].model_dump() == smol | overrides[name]
        assert cfg[name].seed == smol["seed"] + 2
    assert cfg["grpo"].per_device_train_batch_size * cfg["grpo"].gradient_accumulation_steps == 128
    assert cfg["grpo"].learning_rate == load_section(REPO / "params.yaml", "grpo", grpo.Config, "smol").learning_rate
    assert cfg["evaluate"].limit is None and cfg["data"].n_eval == 300


def test_grpo_stops_at_its_deadline_and_says_at_which_step():
    bench = load_bench()
    control, state = TrainerControl(), TrainerState()
    state.global_step = 7
    deadline = bench.Deadline(at=0.0)  # long past
    deadline.on_step_end(None, state, control)
    assert control.should_training_stop and deadline.stopped_at_step == 7
    later = bench.Deadline(at=float("inf"))
    control = TrainerControl()
    later.on_step_end(None, state, control)
    assert not control.should_training_stop and later.stopped_at_step is None


def test_comparisons_are_paired_over_the_same_problems():
    bench = load_bench()
    results = {
        "eval_shipped": {"greedy_correct": [0.0] * 40},
        "eval_sft": {"greedy_correct": [1.0] * 10 + [0.0] * 30},
        "eval_grpo": {"greedy_correct": [1.0] * 20 + [0.0] * 20},
    }
    rows = {row["measure"]: row for row in bench.comparisons(results)}
    assert rows["pass@1: grpo - sft"]["effect"] == pytest.approx(0.25)
    assert rows["pass@1: grpo - sft"]["holds"] and rows["pass@1: grpo - sft"]["low"] > 0
    assert rows["pass@1: sft - shipped"]["effect"] == pytest.approx(0.25)
    del results["eval_grpo"]
    assert [row["measure"] for row in bench.comparisons(results)] == ["pass@1: sft - shipped"]  # GRPO missing: no row, no error


def test_committed_reports_are_their_json():
    bench = load_bench()
    runs = sorted(RESULTS.rglob("gpu_smol.json"))
    assert runs, "bench/results/gpu_smol holds the device runs"
    for path in runs:
        results = json.loads(path.read_text())
        assert (path.parent / "gpu_smol.md").read_text() == bench.markdown(results), f"{path.parent}: regenerate gpu_smol.md"
        assert results["import"]["same_as_cpu_import"] == "byte-identical to the CPU import"
        assert {c["measure"] for c in results["comparisons"]} == {"pass@1: sft - shipped", "pass@1: grpo - sft", "pass@1: grpo - shipped"}
        for comparison in results["comparisons"]:  # the verdict follows from the interval
            assert comparison["holds"] == (comparison["low"] > comparison["threshold"])


@pytest.mark.slow
def test_dry_cpu_run_imports_trains_and_evaluates_every_model(tmp_path, smollm2_models):
    run_script("gpu_smol", "--device", "cpu", "--dry", "--models-dir", str(smollm2_models), "--out", str(tmp_path))
    results = json.loads((tmp_path / "gpu_smol.json").read_text())
    assert results["import"]["parameters"] == 134_515_008 and len(results["import"]["model_sha256"]) == 64
    for label in ("shipped", "sft", "grpo"):
        evaluated = results[f"eval_{label}"]
        assert len(evaluated["greedy_correct"]) == evaluated["metrics"]["n_problems"] == 6
    assert results["sft"]["tokens_per_second"] > 0 and results["sft"]["mfu"] > 0
    assert results["grpo"]["steps_done"] == 2 and not results["grpo"]["stopped_by_deadline"]
    assert 0 < results["grpo"]["generation_share"] < 1
    assert len(results["comparisons"]) == 3
    assert not (tmp_path / "gpu_throughput.json").exists(), "the reused guard writes this benchmark's file, not gpu_throughput's"
    assert (tmp_path / "gpu_smol.md").read_text() == load_bench().markdown(results)
