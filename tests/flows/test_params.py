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


def test_every_knob_that_reads_a_missing_pretraining_corpus_is_named_at_once(tmp_path):
    knobs = (
        r"sft.replay_weight \(1\), sft_round2.replay_weight \(1\), alignment.dpo.replay_weight \(3\), "
        r"distill.heal_steps \(300\) and distill.student_sft.replay_weight \(1\) read data/pretrain.jsonl"
    )
    with pytest.raises(ParamsError, match=knobs + r" \(the base's pretraining corpus\), but the data stage writes none: .* set them to 0"):
        load_params(write(tmp_path, NO_PRETRAINING))


SFT_OFF = "sft:\n  replay_weight: 0\n"
ROUND2_OFF = "sft_round2:\n  replay_weight: 0\n"
DPO_OFF = "alignment:\n  dpo:\n    replay_weight: 0\n"
STUDENTS_OFF = "distill:\n  heal_steps: 0\n  student_sft:\n    replay_weight: 0\n"
NO_REPLAY = SFT_OFF + ROUND2_OFF + DPO_OFF


@pytest.mark.parametrize(
    "params, message",
    [
        ("sft:\n  replay_weight: 0.5\n" + ROUND2_OFF + DPO_OFF + STUDENTS_OFF, r"sft.replay_weight \(0.5\) reads"),
        (SFT_OFF + ROUND2_OFF + "alignment:\n  dpo:\n    replay_weight: 3\n" + STUDENTS_OFF, r"alignment.dpo.replay_weight \(3\) reads"),
        (NO_REPLAY + "distill:\n  heal_steps: 300\n  student_sft:\n    replay_weight: 0\n", r"distill.heal_steps \(300\) reads"),
        (NO_REPLAY + "distill:\n  heal_steps: 0\n", r"distill.student_sft.replay_weight \(1\) reads"),
    ],
)
def test_one_knob_left_reading_a_missing_corpus_is_named_alone(tmp_path, params, message):
    with pytest.raises(ParamsError, match=message + r" data/pretrain.jsonl .* or set it to 0"):
        load_params(write(tmp_path, NO_PRETRAINING + params))


def test_a_switched_off_stages_replay_is_not_named(tmp_path):
    # round 2 and DPO do not run: their replay weights read nothing, so the user is not told to zero them
    off = "recipe:\n  rejection_sampling: false\n  alignment: false\n"
    with pytest.raises(
        ParamsError, match=r"sft.replay_weight \(1\), distill.heal_steps \(300\) and distill.student_sft.replay_weight \(1\) read"
    ):
        load_params(write(tmp_path, NO_PRETRAINING + off))
    assert load_params(write(tmp_path, NO_PRETRAINING + off + SFT_OFF + STUDENTS_OFF)).sft_round2.replay_weight == 1.0


def test_without_a_corpus_every_knob_at_0_or_distillation_off_loads(tmp_path):
    assert load_params(write(tmp_path, NO_PRETRAINING + NO_REPLAY + STUDENTS_OFF)).distill.heal_steps == 0
    assert load_params(write(tmp_path, NO_PRETRAINING + NO_REPLAY + "recipe:\n  distill: false\n")).recipe.distill is False
