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


def test_seed_offsets_move_every_post_training_seed_and_leave_the_base_and_data():
    sweep = load_script("scarce_sweep")
    params = {"data": {"seed": 1234}, "base": {"seed": 0}, "sft": {"seed": 0, "max_steps": 3}, "sft_round2": {"seed": 5}}
    params |= {"rejection_sampling": {"seed": 0}, "grpo": {}, "distill": {"heal_steps": 3, "student_sft": {"seed": 1}}}

    shifted = sweep.shifted_seeds(params, 2)

    assert shifted["data"] == params["data"] and shifted["base"] == params["base"]
    assert shifted["sft"] == {"seed": 2, "max_steps": 3} and shifted["sft_round2"]["seed"] == 7
    assert shifted["rejection_sampling"]["seed"] == 2 and shifted["grpo"]["seed"] == 2
    assert shifted["distill"]["heal_steps"] == 3 and shifted["distill"]["student_sft"] == {"seed": 3}
    assert shifted["distill"]["teacher_sampling"] == {"seed": 2} and shifted["distill"]["on_policy"] == {"seed": 2}
    assert params["sft"]["seed"] == 0 and params["distill"]["student_sft"] == {"seed": 1}  # the caller's params are as they were


def write_arm(out: Path, arm: str, references: list[str], correct: list[bool]) -> None:
    (out / arm / "eval").mkdir(parents=True)
    rows = [{"reference": ref, "greedy_correct": ok} for ref, ok in zip(references, correct, strict=True)]
    (out / arm / "eval" / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_pooled_runs_average_each_problem_over_the_runs_and_refuse_other_problems(tmp_path):
    sweep = load_script("scarce_sweep")
    references = [str(i) for i in range(40)]
    first, second = tmp_path / "seed0", tmp_path / "seed1"
    write_arm(first, "round2", references, [True] * 40)
    write_arm(first, "control", references, [i < 20 for i in range(40)])
    write_arm(second, "round2", references, [i < 30 for i in range(40)])
    write_arm(second, "control", references, [i < 10 for i in range(40)])

    pooled = sweep.difference([first, second], "round2", "control")

    assert pooled["effect"] == pytest.approx((1.0 - 0.5 + 0.75 - 0.25) / 2)  # the mean of the two runs' differences
    assert pooled["interval"][0] > 0 and pooled["holds"]
    assert sweep.difference(second, "round2", "control")["effect"] == pytest.approx(0.5)
    write_arm(tmp_path / "other", "round2", references[::-1], [True] * 40)
    with pytest.raises(ValueError, match="the same problems in the same order"):
        sweep.mean_scores([first, tmp_path / "other"], "round2")


def test_distillation_needs_round_2_for_its_teacher(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["scarce_sweep", "--base", "m", "--arms", "control", "distill"])
    with pytest.raises(SystemExit):
        load_script("scarce_sweep").main()
    assert "--arms distill needs round2" in capsys.readouterr().err


@pytest.mark.parametrize("overrides, says", [("{learning_rate: 3e-5}", "is not JSON"), ("[1]", "give a JSON object")])
def test_grpo_overrides_that_are_not_a_json_object_are_refused_before_any_training(monkeypatch, capsys, overrides, says):
    monkeypatch.setattr("sys.argv", ["scarce_sweep", "--base", "m", "--arms", "grpo", "--grpo", overrides])
    with pytest.raises(SystemExit):
        load_script("scarce_sweep").main()
    assert says in capsys.readouterr().err


def test_the_differences_follow_the_arms_run():
    sweep = load_script("scarce_sweep")
    assert sweep.compared(["control", "round2"]) == [("round2", "control")]
    assert sweep.compared(["grpo"]) == [("grpo", "sft")]
    assert sweep.compared(["control", "round2", "grpo"]) == [("round2", "control"), ("grpo", "sft"), ("grpo", "control")]
    assert sweep.compared(["round2", "distill"]) == [("distill", "student")]  # the distill stage trains the direct student


@pytest.mark.slow
def test_a_drills_base_then_each_cold_start_with_every_arm(tmp_path, tiny_data, monkeypatch, capsys):
    tiny = tiny_overrides()
    params = tmp_path / "params.yaml"
    sections = ("data", "base", "sft", "sft_round2", "rejection_sampling", "grpo", "distill")
    params.write_text(yaml.safe_dump({k: tiny[k] for k in sections} | {"data": tiny["data"] | {"n_pretrain": 300}}))
    log = tmp_path / "log.jsonl"
    data_dir = str(Path(tiny_data["eval"]).parent)
    argv = ["scarce_sweep", "--drills-base", "--data", data_dir, "--params", str(params), "--rows", "20", "--rl-prompts", "10"]
    argv += ["--arms", "control", "round2", "grpo", "distill", "--grpo", '{"max_steps": 2}', "--out", str(tmp_path / "out")]
    monkeypatch.setattr("sys.argv", [*argv, "--log", str(log)])
    assert load_script("scarce_sweep").main() == 0

    row = json.loads(log.read_text())
    assert row["rows"] == 20 and row["rl_prompts"] == 10 and row["drills_base"] is True and row["seed_offset"] == 0
    for arm in ("sft", "control", "round2", "grpo", "distill", "student"):
        assert 0 <= row[f"{arm}_val_pass@1"] <= 1
    assert row["grpo"] == {"max_steps": 2} and "final_reward" in row["grpo_training"]
    assert row["distill_training"]["distilled_tokens_trained"] > 0 and row["distill_training"]["baseline_tokens_trained"] > 0
    for left, right in (("round2", "control"), ("grpo", "sft"), ("grpo", "control"), ("distill", "student")):
        name = f"{left}_minus_{right}"
        low, high = row[name]["interval"]  # each difference is the two arms' scores, with its interval around it
        assert row[name]["effect"] == pytest.approx(row[f"{left}_val_pass@1"] - row[f"{right}_val_pass@1"], abs=0.002)
        assert low <= row[name]["effect"] <= high
    assert row["rejection_sampling"]["kept"] >= 0
    drills = read_records(tmp_path / "out" / "pretrain_drills.jsonl")
    assert len(drills) == 300 and not any(text["text"].startswith("Q:") for text in drills)  # no worked problem
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == row
