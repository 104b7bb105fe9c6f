"""The post-training flow registers the reward model (the SFT model its parent) and the verifier (the final policy its parent),
each under its own name with its held-out metrics."""

from __future__ import annotations

from contextlib import nullcontext

from components import serving
from flows.params import PipelineParams
from flows.post_training import Model, Recipe
from flows.report import RunSummary, StageRow


def test_the_reward_model_is_registered_with_the_sft_model_as_parent(tmp_path, monkeypatch):
    calls = []

    def register_model(model_dir, name, tags, metrics, task):
        calls.append({"model_dir": model_dir, "name": name, "tags": tags, "metrics": metrics, "task": task})
        return "7", True

    monkeypatch.setattr("flows.post_training.registry.register_model", register_model)
    monkeypatch.setattr("flows.post_training.registry_lock", lambda name: nullcontext())
    folders = {label: tmp_path / label for label in ("base", "sft", "alignment", "reward_model", "verifier")}
    for label, folder in folders.items():
        folder.mkdir()
        (folder / "model.safetensors").write_text(label)  # what the model digest is taken over

    rm_metrics = {"held_out_pairwise_accuracy": 0.75, "held_out_mean_margin": 0.2, "train_pairs": 36.0}
    verifier_metrics = {"held_out_pairwise_accuracy": 0.98}
    stages = {"reward_model": StageRow(metrics=rm_metrics), "verifier": StageRow(metrics=verifier_metrics)}
    summary = RunSummary(lineage={"git_commit": "c0ffee", "params_hash": "p"}, stages=stages)
    recipe = Recipe(summary, datasets={}, params=PipelineParams(), force=False)
    base = Model("base", str(folders["base"]))
    sft = Model("sft", str(folders["sft"]), base)
    recipe.trained = [base, sft, Model("alignment", str(folders["alignment"]), sft)]
    recipe.registered = {"base": "posttrain-base/1", "sft": "posttrain-sft/3", "alignment": "posttrain/5"}
    recipe.reward_model, recipe.verifier = str(folders["reward_model"]), str(folders["verifier"])

    recipe.register_reward_models()

    call, verifier = calls
    name = f"{PipelineParams().tracking.registered_model}-reward-model"
    assert call["name"] == name and call["model_dir"] == str(folders["reward_model"]) and call["task"] == serving.REWARD_TASK
    assert call["tags"]["parent_model"] == "models:/posttrain-sft/3" and call["tags"]["stage"] == "reward_model"
    assert call["tags"]["git_commit"] == "c0ffee" and len(call["tags"]["model_digest"]) == 64
    assert call["metrics"] == rm_metrics
    assert summary.registered["reward_model"] == {"name": name, "version": "7", "parent_model": "models:/posttrain-sft/3"}
    assert verifier["name"] == f"{PipelineParams().tracking.registered_model}-verifier" and verifier["task"] == serving.REWARD_TASK
    assert verifier["tags"]["parent_model"] == "models:/posttrain/5", "the verifier was trained from the final policy"
    assert verifier["metrics"] == verifier_metrics and verifier["model_dir"] == str(folders["verifier"])


def test_no_reward_model_registers_nothing(monkeypatch):
    monkeypatch.setattr("flows.post_training.registry.register_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("registered")))
    Recipe(RunSummary(), datasets={}, params=PipelineParams(), force=False).register_reward_models()
