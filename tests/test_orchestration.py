"""The Prefect side without a server: typed UI form, deployment file, cache keys."""

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from components.artifacts import cache_key
from components.sft import Config as SFTConfig


def test_flow_parameters_render_as_a_typed_form_with_bounds():
    from prefect.utilities.callables import parameter_schema

    from flows.post_training import post_training

    schema = parameter_schema(post_training).model_dump_for_openapi()
    definitions = schema["definitions"]
    assert "PipelineParams" in definitions
    sft = definitions["SFTConfig"]["properties"]
    assert sft["max_steps"]["minimum"] == 1
    assert sft["learning_rate"]["exclusiveMinimum"] == 0
    assert "description" in sft["resume"]


def test_prefect_yaml_points_at_the_flow():
    spec = yaml.safe_load(Path("prefect.yaml").read_text())
    deployment = next(d for d in spec["deployments"] if d["name"] == "post-training")
    path, function = deployment["entrypoint"].split(":")
    assert Path(path).is_file() and f"def {function}(" in Path(path).read_text()
    assert deployment["work_pool"]["name"] == "local-process"


def test_cache_key_changes_with_config_and_inputs_only():
    cfg = SFTConfig()
    key = cache_key("sft", cfg, {"model": "a", "sft": "b"})
    assert key == cache_key("sft", SFTConfig(), {"sft": "b", "model": "a"})
    assert key != cache_key("sft", SFTConfig(max_steps=7), {"model": "a", "sft": "b"})
    assert key != cache_key("sft", cfg, {"model": "a", "sft": "c"})
    assert isinstance(cfg, BaseModel)


def test_git_commit_outside_a_checkout_comes_from_the_image(tmp_path, monkeypatch):
    from components.versioning import git_commit

    monkeypatch.setenv("POSTTRAIN_GIT_COMMIT", "abc123")
    assert git_commit(tmp_path) == "abc123"
    assert git_commit(".") not in ("abc123", "unknown")


def test_every_deployment_points_at_a_flow_whose_parameters_are_typed():
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.importtools import import_object

    spec = yaml.safe_load(Path("prefect.yaml").read_text())
    assert {d["name"] for d in spec["deployments"]} >= {"post-training", "promote-model", "retrain"}
    for deployment in spec["deployments"]:
        schema = parameter_schema(import_object(deployment["entrypoint"])).model_dump_for_openapi()
        assert schema.get("definitions"), f"{deployment['name']}: no pydantic model in its parameters"
        assert all(p.get("description") for p in schema["properties"].values()), deployment["name"]
    retrain = next(d for d in spec["deployments"] if d["name"] == "retrain")
    assert retrain["schedules"][0]["cron"] and retrain["schedules"][0]["active"]


def test_a_promotion_request_needs_a_reason_and_a_version_to_promote():
    from pydantic import ValidationError

    from flows.promote import PromotionRequest

    with pytest.raises(ValidationError, match="reason"):
        PromotionRequest(version=2, reason=" ")
    with pytest.raises(ValidationError, match="version is required when action is 'promote'"):
        PromotionRequest(reason="better on the new benchmark")
    assert PromotionRequest(action="rollback", reason="v3 regressed").version is None


def test_a_stage_cache_key_follows_the_components_it_imports():
    from components.artifacts import component_dependencies

    # a change to the reward functions or the scorer must re-run GRPO, rejection sampling and distillation
    grpo = component_dependencies("grpo")
    assert {f"components.{m}" for m in ("grpo", "rewards", "answers", "scoring", "config", "artifacts", "trainer_args")} <= grpo
    assert "components.rewards" in component_dependencies("distill")
    assert "components.rewards" not in component_dependencies("base")  # ...but not pretraining
    # ...and training the reward model differently re-keys only the stages that consume its output
    assert "components.reward_model" not in grpo | component_dependencies("rejection_sampling") | component_dependencies("evaluate")


def test_switching_off_the_reward_model_refuses_the_stages_that_need_it():
    from components.config import ParamsError, validate_config
    from flows.params import PipelineParams

    with pytest.raises(ParamsError, match="grpo.rewards uses reward_model, but recipe.reward_model is off"):
        validate_config(PipelineParams, {"recipe": {"reward_model": False}, "grpo": {"rewards": {"reward_model": 1.0}}}, "params.yaml")
    with pytest.raises(ParamsError, match=r"alignment.pairs is on_policy .*, but recipe.rejection_sampling is off"):
        validate_config(PipelineParams, {"recipe": {"rejection_sampling": False}, "alignment": {"pairs": "on_policy"}}, "params.yaml")
    # the defaults cope with any single stage off
    for stage in ("reward_model", "grpo", "rejection_sampling", "alignment", "distill"):
        validate_config(PipelineParams, {"recipe": {stage: False}}, "params.yaml")


def test_an_unknown_reward_function_is_refused_naming_it():
    from components.config import ParamsError, validate_config
    from flows.params import PipelineParams

    with pytest.raises(ParamsError, match=r"grpo.*unknown reward function\(s\) \['acuracy'\]"):
        validate_config(PipelineParams, {"grpo": {"rewards": {"acuracy": 1.0}}}, "params.yaml")
