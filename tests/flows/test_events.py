"""The pipeline's Prefect events without a server: their names and labels, where the flow emits them,
and prefect.yaml's triggers rendered against them (what the server's automation would pass)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
import yaml
from prefect.events import Event

from components import promotion
from components.promotion import AliasDecision
from flows import events
from flows.params import TrackingConfig

TRACKING = TrackingConfig(tracking_uri="sqlite:///tmp/mlflow.db", registered_model="r1-test")


@pytest.fixture
def emitted(monkeypatch) -> list[Event]:
    """flows.events' emit_event replaced by one that builds the Event (so its schema is checked) and keeps it."""
    kept: list[Event] = []

    def emit_event(event, resource, related=None, payload=None):
        kept.append(Event(event=event, resource=resource, related=related or [], payload=payload or {}))
        return kept[-1]

    monkeypatch.setattr(events, "emit_event", emit_event)
    return kept


def decision(promoted: bool, version="3", before: str | None = "2") -> AliasDecision:
    reason = "promoted: CI above 0" if promoted else "refused: the CI of the difference includes 0"
    return AliasDecision(version, promoted, reason, before, version if promoted else before, {"reasons": [reason], "method": "paired"})


def test_a_new_version_of_the_main_model_is_a_candidate_and_intermediates_are_not(emitted):
    events.model_version_created("r1-test", "4", "grpo", TRACKING)
    events.model_version_created("r1-test-sft", "2", "sft", TRACKING)
    final, sft = emitted
    assert final.event == sft.event == "posttrain.model-version.created"
    assert final.resource.id == "mlflow.model-version.r1-test.4"
    labels = dict(final.resource.items())
    assert labels["posttrain.model.name"] == "r1-test" and labels["posttrain.model.version"] == "4"
    assert labels["posttrain.model.stage"] == "grpo" and labels["posttrain.model.role"] == "candidate"
    assert sft.resource["posttrain.model.role"] == "intermediate"
    assert final.payload["tracking_uri"] == TRACKING.tracking_uri


def test_a_refused_promotion_carries_the_reason_and_both_versions(emitted):
    events.gate_decided("r1-test", decision(promoted=False), TRACKING)
    (event,) = emitted
    assert event.event == "posttrain.promotion.refused"
    assert event.resource.id == "mlflow.model-version.r1-test.3"
    assert event.resource["posttrain.model.alias"] == "challenger" and event.resource["posttrain.champion.version"] == "2"
    assert event.payload["reason"] == "refused: the CI of the difference includes 0"
    assert (event.payload["challenger_version"], event.payload["champion_version"]) == ("3", "2")
    assert [(r.id, r.role) for r in event.related] == [("mlflow.model-version.r1-test.2", "champion")]


def test_a_promotion_is_an_event_and_a_rerun_of_the_champion_is_none(emitted):
    events.gate_decided("r1-test", decision(promoted=True), TRACKING)
    events.gate_decided("r1-test", decision(promoted=True, version="1", before=None), TRACKING)  # the first model
    assert events.gate_decided("r1-test", decision(promoted=True, version="3", before="3"), TRACKING) is None
    promoted, first = emitted
    assert promoted.event == first.event == "posttrain.promotion.promoted"
    assert promoted.resource["posttrain.model.alias"] == "champion" and promoted.payload["champion_after"] == "3"
    assert first.resource["posttrain.champion.version"] == "none" and not first.related


def test_data_changed_only_when_dvc_records_another_md5(emitted, monkeypatch):
    monkeypatch.setattr(promotion, "current_champion", lambda name: SimpleNamespace(version=7) if name == "r1-test" else None)
    dvc = {"data_md5": "new.dir", "data_versioned_by": "dvc", "data_pointer": "/p/data.dvc"}
    datasets = {"eval": "data/eval.jsonl", "sft": "data/sft.jsonl"}
    assert events.data_versioned("new.dir", dvc, datasets, TRACKING) is None  # unchanged
    assert events.data_versioned(None, {"data_md5": "sha256:ab", "data_versioned_by": "content-digest"}, datasets, TRACKING) is None
    events.data_versioned("old.dir", dvc, datasets, TRACKING)
    (event,) = emitted
    assert event.event == "posttrain.data.changed" and event.resource.id == "dvc.data.new.dir"
    assert event.resource["posttrain.data.previous_md5"] == "old.dir" and event.resource["posttrain.champion.version"] == "7"
    assert event.payload["eval_data"] == "data/eval.jsonl"


