"""Trainer sections pass through to TRL: a params.yaml key is the TRL config field of that name."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest

from components.config import ParamsError, validate_config
from components.trainer_args import TrainerConfig, trl_config, trl_fields
from flows.params import PipelineParams

# Every trainer section of params.yaml and the TRL dataclass it is.
TRAINER_SECTIONS = {
    ("sft",): "trl.SFTConfig",
    ("sft_round2",): "trl.SFTConfig",
    ("reward_model",): "trl.RewardConfig",
    ("grpo",): "trl.GRPOConfig",
    ("alignment_grpo",): "trl.GRPOConfig",
    ("alignment", "dpo"): "trl.DPOConfig",
    ("distill", "student_sft"): "trl.SFTConfig",
}


def _section(params: PipelineParams, path: tuple[str, ...]) -> TrainerConfig:
    node = params
    for key in path:
        node = getattr(node, key)
    return node


def _nested(path: tuple[str, ...], values: dict) -> dict:
    for key in reversed(path):
        values = {key: values}
    return values


@pytest.mark.parametrize("path", list(TRAINER_SECTIONS), ids=[".".join(p) for p in TRAINER_SECTIONS])
def test_each_trainer_section_is_its_trl_dataclass(path):
    section = _section(PipelineParams(), path)
    assert TRAINER_SECTIONS[path] == section.TRL_CLASS
    fields = trl_fields(section.TRL_CLASS)
    declared = set(type(section).model_fields) - section.own_fields
    assert declared <= set(fields), f"{'.'.join(path)} renames TRL fields: {sorted(declared - set(fields))}"


def test_any_trl_field_can_be_set_and_reaches_the_trainer_config(tmp_path):
    # knobs no section declares: they pass through by name, typed by TRL's own annotation
    values = {
        "grpo": {"num_iterations": 2, "gradient_accumulation_steps": "2", "beta": 0.07},
        "sft": {"neftune_noise_alpha": 5.0},
        "alignment": {"dpo": {"label_smoothing": 0.1}},
    }
    params = validate_config(PipelineParams, values, "params.yaml")
    from components import grpo

    grpo_args = grpo.training_args(params.grpo, tmp_path, "hf", [1.0, 0.1])
    assert (grpo_args.num_iterations, grpo_args.gradient_accumulation_steps, grpo_args.beta) == (2, 2, 0.07)
    assert trl_config(params.sft, tmp_path).neftune_noise_alpha == 5.0
    assert trl_config(params.alignment.dpo, tmp_path).label_smoothing == 0.1


def test_every_field_of_every_trl_config_is_settable():
    for path, trl_class in TRAINER_SECTIONS.items():
        own = _section(PipelineParams(), path)
        settable = set(type(own).model_fields) | {name for name in trl_fields(trl_class)}
        assert {f.name for f in dataclasses.fields(_trl_class(trl_class)) if f.init} <= settable


def _trl_class(dotted: str):
    import importlib

    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"grpo": {"num_iteratons": 2}}, "grpo.num_iteratons: unknown key (neither a field of trl.GRPOConfig"),
        ({"distill": {"student_sft": {"max_stepz": 3}}}, "distill.student_sft.max_stepz: unknown key"),
        ({"grpo": {"num_iterations": "many"}}, "grpo.num_iterations: Input should be a valid integer"),
        ({"sft": {"output_dir": "/elsewhere"}}, "sft.output_dir: set by the stage itself"),
        ({"reward_model": {"report_to": "wandb"}}, "reward_model.report_to: set by the stage itself"),
        ({"sft": {"batch_size": 8}}, "sft.batch_size: unknown key"),  # the old name is gone, not aliased
    ],
)
def test_a_wrong_trainer_key_is_refused_naming_the_section_and_key(values, message):
    with pytest.raises(ParamsError) as error:
        validate_config(PipelineParams, values, "params.yaml")
    assert message in str(error.value)


def test_the_stage_sets_what_is_derived_from_its_own_fields(tmp_path):
    from components import grpo

    cfg = grpo.Config(rewards={"accuracy": 1.0, "format": 0.2})
    names, weights = grpo.reward_plan(cfg)
    args = grpo.training_args(cfg, tmp_path, "hf", weights)
    assert args.reward_weights == [1.0, 0.2] and args.use_vllm is False and args.report_to == []
    assert Path(args.output_dir) == tmp_path


def test_the_ui_form_keeps_types_bounds_and_descriptions_of_declared_fields():
    schema = PipelineParams.model_json_schema()
    grpo = schema["$defs"]["GRPOStageConfig"]["properties"]
    assert grpo["beta"]["type"] == "number" and grpo["beta"]["minimum"] == 0 and grpo["beta"]["description"]
    assert grpo["per_device_train_batch_size"]["minimum"] == 2


def test_a_lora_block_is_validated_per_stage():
    params = validate_config(PipelineParams, {"grpo": {"peft": {"r": 8}}, "alignment": {"dpo": {"peft": {}}}}, "params.yaml")
    assert params.grpo.peft.r == 8 and params.alignment.dpo.peft.lora_alpha == 32
    assert "peft" not in params.grpo.trl_kwargs(), "ours, not a TRL field"
    with pytest.raises(ParamsError, match=r"sft.peft.r: Input should be greater than or equal to 1"):
        validate_config(PipelineParams, {"sft": {"peft": {"r": 0}}}, "params.yaml")


@pytest.mark.slow
def test_lora_trains_adapters_and_saves_a_merged_standalone_model(tmp_path, tiny_sft_model, tiny_data):
    import json

    import torch

    from components import alignment, reward_model, sft
    from components.modeling import load_model
    from components.scoring import saved_scorer
    from tests.conftest import tiny_overrides

    lora = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    tuned = sft.run(
        sft.Config(**{**tiny_overrides()["sft"], "max_steps": 3, "peft": lora}),
        {"model": tiny_sft_model, "sft": tiny_data["sft"]},
        str(tmp_path / "sft"),
    )
    assert Path(tuned.outputs["adapter"], "adapter_config.json").is_file(), "the adapter is kept beside the model"
    merged, start = load_model(tuned.outputs["model"]), load_model(tiny_sft_model)
    assert not any("lora" in name for name, _ in merged.named_parameters()), "a plain model, adapters merged in"
    changed = [n for (n, p), (_, q) in zip(merged.named_parameters(), start.named_parameters(), strict=True) if not torch.equal(p, q)]
    assert changed and all("proj" in n for n in changed), "only the adapted linear layers moved"
    assert "quantization_config" not in json.loads(Path(tuned.outputs["model"], "config.json").read_text())

    dpo = {**tiny_overrides()["alignment"]["dpo"], "max_steps": 2, "peft": lora}
    aligned = alignment.run(
        alignment.Config(pairs="dataset", dpo=dpo), {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path / "dpo")
    )
    assert Path(aligned.outputs["adapter"]).is_dir() and load_model(aligned.outputs["model"]) is not None

    for kind in ("log_likelihood", "head"):  # LoRA on the causal LM, or on the classifier with its head trained in full
        rm_cfg = reward_model.Config(**{**tiny_overrides()["reward_model"], "max_steps": 2, "peft": lora, "scorer": kind})
        scorer = reward_model.run(rm_cfg, {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path / f"rm-{kind}"))
        assert 0.0 <= scorer.metrics["held_out_pairwise_accuracy"] <= 1.0 and Path(scorer.outputs["adapter"]).is_dir()
        assert saved_scorer(scorer.outputs["model"]) == kind


@pytest.mark.parametrize("checkpointing", [False, True])
def test_trainer_configs_are_built_without_deprecation_warnings_and_keep_checkpointing(tmp_path, checkpointing):
    # transformers 5 renamed gradient_checkpointing and warns at each config built with the old name (TRL's defaults set it)
    params = validate_config(PipelineParams, {"sft": {"gradient_checkpointing": checkpointing}}, "params.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        built = trl_config(params.sft, tmp_path)
        for path in TRAINER_SECTIONS:
            trl_config(_section(params, path), tmp_path)
    assert built.activation_checkpointing is checkpointing and built.gradient_checkpointing is checkpointing
