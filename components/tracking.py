"""MLflow: the one module that talks to the tracking server and the model registry.

Stages return `StageResult`s and never log themselves; the orchestrating process calls these
helpers, so one process owns the runs, the registry and the aliases.

Registry policy: every registered version gets the `challenger` alias; `champion` moves only
when the new version passes the promotion gate (components.gate: a bootstrap CI over the
per-problem scores, plus guard metrics; the first model wins), or by hand (`promote_version`,
`rollback_champion`). Every decision and reason is written as version tags, so the registry
explains itself.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from components import gate
from components.artifacts import digest_path, read_records

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

CHAMPION, CHALLENGER = "champion", "challenger"
MAX_PARAM_CHARS = 6000


def _mlflow():
    import mlflow  # imported lazily: ~1.5 s, and CLIs that never log should not pay it

    return mlflow


def connect(tracking_uri: str):
    """Point MLflow's tracking and registry at `tracking_uri` (the registry flows need no experiment)."""
    mlflow = _mlflow()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow


def setup(tracking_uri: str, experiment: str, artifact_location: str | None = None) -> str:
    """Point MLflow at `tracking_uri` and make sure `experiment` exists; returns its id."""
    mlflow = connect(tracking_uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        location = Path(artifact_location).resolve().as_uri() if artifact_location else None
        experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
    else:
        experiment_id = found.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@contextmanager
def pipeline_run(run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """The parent run of one pipeline execution; stages log into nested runs under it."""
    mlflow = _mlflow()
    with mlflow.start_run(run_name=run_name, tags=dict(tags)) as run:
        yield run.info.run_id


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Nested config -> {"a.b.c": value} for MLflow params."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: value}


def log_stage(
    result, cfg: BaseModel | None = None, cached: bool = False, name: str | None = None, artifacts: Mapping[str, str] | None = None
) -> str:
    """One nested run for a stage: its config, metrics, curves (with a plot) and small artifacts.

    `artifacts` maps an artifact folder name to a local file or folder to upload there.
    """
    mlflow = _mlflow()
    with mlflow.start_run(run_name=name or result.stage, nested=True) as run:
        mlflow.set_tags({"stage": result.stage, "cached": str(cached).lower()})
        if cfg is not None:
            params = {k: str(v)[:MAX_PARAM_CHARS] for k, v in flatten("", cfg).items()}
            mlflow.log_params(params)
        metrics = {_metric_name(k): v for k, v in result.metrics.items() if _finite(v)}
        metrics["wall_seconds"] = result.wall_seconds
        mlflow.log_metrics(metrics)
        for curve_name, values in result.curves.items():
            for step, value in enumerate(values):
                if _finite(value):
                    mlflow.log_metric(_metric_name(curve_name), value, step=step)
        if result.curves:
            mlflow.log_figure(plot_curves(result.curves, title=name or result.stage), f"{result.stage}_curves.png")
        mlflow.log_dict({"outputs": result.outputs, "info": result.info}, "stage_result.json")
        for artifact_path, local in (artifacts or {}).items():
            log_report(local, artifact_path)
        return run.info.run_id


def log_summary(summary: Mapping[str, Any], path: str | Path) -> None:
    """The pipeline summary: a JSON artifact of the parent run, its headline metrics, a chart."""
    mlflow = _mlflow()
    mlflow.log_artifact(str(path))
    for stage, row in summary.get("stages", {}).items():
        for key, value in row.get("metrics", {}).items():
            if _finite(value):
                mlflow.log_metric(_metric_name(f"{stage}.{key}"), value)
    mlflow.log_figure(plot_accuracy_by_stage(summary["stages"]), "accuracy_by_stage.png")


def log_report(path: str | Path, artifact_path: str) -> None:
    """A file or folder (e.g. the Great Expectations HTML report) on the active run."""
    mlflow = _mlflow()
    path = Path(path)
    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=artifact_path)
    elif path.is_file():
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


# ---------------------------------------------------------------- registry


def find_version_by_digest(name: str, model_digest: str):
    """The registered version of `name` built from exactly these model files, if any."""
    from mlflow import MlflowClient

    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except Exception:  # registered model does not exist yet
        return None
    matches = [v for v in versions if v.tags.get("model_digest") == model_digest]
    return max(matches, key=lambda v: int(v.version)) if matches else None


def register_model(model_dir: str, name: str, tags: Mapping[str, str], metrics: Mapping[str, float]):
    """Log the HF model to the active run and register it with lineage tags.

    Idempotent: a model whose files were registered before returns that version, so a re-run
    served from cache registers nothing new. Returns (version, created).
    """
    mlflow = _mlflow()
    from mlflow import MlflowClient

    existing = find_version_by_digest(name, tags["model_digest"])
    if existing is not None:
        return existing.version, False
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    info = mlflow.transformers.log_model(
        transformers_model={"model": model, "tokenizer": tokenizer},
        name="model",
        task="text-generation",
        registered_model_name=name,
        # Pinned explicitly: MLflow's inference of them imports torchvision, which we don't ship.
        pip_requirements=_serving_requirements(),
    )
    client = MlflowClient()
    version = str(info.registered_model_version)
    for key, value in {**tags, **{f"metric.{_metric_name(k)}": str(v) for k, v in metrics.items()}}.items():
        client.set_model_version_tag(name, version, key, str(value))
    return version, True


def _serving_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{package}=={version(package).split('+')[0]}" for package in ("torch", "transformers", "tokenizers", "accelerate")]


# ---------------------------------------------------------------- the promotion gate and the champion alias
#
# Every champion move goes through one `set_registered_model_alias` call, made only after the
# decision is computed and recorded, so no failure leaves a half-moved state. The version that
# becomes champion through the gate or by hand records the one it replaced in
# `champion.previous`: the chain a rollback walks back along.

PER_PROBLEM_TAG = "eval.per_problem.{metric}"  # '0'/'1' per eval problem (components.gate.encode_correctness)
EVAL_SET_TAG = "eval.set_digest"  # which problems those are: a paired gate needs the same ones
PREVIOUS_CHAMPION_TAG = "champion.previous"


class RegistryError(RuntimeError):
    """A registry request names something that does not exist, or cannot be done; the message says which."""


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
    names = [cfg.metric, *(guard.metric for guard in cfg.guards)]
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
    each reason are `gate.*` version tags, written before any alias moves.
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


def get_version(name: str, version: str):
    """The model version, or a RegistryError that names what exists."""
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient

    client = MlflowClient()
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        pass
    try:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    except MlflowException:
        versions = []
    if not versions:
        raise RegistryError(f"no registered model named {name!r} (or it has no versions)") from None
    raise RegistryError(f"model {name!r} has no version {version} (existing versions: {', '.join(map(str, versions))})") from None


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


# ---------------------------------------------------------------- evaluating registered models


class RegistryLookupError(LookupError):
    """A registered model, version or alias does not exist; the message says what does."""


def resolve_model_version(name: str, version: str | None = None, alias: str | None = None):
    """The registry's ModelVersion for `name` at `version` or `alias` (exactly one), or a clear error."""
    from mlflow.exceptions import MlflowException

    if (version is None) == (alias is None):
        raise ValueError(f"model {name!r}: give exactly one of version or alias")
    client = _mlflow().MlflowClient()
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        known = ", ".join(sorted(m.name for m in client.search_registered_models())) or "none"
        raise RegistryLookupError(f"no registered model named {name!r} at {_mlflow().get_registry_uri()} (registered: {known})") from None
    try:
        return client.get_model_version(name, version) if version is not None else client.get_model_version_by_alias(name, alias)
    except MlflowException:
        if version is not None:
            versions = ", ".join(sorted((str(v.version) for v in client.search_model_versions(f"name = '{name}'")), key=int)) or "none"
            raise RegistryLookupError(f"model {name!r} has no version {version!r} (versions: {versions})") from None
        aliases = ", ".join(sorted(registered.aliases)) or "none"
        raise RegistryLookupError(f"model {name!r} has no alias {alias!r} (aliases: {aliases})") from None


def download_model_version(name: str, version: str, dst: str | Path) -> Path:
    """Download a registered version and return a folder transformers can load model + tokenizer from.

    `mlflow.transformers` stores the weights under `model/` and the tokenizer under
    `components/tokenizer/` (per the MLmodel file); they are merged into `model/`. A version
    logged as a plain HF folder is returned as is.
    """
    import shutil

    import yaml

    root = Path(_mlflow().artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(dst)))
    mlmodel = root / "MLmodel"
    flavor = yaml.safe_load(mlmodel.read_text()).get("flavors", {}).get("transformers") if mlmodel.is_file() else None
    if not flavor:
        return root
    model_dir = root / flavor.get("model_binary", "model")
    for component in flavor.get("components", []):
        for file in (root / "components" / component).iterdir():
            if file.is_file() and not (model_dir / file.name).exists():
                shutil.copy2(file, model_dir / file.name)
    return model_dir