def test_the_flow_emits_at_registration_and_at_the_gate(emitted, monkeypatch):
    """The one-line hooks in flows/post_training.py: a new version (not a re-registration), the gate's decision."""
    from contextlib import nullcontext

    from flows import post_training
    from flows.params import PipelineParams
    from flows.report import RunSummary, StageRow

    params = PipelineParams.model_validate({"tracking": {"registered_model": "r1-test"}})
    monkeypatch.setattr(post_training, "registry_lock", lambda name: nullcontext())
    monkeypatch.setattr(post_training, "digest_path", lambda path: "d" * 64)
    created = iter([("5", True), ("5", False)])
    monkeypatch.setattr(post_training.registry, "register_model", lambda *args, **kwargs: next(created))
    monkeypatch.setattr(post_training.promotion, "apply_gate", lambda name, version, cfg: decision(False, version, "4"))
    summary = RunSummary(lineage={})
    summary.stages["sft"] = StageRow()
    recipe = post_training.Recipe(summary, {}, params, force=False)
    model = post_training.Model("sft", "/m", parent=None)
    recipe.register(model, "r1-test")
    recipe.register(model, "r1-test")  # identical files: the same version, no second event
    post_training.gate("r1-test", "5", params)
    assert [e.event for e in emitted] == ["posttrain.model-version.created", "posttrain.promotion.refused"]


def test_the_previous_data_md5_is_read_from_the_pointer_before_dvc_add(tmp_path):
    from components.versioning import recorded_data_md5

    (tmp_path / ".dvc").mkdir()
    (tmp_path / "data").mkdir()
    assert recorded_data_md5(tmp_path / "data") is None  # never added
    (tmp_path / "data.dvc").write_text("outs:\n- md5: abc.dir\n  path: data\n")
    assert recorded_data_md5(tmp_path / "data") == "abc.dir"
    assert recorded_data_md5(tmp_path.parent / "elsewhere") is None  # outside any DVC repository


# ---------------------------------------------------------------- prefect.yaml


def deployment(name: str) -> dict:
    spec = yaml.safe_load(Path("prefect.yaml").read_text())
    return next(d for d in spec["deployments"] if d["name"] == name)


def test_schedules_are_deployed_inactive():
    spec = yaml.safe_load(Path("prefect.yaml").read_text())
    schedules = [s for d in spec["deployments"] for s in d.get("schedules") or []]
    assert schedules and all(s["active"] is False for s in schedules)


def render(template, event: Event):
    """A trigger's parameters rendered as the server does for this event (Jinja over `event`)."""
    if isinstance(template, dict):
        return {key: render(value, event) for key, value in template.items()}
    return jinja2.Template(template).render(event=event)


def matches(trigger: dict, event: Event) -> bool:
    from prefect.server.events.schemas.events import ResourceSpecification

    return event.event in trigger["expect"] and ResourceSpecification(trigger["match"]).matches(event.resource)


def test_evaluate_model_triggers_turn_the_events_into_valid_parameters(emitted, monkeypatch):
    from prefect.cli.deploy._triggers import _initialize_deployment_triggers

    from flows.evaluate_model import EvaluateModelParams

    spec = deployment("evaluate-model")
    new_version, new_data = spec["triggers"]
    assert len(_initialize_deployment_triggers("evaluate-model", [dict(t) for t in spec["triggers"]])) == 2  # what `prefect deploy` parses

    events.model_version_created("r1-test", "4", "grpo", TRACKING)
    events.model_version_created("r1-test-sft", "2", "sft", TRACKING)
    candidate, intermediate = emitted
    assert matches(new_version, candidate) and not matches(new_version, intermediate)
    params = EvaluateModelParams(**render(new_version["parameters"]["params"], candidate))
    assert (params.model_name, params.version, params.tracking_uri) == ("r1-test", "4", TRACKING.tracking_uri)

    monkeypatch.setattr(promotion, "current_champion", lambda name: SimpleNamespace(version=3))
    dvc = {"data_md5": "new.dir", "data_versioned_by": "dvc", "data_pointer": "data.dvc"}
    changed = events.data_versioned("old.dir", dvc, {"eval": "data/eval.jsonl"}, TRACKING)
    assert matches(new_data, changed) and not matches(new_data, candidate)
    params = EvaluateModelParams(**render(new_data["parameters"]["params"], changed))
    assert (params.model_name, params.version, params.eval_data) == ("r1-test", "3", "data/eval.jsonl")

    monkeypatch.setattr(promotion, "current_champion", lambda name: None)
    assert not matches(new_data, events.data_versioned("old.dir", dvc, {"eval": "e"}, TRACKING)), "no champion: nothing to evaluate"
