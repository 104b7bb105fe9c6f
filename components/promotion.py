"""The champion alias: the promotion gate applied to registered versions, manual promotion, rollback.

Registry policy: every registered version gets the `challenger` alias; `champion` moves only
when the new version passes the promotion gate (components.gate, which holds the decision
itself: a bootstrap CI over the per-problem scores, plus guard metrics; the first model wins),
or by hand (`promote_version`, `rollback_champion`). Every decision and reason is written as
version tags, so the registry explains itself.

Every champion move goes through one `set_registered_model_alias` call, made only after the
decision is computed and recorded, so no failure leaves a half-moved state. The version that
becomes champion through the gate or by hand records the one it replaced in
`champion.previous`: the chain a rollback walks back along.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from components import gate
from components.artifacts import digest_path, read_records
from components.registry import EVAL_SET_TAG, PER_PROBLEM_TAG, PREVIOUS_CHAMPION_TAG, RegistryError, get_version, update_model_card
from components.tracking import _metric_name

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class AliasDecision:
    version: str
    promoted: bool
    reason: str
    champion_before: str | None
    champion_after: str | None
    gate: dict[str, Any]  # the gate's details: method, CI, every reason

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def gate_evidence_tags(predictions: str | Path, eval_file: str | Path, metric: str = "pass@1") -> dict[str, str]:
    """Version tags that let a later gate compare this model problem by problem (paired).

    `predictions` is the evaluate stage's predictions.jsonl (one row per problem, `greedy_correct`
    is greedy pass@1); the eval set's identity is its file digest and how many problems were scored.
    """
    correct = [bool(row["greedy_correct"]) for row in read_records(predictions)]
    eval_set = hashlib.sha256(f"{digest_path(eval_file)}:{len(correct)}".encode()).hexdigest()
    return {PER_PROBLEM_TAG.format(metric=_metric_name(metric)): gate.encode_correctness(correct), EVAL_SET_TAG: eval_set}


def version_evidence(version, cfg, label: str):
    """What the gate needs to know about a registered version, read from its tags."""
    names = [cfg.metric, *(guard.metric for guard in cfg.guards), *(g.skip_if_champion_zero for g in cfg.guards if g.skip_if_champion_zero)]
    values = {n: _float(version.tags.get(f"metric.{_metric_name(n)}")) for n in names}
    metrics = {n: v for n, v in values.items() if v is not None and math.isfinite(v)}  # absent or NaN: not measured
    per_problem = gate.decode_correctness(version.tags.get(PER_PROBLEM_TAG.format(metric=_metric_name(cfg.metric))))
    return gate.Evidence(label, metrics, per_problem, version.tags.get(EVAL_SET_TAG))


def current_champion(name: str):
    from mlflow import MlflowClient

    try:
        return MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except Exception:  # no such alias (or model) yet
        return None


def apply_gate(name: str, version: str, cfg) -> AliasDecision:
    """Decide with the gate (`cfg`: components.gate.GateConfig), record why, then move the aliases.

    `challenger` always moves to `version`; `champion` only when the gate passes. The decision and
    each reason are `gate.*` version tags, written (and the model card rewritten) before any alias moves.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    challenger = get_version(name, version)
    champion = current_champion(name)
    champion_before = str(champion.version) if champion else None  # MLflow returns int or str versions
    if champion_before == str(version):
        # A re-run of the champion's own pipeline: keep the tags of the decision that made it champion.
        client.set_registered_model_alias(name, CHALLENGER, version)
        reason = f"version {version} is already the champion"
        return AliasDecision(str(version), True, reason, champion_before, champion_before, {"reasons": [reason]})
    champion_evidence = version_evidence(champion, cfg, f"champion v{champion_before}") if champion else None
    decision = gate.decide(cfg, version_evidence(challenger, cfg, f"challenger v{version}"), champion_evidence)
    _record_gate(client, name, str(version), decision, champion_before)
    update_model_card(name, str(version))  # the card now says what the gate decided, before any alias moves
    client.set_registered_model_alias(name, CHALLENGER, version)
    if decision.promoted:
        try:
            _move_champion(client, name, str(version), {PREVIOUS_CHAMPION_TAG: champion_before or "none"})
        except Exception as exc:  # the recorded decision must not claim a move that did not happen
            client.set_model_version_tag(name, str(version), "gate.decision", f"error: passed, but the champion alias did not move: {exc}")
            raise
    return AliasDecision(
        version=str(version),
        promoted=decision.promoted,
        reason=decision.reason,
        champion_before=champion_before,
        champion_after=str(version) if decision.promoted else champion_before,
        gate=decision.as_dict(),
    )