def log_evaluation(
    result,
    cfg: BaseModel,
    run_name: str,
    tags: Mapping[str, str],
    curve: Mapping[str, list[float]],
    report_dir: str | Path,
    extra_metrics: Mapping[str, float] | None = None,
) -> str:
    """One run for an evaluation: config, metrics, the scaling curve (step = N), the report folder, predictions."""
    mlflow = _mlflow()
    with mlflow.start_run(run_name=run_name, tags={"stage": "evaluate", **tags}) as run:
        mlflow.log_params({k: str(v)[:MAX_PARAM_CHARS] for k, v in flatten("", cfg).items()})
        metrics = {**result.metrics, **(extra_metrics or {}), "wall_seconds": result.wall_seconds}
        mlflow.log_metrics({_metric_name(k): v for k, v in metrics.items() if _finite(v)})
        for series, values in curve.items():
            if series != "n":
                for n, value in zip(curve["n"], values, strict=True):
                    mlflow.log_metric(_metric_name(f"tts.{series.removesuffix('@N')}"), value, step=int(n))
        log_report(report_dir, "report")
        for name in ("predictions", "tts_curve", "metrics"):
            if name in result.outputs:
                log_report(result.outputs[name], "evaluation")
        return run.info.run_id


def tag_model_version(name: str, version: str, metrics: Mapping[str, float], extra: Mapping[str, str]) -> None:
    """`eval.<metric>` tags (and `extra`) on a model version: the registry shows how it evaluated."""
    from mlflow import MlflowClient

    client = MlflowClient()
    tags = {f"eval.{_metric_name(k)}": f"{v:.6g}" for k, v in metrics.items() if _finite(v)} | dict(extra)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


# ---------------------------------------------------------------- plots


def plot_curves(curves: Mapping[str, list[float]], title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        ax.plot(range(len(values)), values, label=name)
    ax.set_title(title)
    ax.set_xlabel("logging step")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_accuracy_by_stage(stages: Mapping[str, Any]):
    """The summary's evaluated stages as eval_report's grouped bars of held-out accuracy."""
    from components.eval_report import plot_accuracy_by_stage as grouped_bars

    evaluated = {
        name: {k.removeprefix("eval."): v for k, v in row["metrics"].items() if k.startswith("eval.")}
        for name, row in stages.items()
        if "eval.pass@1" in row.get("metrics", {})
    }
    return grouped_bars(evaluated)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metric_name(name: str) -> str:
    # MLflow allows alphanumerics, _ - . space / only; pass@1 -> pass_at_1
    return name.replace("@", "_at_")
