"""The model card: built from a version's tags, it says where the model came from, how it scored and how to serve it."""

from __future__ import annotations

from components import model_card
from components.serving import CHAT_TASK, REWARD_TASK, SERVING_TASK_TAG

LINEAGE = {
    "data_md5": "0f3c9a55e1b2d4c6a8e0f1a2b3c4d5e6.dir",
    "data_versioned_by": "dvc",
    "params_hash": "5d41402abc4b2a76",
    "git_commit": "1234e5678",  # reads as a float: lineage must never be formatted as a number
    "prefect_flow_run_id": "0b7e-flow-run",
    "profile": "local",
    "validation_status": "passed",
    "stage": "grpo",
    "model_digest": "ab" * 32,
    "parent_model": "models:/tiny-sft/3",
    "base_model": "none (trained from scratch)",
}


def test_the_card_holds_lineage_metrics_and_how_to_serve_a_chat_policy():
    tags = LINEAGE | {
        SERVING_TASK_TAG: CHAT_TASK,
        "metric.pass_at_1": "0.20833333333333334",
        "metric.maj_at_2": "0.25",
        "eval.per_problem.pass_at_1": "0110" + "0" * 20,
        "eval.set_digest": "c" * 64,
    }
    card = model_card.build("tiny", tags, version="4")

    assert card.startswith("# tiny\n\nA chat policy (stage `grpo`), trained from `models:/tiny-sft/3`.")
    for line in (
        "| parent model | `models:/tiny-sft/3` |",
        "| git commit | 1234e5678 |",
        "| params hash | 5d41402abc4b2a76 |",
        f"| data md5 | {LINEAGE['data_md5']} |",
        "| data validation | passed |",
        f"| model files (sha256) | {'ab' * 32} |",
        "| base model | none (trained from scratch) |",
        "| pass_at_1 | 0.2083 |",
        "| maj_at_2 | 0.25 |",
        "| per_problem.pass_at_1 | 2 of 24 problems correct |",
    ):
        assert line in card, line
    assert "No gate decision recorded" in card and "## Cost" not in card
    assert 'mlflow models serve -m "models:/tiny/4" --env-manager local' in card
    assert '"messages": [{"role": "user", "content": "What is 2 + 3?"}]' in card and "choices[0].message.content" in card
    assert SERVING_TASK_TAG not in card  # said in words, not as a raw tag


def test_the_gate_decision_and_cost_appear_when_the_tags_carry_them():
    tags = LINEAGE | {
        SERVING_TASK_TAG: CHAT_TASK,
        "gate.decision": "rejected",
        "gate.reason": "the CI of the pass@1 difference includes 0",
        "gate.reasons": '["' + "x" * 400 + '"]',  # long JSON: left out, the reason says it
        "gate.method": "paired_bootstrap",
        "gate.ci_low": "-0.050000",
        "gate.ci_high": "0.120000",
        "gate.champion": "2",
        "cost.gpu_hours": "0.125",
        "cost.usd": "0.31",
    }
    card = model_card.build("tiny", tags)

    assert "## Promotion gate\n\n**rejected**: the CI of the pass@1 difference includes 0" in card
    assert "| method | paired_bootstrap |" in card and "| CI low | -0.050000 |" in card and "| champion it was compared with | 2 |" in card
    assert "x" * 50 not in card
    assert "## Cost" in card and "| gpu_hours | 0.125 |" in card and "| usd | 0.31 |" in card
    assert '"models:/tiny/VERSION"' in card  # the artifact's copy is written before the version exists
    decided = model_card.build("tiny", {"gate.decision": "promoted", "gate.reason": "first model"})
    assert "## Promotion gate\n\n**promoted**: first model" in decided  # a decision with no details still shows


def test_a_reward_model_card_says_what_to_send_and_what_the_score_is():
    tags = {
        SERVING_TASK_TAG: REWARD_TASK,
        "stage": "reward_model",
        "parent_model": "models:/tiny-sft/3",
        "metric.held_out_pairwise_accuracy": "0.75",
        "metric.held_out_mean_margin": "0.0123456",
    }
    card = model_card.build("tiny-reward-model", tags, version="1")

    assert card.startswith("# tiny-reward-model\n\nA reward model (stage `reward_model`), trained from `models:/tiny-sft/3`.")
    assert "| held_out_pairwise_accuracy | 0.75 |" in card and "| held_out_mean_margin | 0.01235 |" in card
    assert "raw reward" in card and "chat template" in card and '"inputs": ["<|im_start|>user' in card


def test_the_card_fits_the_registry_description_and_escapes_table_cells():
    tags = {f"metric.m{i:04d}": str(i / 7) for i in range(400)} | {"note": "a | b"}
    card = model_card.build("big", tags)
    assert len(card) <= model_card.MAX_CHARS and card.rstrip().endswith("the full tags are on the version)")
    assert "| note | a \\| b |" in model_card.build("small", {"note": "a | b"})