def _record_gate(client, name: str, version: str, decision, champion_before: str | None) -> None:
    tags = {
        "gate.decision": "promoted" if decision.promoted else "rejected",
        "gate.reason": decision.reason,
        "gate.reasons": json.dumps(decision.reasons),
        "gate.method": decision.method,
        "gate.metric": decision.metric,
        "gate.champion": champion_before or "none",
        "gate.guard_failures": ",".join(decision.guard_failures) or "none",
        "gate.decided_at": _now(),
    }
    for key in ("difference", "ci_low", "ci_high", "confidence"):
        value = getattr(decision, key)
        if value is not None:
            tags[f"gate.{key}"] = f"{value:.6f}"
    _set_tags(client, name, version, tags)


def promote_version(name: str, version: str, reason: str, record: Mapping[str, str] | None = None) -> AliasDecision:
    """Make `version` the champion by hand, past the gate; `reason` (and `record`) become `promotion.*` tags."""
    from mlflow import MlflowClient

    client = MlflowClient()
    get_version(name, version)  # fails clearly when it does not exist
    champion = current_champion(name)
    before = str(champion.version) if champion else None
    if before == str(version):
        return AliasDecision(str(version), False, f"version {version} is already the champion: nothing moved", before, before, {})
    tags = {"promotion.reason": reason, "promotion.previous_champion": before or "none", "promotion.at": _now()}
    tags.update({f"promotion.{k}": str(v) for k, v in (record or {}).items()})
    _set_tags(client, name, str(version), tags)
    _move_champion(client, name, str(version), {PREVIOUS_CHAMPION_TAG: before or "none"})
    return AliasDecision(str(version), True, f"promoted by hand: {reason}", before, str(version), {})


def rollback_champion(name: str, reason: str, to_version: str | None = None, record: Mapping[str, str] | None = None) -> AliasDecision:
    """Move `champion` back to the version the current champion replaced (or to `to_version`).

    The restored version keeps its own `champion.previous`, so a second rollback walks further
    back instead of bouncing between two versions. The demoted version gets `rollback.*` tags.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    champion = current_champion(name)
    if champion is None:
        raise RegistryError(f"model {name!r} has no champion: there is nothing to roll back")
    current = str(champion.version)
    target = str(to_version) if to_version is not None else champion.tags.get(PREVIOUS_CHAMPION_TAG, "none")
    if target == "none":
        raise RegistryError(
            f"champion v{current} of {name!r} replaced no earlier champion ({PREVIOUS_CHAMPION_TAG} is unset): "
            "give the version to roll back to"
        )
    if target == current:
        raise RegistryError(f"version {target} of {name!r} is already the champion: nothing to roll back")
    get_version(name, target)
    stamp = {"at": _now(), "reason": reason, **{k: str(v) for k, v in (record or {}).items()}}
    _set_tags(client, name, current, {"rollback.to": target, **{f"rollback.{k}": v for k, v in stamp.items()}})
    _set_tags(client, name, target, {"restored.from": current, **{f"restored.{k}": v for k, v in stamp.items()}})
    _move_champion(client, name, target, {})
    return AliasDecision(target, True, f"rolled back from v{current}: {reason}", current, target, {})


def champion_lineage(name: str) -> dict[str, str] | None:
    """The current champion's version and lineage tags (data version, params hash), or None."""
    champion = current_champion(name)
    if champion is None:
        return None
    return {"version": str(champion.version), **{key: champion.tags.get(key, "") for key in ("data_md5", "params_hash")}}


def _move_champion(client, name: str, version: str, tags: Mapping[str, str]) -> None:
    _set_tags(client, name, version, tags)
    client.set_registered_model_alias(name, CHAMPION, version)  # the one call that moves it


def _set_tags(client, name: str, version: str, tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
