"""Stage cache keys: they follow the config, the inputs and the components a stage imports."""

from pydantic import BaseModel

from components.artifacts import cache_key
from components.sft import Config as SFTConfig


def test_cache_key_changes_with_config_and_inputs_only():
    cfg = SFTConfig()
    key = cache_key("sft", cfg, {"model": "a", "sft": "b"})
    assert key == cache_key("sft", SFTConfig(), {"sft": "b", "model": "a"})
    assert key != cache_key("sft", SFTConfig(max_steps=7), {"model": "a", "sft": "b"})
    assert key != cache_key("sft", cfg, {"model": "a", "sft": "c"})
    assert isinstance(cfg, BaseModel)


def test_a_stage_cache_key_follows_the_components_it_imports():
    from components.artifacts import component_dependencies

    # a change to the reward functions or the scorer must re-run GRPO, rejection sampling and distillation
    grpo = component_dependencies("grpo")
    assert {f"components.{m}" for m in ("grpo", "rewards", "answers", "scoring", "config", "artifacts", "trainer_args")} <= grpo
    assert "components.rewards" in component_dependencies("distill")
    assert "components.rewards" not in component_dependencies("base")  # ...but not pretraining
    # ...and training the reward model differently re-keys only the stages that consume its output
    assert "components.reward_model" not in grpo | component_dependencies("rejection_sampling") | component_dependencies("evaluate")
