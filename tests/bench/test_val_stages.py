"""bench/val_stages.py: a run's policies, found in its summary, both students included, the reward model not."""

from pathlib import Path

from tests.bench import load_script


def test_every_policy_of_a_run_is_found_in_its_summary_and_the_scorer_is_not():
    bench = load_script("val_stages")
    summary = {
        "stages": {
            "data": {"outputs": {"data_dir": "data", "val": "data/val.jsonl"}},
            "base": {"outputs": {"model": "artifacts/base/a/model"}},
            "sft": {"outputs": {"model": "artifacts/sft/b/model"}},
            "reward_model": {"outputs": {"model": "artifacts/reward_model/c/model", "held_out_pairs": "p.jsonl"}},
            "alignment": {"outputs": {"model": "/elsewhere/alignment/model"}},
            "grpo": {"outputs": {"model": "artifacts/grpo/e/model"}},
            "distill": {
                "outputs": {"model": "artifacts/distill/d/distilled/model", "baseline_model": "artifacts/distill/d/baseline/model"}
            },
            "student_sft": {"outputs": {}},
        }
    }
    models = bench.stage_models(summary, Path("/run"))
    assert list(models) == ["base", "sft", "grpo", "alignment", "distill", "student_sft"], "in the recipe's order"
    assert models["sft"] == Path("/run/artifacts/sft/b/model")
    assert models["alignment"] == Path("/elsewhere/alignment/model"), "an absolute path stays where it is"
    assert models["student_sft"] == Path("/run/artifacts/distill/d/baseline/model")


def test_the_run_folder_is_found_above_a_seed_runs_summary(tmp_path):
    bench = load_script("val_stages")
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "reports" / "seed1").mkdir(parents=True)
    assert bench.run_folder(tmp_path / "reports" / "seed1" / "summary.json") == tmp_path
