"""The pipeline's params: params.yaml's profiles, and recipe switches and settings that cannot work refused."""

import pytest
from pydantic import ValidationError

from components.config import ParamsError
from flows.params import ExecutionConfig, PipelineParams, load_params
from tests.conftest import write


def test_params_yaml_local_profile_equals_the_code_defaults():
    # params.yaml is what DVC tracks and users edit; the defaults are what the UI form shows.
    assert load_params("params.yaml", "local").model_dump() == PipelineParams().model_dump()


def test_cluster_profile_loads():
    params = load_params("params.yaml", "cluster")
    assert params.base.source == "pretrained"
    assert params.sft.use_cpu is False


def test_a_scratch_base_without_a_pretraining_corpus_is_refused(tmp_path):
    path = write(tmp_path, "data:\n  n_pretrain: 0\n")
    with pytest.raises(ParamsError, match="base.source is 'scratch'.*writes none"):
        load_params(path)


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


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ({"exchange_uri": "s3://bucket/x"}, "execution.exchange_uri is set, but execution.mode is in_process"),
        ({"mode": "deployments", "exchange_uri": "s4://bucket/x"}, "unknown storage protocol 's4'"),
        ({"mode": "deployments", "exchange_uri": "bucket/x"}, "String should match pattern"),
    ],
)
def test_a_bad_exchange_uri_is_refused_naming_it(execution, message):
    with pytest.raises(ValidationError, match=message):
        ExecutionConfig.model_validate(execution)


NO_PRETRAINING = "data:\n  n_pretrain: 0\nbase:\n  source: pretrained\n  model_name_or_path: m\n"


@pytest.mark.parametrize(
    "replay, message",
    [
        (
            "sft:\n  replay_weight: 0.5\n",
            r"sft.replay_weight, sft_round2.replay_weight and alignment.dpo.replay_weight replay data/pretrain.jsonl, "
            "but the data stage writes none",
        ),
        (
            "sft_round2:\n  replay_weight: 0\nalignment:\n  dpo:\n    replay_weight: 0\n",
            r"- \(top level\): sft.replay_weight replays data/pretrain.jsonl",
        ),
        (
            "sft:\n  replay_weight: 0\nsft_round2:\n  replay_weight: 0\nalignment:\n  dpo:\n    replay_weight: 0.5\n",
            r"- \(top level\): alignment.dpo.replay_weight replays data/pretrain.jsonl",
        ),
    ],
)
def test_replaying_pretraining_text_without_a_pretraining_corpus_is_refused(tmp_path, replay, message):
    with pytest.raises(ParamsError, match=message):
        load_params(write(tmp_path, NO_PRETRAINING + replay))


NO_REPLAY = "sft:\n  replay_weight: 0\nsft_round2:\n  replay_weight: 0\nalignment:\n  dpo:\n    replay_weight: 0\n"


def test_healing_the_student_without_a_pretraining_corpus_is_refused_before_any_stage(tmp_path):
    with pytest.raises(ParamsError, match=r"distill.heal_steps is 300, which pretrains the cut student on data/pretrain.jsonl"):
        load_params(write(tmp_path, NO_PRETRAINING + NO_REPLAY))
    assert load_params(write(tmp_path, NO_PRETRAINING + NO_REPLAY + "distill:\n  heal_steps: 0\n")).distill.heal_steps == 0
    assert load_params(write(tmp_path, NO_PRETRAINING + NO_REPLAY + "recipe:\n  distill: false\n")).recipe.distill is False


def test_the_students_replay_without_a_pretraining_corpus_is_refused_before_any_stage(tmp_path):
    students_replay = "distill:\n  heal_steps: 0\n  student_sft:\n    replay_weight: 0.5\n"
    with pytest.raises(ParamsError, match=r"distill.student_sft.replay_weight replays data/pretrain.jsonl"):
        load_params(write(tmp_path, NO_PRETRAINING + NO_REPLAY + students_replay))
