"""Stage cache keys: they follow the config, the inputs and the components a stage imports."""

import pytest
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


def test_a_parse_that_another_thread_upset_is_retried_and_a_real_error_is_not(tmp_path, monkeypatch):
    import ast

    from components import artifacts

    source = tmp_path / "m.py"
    source.write_text("from components import answers\n")
    real_parse, failures = ast.parse, iter([True])

    def overlapped(text, *args, **kwargs):  # CPython 3.11's thread race (gh-106905), once
        if next(failures, False):
            raise SystemError("AST constructor recursion depth mismatch (before=159, after=70)")
        return real_parse(text, *args, **kwargs)

    monkeypatch.setattr(artifacts.ast, "parse", overlapped)
    assert isinstance(artifacts.parse_source(source), ast.Module)
    source.write_text("def broken(:\n")
    with pytest.raises(SyntaxError):
        artifacts.parse_source(source)
    monkeypatch.setattr(artifacts.ast, "parse", lambda *_a, **_k: (_ for _ in ()).throw(SystemError("another fault")))
    with pytest.raises(SystemError, match="another fault"):
        artifacts.parse_source(source)


def test_a_stage_cache_key_follows_the_components_it_imports():
    from components.artifacts import component_dependencies

    # a change to the reward functions or the scorer must re-run GRPO, rejection sampling and distillation
    grpo = component_dependencies("grpo")
    assert {f"components.{m}" for m in ("grpo", "rewards", "answers", "scoring", "config", "artifacts", "trainer_args")} <= grpo
    assert "components.rewards" in component_dependencies("distill")
    assert "components.rewards" not in component_dependencies("base")  # ...but not pretraining
    # ...and training the reward model differently re-keys only the stages that consume its output
    assert "components.reward_model" not in grpo | component_dependencies("rejection_sampling") | component_dependencies("evaluate")
