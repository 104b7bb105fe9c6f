"""The promotion gate and the champion alias on a real (SQLite) MLflow registry.

Versions are registered as the pipeline registers them (metric tags + per-problem correctness),
without training a model: the gate reads nothing else.
"""

import json

import pytest

from components import promotion, tracking
from components.gate import GateConfig, encode_correctness
from components.registry import EVAL_SET_TAG, PREVIOUS_CHAMPION_TAG, RegistryError  # `registry` is this module's fixture

N = 100
EVAL_SET = "eval-set-a"


def correct_first(k: int) -> str:
    return encode_correctness([i < k for i in range(N)])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite registry for the module (creating its tables takes seconds); one model per test."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracking.setup(uri, "gate-test", str(root / "artifacts"))
    return MlflowClient(tracking_uri=uri, registry_uri=uri), root


@pytest.fixture
def registry(store, request):
    client, root = store
    name = f"m-{request.node.name}"
    client.create_registered_model(name)
    tracking.setup(client.tracking_uri, "gate-test")  # another test module may have pointed MLflow elsewhere

    def add_version(solved: int, per_problem: bool = True, extra_tags: dict | None = None) -> str:
        """A version that solved the first `solved` of N eval problems (greedy)."""
        version = str(client.create_model_version(name, source=str(root), run_id=None).version)
        tags = {"metric.pass_at_1": solved / N, "metric.probe_accuracy": 0.8, "metric.mean_length": 40, **(extra_tags or {})}
        if per_problem:
            tags.update({"eval.per_problem.pass_at_1": correct_first(solved), EVAL_SET_TAG: EVAL_SET})
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, str(value))
        return version

    return client, add_version, name


def champion(client, name) -> str:
    return str(client.get_model_version_by_alias(name, promotion.CHAMPION).version)


@pytest.mark.parametrize(
    ("first", "second", "extra", "second_promoted", "says"),
    [
        pytest.param(30, 50, {}, True, "beats the champion", id="better"),
        pytest.param(30, 20, {}, False, "does not beat the champion", id="worse"),
        pytest.param(30, 30, {}, False, "beyond noise", id="equal"),
        pytest.param(30, 33, {}, False, "beyond noise", id="within noise"),
        pytest.param(30, 50, {"metric.probe_accuracy": 0.5}, False, "REGRESSION", id="guard regression"),
    ],
)
def test_gate_moves_the_champion_only_on_a_pass(registry, first, second, extra, second_promoted, says):
    client, add_version, name = registry
    v1 = add_version(first)
    decision = promotion.apply_gate(name, v1, GateConfig())
    assert decision.promoted and "first model" in decision.reason and champion(client, name) == v1

    v2 = add_version(second, extra_tags=extra)
    decision = promotion.apply_gate(name, v2, GateConfig())
    assert decision.promoted is second_promoted, decision.reason
    assert says in decision.reason
    assert champion(client, name) == (v2 if second_promoted else v1)
    assert str(client.get_model_version_by_alias(name, promotion.CHALLENGER).version) == v2
    tags = client.get_model_version(name, v2).tags
    assert tags["gate.decision"] == ("promoted" if second_promoted else "rejected")
    assert tags["gate.champion"] == v1 and tags["gate.method"] == "paired-bootstrap"
    assert json.loads(tags["gate.reasons"])[0] in tags["gate.reason"]
    assert float(tags["gate.ci_low"]) <= float(tags["gate.difference"]) <= float(tags["gate.ci_high"])
    assert tags.get(PREVIOUS_CHAMPION_TAG) == (v1 if second_promoted else None)


def test_champion_never_moves_on_a_worse_challenger_and_the_record_says_why(registry):
    client, add_version, name = registry
    best = add_version(40)
    promotion.apply_gate(name, best, GateConfig())
    for solved in (39, 30, 10, 0):
        worse = add_version(solved)
        decision = promotion.apply_gate(name, worse, GateConfig())
        assert not decision.promoted and decision.champion_after == best
        assert champion(client, name) == best
        assert client.get_model_version(name, worse).tags["gate.decision"] == "rejected"


def test_a_never_right_champions_ece_does_not_hold_the_challenger_read_from_its_tags(registry):
    client, add_version, name = registry
    shipped = add_version(0, extra_tags={"metric.ece": 0.008, "metric.sample_accuracy": 0.0})
    promotion.apply_gate(name, shipped, GateConfig())
    final = add_version(25, extra_tags={"metric.ece": 0.383, "metric.sample_accuracy": 0.3})
    decision = promotion.apply_gate(name, final, GateConfig())
    assert decision.promoted, decision.reason
    assert "guard ece skipped: the champion's sample_accuracy is 0" in decision.reason
    assert champion(client, name) == final


