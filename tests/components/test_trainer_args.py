"""Trainer sections pass through to TRL: a params.yaml key is the TRL config field of that name."""

from __future__ import annotations

import dataclasses
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
    declared = set(type(section).model_fields) - section.OWN_FIELDS
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
