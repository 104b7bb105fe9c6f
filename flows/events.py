"""Prefect events the pipeline emits, so that automations can react to the registry and the data.

- `posttrain.model-version.created`: a model version was newly registered (registering identical
  files again creates nothing and emits nothing). Resource `mlflow.model-version.<name>.<version>`.
- `posttrain.promotion.promoted` / `posttrain.promotion.refused`: the gate moved `champion` to a
  version, or kept it where it was; the reason and both versions are in the payload.
- `posttrain.data.changed`: `dvc add` recorded a data md5 other than the one `data.dvc` held.

Every label is on the event's resource (what a trigger's `match` filters on, what its templates
read as `event.resource['posttrain.model.version']`); the longer facts are in the payload. The
triggers that use them: prefect.yaml (evaluate-model) and flows/automations.py (the webhook).

Emitting never fails the pipeline: without a reachable Prefect API, `emit_event` logs and drops.
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect.events import Event, emit_event

from components import promotion

MODEL_VERSION_CREATED = "posttrain.model-version.created"
PROMOTED = "posttrain.promotion.promoted"
REFUSED = "posttrain.promotion.refused"
DATA_CHANGED = "posttrain.data.changed"

# The version the gate judges is registered under the main name; the stages before it, and the
# distilled student, go to `<name>-<stage>`. Triggers match this role to skip the intermediates.
CANDIDATE, INTERMEDIATE = "candidate", "intermediate"


def model_version_id(name: str, version: str) -> str:
    return f"mlflow.model-version.{name}.{version}"


def model_version_resource(name: str, version: str, **labels: str) -> dict[str, str]:
    """The resource of an event about one registered version; `labels` are added as `posttrain.<key>`."""
    resource = {
        "prefect.resource.id": model_version_id(name, version),
        "prefect.resource.name": f"{name} v{version}",
        "posttrain.model.name": name,
        "posttrain.model.version": str(version),
    }
    return resource | {f"posttrain.{key.replace('_', '.')}": str(value) for key, value in labels.items()}


def model_version_created(name: str, version: str, stage: str, tracking) -> Event | None:
    """A newly registered version (`tracking`: flows.params.TrackingConfig, the registry it is in)."""
    role = CANDIDATE if name == tracking.registered_model else INTERMEDIATE
    resource = model_version_resource(name, version, model_stage=stage, model_role=role)
    return emit_event(MODEL_VERSION_CREATED, resource, payload={"tracking_uri": tracking.tracking_uri, "stage": stage})


def gate_decided(name: str, decision: promotion.AliasDecision, tracking) -> Event | None:
    """The gate's decision on `decision.version`: promoted, or refused with its reason.

    Nothing is emitted when the version already was the champion (a re-run of its own pipeline):
    nothing moved and nothing was refused.
    """
    if decision.champion_before == decision.version:
        return None
    champion = decision.champion_before or "none"
    alias = promotion.CHAMPION if decision.promoted else promotion.CHALLENGER
    resource = model_version_resource(name, decision.version, model_alias=alias, champion_version=champion)
    related = []
    if decision.champion_before:  # the first model has no champion to compare with
        related.append({"prefect.resource.id": model_version_id(name, decision.champion_before), "prefect.resource.role": "champion"})
    payload = {
        "reason": decision.reason,
        "challenger_version": decision.version,
        "champion_version": champion,
        "champion_after": decision.champion_after or "none",
        "reasons": list(decision.gate.get("reasons", [])),
        "method": decision.gate.get("method"),
        "tracking_uri": tracking.tracking_uri,
    }
    return emit_event(PROMOTED if decision.promoted else REFUSED, resource, related=related, payload=payload)


def data_versioned(previous_md5: str | None, facts: Mapping[str, str], datasets: Mapping[str, str], tracking) -> Event | None:
    """`posttrain.data.changed` when DVC recorded a new md5 for the data (`facts`: versioning.track_data's).

    Without DVC (a content digest, nothing recorded before) there is nothing to compare with: no event.
    The current champion of `tracking.registered_model`, when there is one, is a label: what an
    automation evaluates on the new data.
    """
    md5 = facts["data_md5"]
    if facts.get("data_versioned_by") != "dvc" or md5 == previous_md5:
        return None
    resource = {
        "prefect.resource.id": f"dvc.data.{md5}",
        "prefect.resource.name": facts.get("data_pointer", "data.dvc"),
        "posttrain.data.md5": md5,
        "posttrain.data.previous_md5": previous_md5 or "none",
        "posttrain.model.name": tracking.registered_model,
    }
    champion = promotion.current_champion(tracking.registered_model)  # None when there is none (or no registry)
    if champion is not None:
        resource["posttrain.champion.version"] = str(champion.version)
    payload = {"datasets": dict(datasets), "eval_data": datasets.get("eval", ""), "tracking_uri": tracking.tracking_uri}
    return emit_event(DATA_CHANGED, resource, payload=payload)