def test_a_champion_without_per_problem_scores_falls_back_and_says_so(registry):
    client, add_version, name = registry
    old = add_version(30, per_problem=False)  # e.g. registered before the scores were recorded
    promotion.apply_gate(name, old, GateConfig())
    decision = promotion.apply_gate(name, add_version(60), GateConfig())
    assert decision.promoted and decision.gate["method"] == "one-sample-bootstrap"
    assert "champion has no per-problem scores" in decision.reason


def test_rerunning_the_gate_on_the_champion_keeps_its_record(registry):
    client, add_version, name = registry
    v1 = add_version(30)
    promotion.apply_gate(name, v1, GateConfig())
    reason = client.get_model_version(name, v1).tags["gate.reason"]
    decision = promotion.apply_gate(name, v1, GateConfig())
    assert decision.promoted and "already the champion" in decision.reason
    assert client.get_model_version(name, v1).tags["gate.reason"] == reason


def test_rollback_restores_the_previous_champion_then_walks_further_back(registry):
    client, add_version, name = registry
    v1, v2, v3 = add_version(20), add_version(50), add_version(80)
    for version in (v1, v2, v3):
        assert promotion.apply_gate(name, version, GateConfig()).promoted
    assert champion(client, name) == v3

    decision = promotion.rollback_champion(name, "v3 answers in French", record={"requested_by": "alice"})
    assert (decision.champion_before, decision.champion_after) == (v3, v2) and champion(client, name) == v2
    demoted = client.get_model_version(name, v3).tags
    assert demoted["rollback.to"] == v2 and demoted["rollback.reason"] == "v3 answers in French"
    assert demoted["rollback.requested_by"] == "alice"
    assert client.get_model_version(name, v2).tags["restored.from"] == v3

    promotion.rollback_champion(name, "v2 too")
    assert champion(client, name) == v1  # not back to v3: each rollback goes one step further back
    with pytest.raises(RegistryError, match="replaced no earlier champion.*give the version"):
        promotion.rollback_champion(name, "nothing before v1")


def test_manual_promotion_records_why_and_can_be_rolled_back(registry):
    client, add_version, name = registry
    good, rejected = add_version(50), add_version(45)
    promotion.apply_gate(name, good, GateConfig())
    assert not promotion.apply_gate(name, rejected, GateConfig()).promoted

    decision = promotion.promote_version(name, rejected, "shorter answers matter more here", record={"requested_by": "bob"})
    assert decision.promoted and champion(client, name) == rejected
    tags = client.get_model_version(name, rejected).tags
    assert tags["promotion.reason"] == "shorter answers matter more here" and tags["promotion.requested_by"] == "bob"
    assert tags["promotion.previous_champion"] == good and tags[PREVIOUS_CHAMPION_TAG] == good

    promotion.rollback_champion(name, "undo the manual promotion")
    assert champion(client, name) == good


def test_registry_errors_name_what_exists(registry):
    client, add_version, name = registry
    with pytest.raises(RegistryError, match="has no champion"):
        promotion.rollback_champion(name, "none yet")
    add_version(10)
    with pytest.raises(RegistryError, match=rf"model '{name}' has no version 7 \(existing versions: 1\)"):
        promotion.promote_version(name, "7", "typo")
    with pytest.raises(RegistryError, match="no registered model named 'nope'"):
        promotion.promote_version("nope", "1", "typo")
    promotion.promote_version(name, "1", "first")
    with pytest.raises(RegistryError, match="already the champion"):
        promotion.rollback_champion(name, "to itself", to_version="1")


def test_gate_evidence_tags_come_from_the_predictions(tmp_path):
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("\n".join(json.dumps({"reference": str(i), "greedy_correct": i % 2 == 0}) for i in range(5)) + "\n")
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text('{"prompt": "1+1", "answer": "2"}\n')
    tags = promotion.gate_evidence_tags(predictions, eval_file)
    assert tags["eval.per_problem.pass_at_1"] == "10101"
    eval_file.write_text('{"prompt": "1+2", "answer": "3"}\n')
    assert promotion.gate_evidence_tags(predictions, eval_file)[EVAL_SET_TAG] != tags[EVAL_SET_TAG]
