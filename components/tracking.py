"""MLflow: the one module that talks to the tracking server and the model registry.

Stages return `StageResult`s and never log themselves; the orchestrating process calls these
helpers, so one process owns the runs, the registry and the aliases.

Registry policy: every registered version gets the `challenger` alias; `champion` moves only
when the new version beats the current champion on the gate metric (the first one wins). The
decision and its reason are written as version tags, so the registry explains itself.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

CHAMPION, CHALLENGER = "champion", "challenger"
MAX_PARAM_CHARS = 6000


def _mlflow():
    import mlflow  # imported lazily: ~1.5 s, and CLIs that never log should not pay it

    return mlflow


def setup(tracking_uri: str, experiment: str, artifact_location: str | None = None) -> str:
    """Point MLflow at `tracking_uri` and make sure `experiment` exists; returns its id."""
    mlflow = _mlflow()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
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


@dataclass
class AliasDecision:
    version: str
    promoted: bool
    reason: str
    champion_before: str | None
    champion_after: str | None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def current_champion(name: str):
    from mlflow import MlflowClient

    try:
        return MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except Exception:  # no such alias (or model) yet
        return None


def promote_if_better(name: str, version: str, metric: str, value: float, min_improvement: float = 0.0) -> AliasDecision:
    """Set `challenger` on `version`; move `champion` to it only if it beats the champion."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_registered_model_alias(name, CHALLENGER, version)
    champion = current_champion(name)
    if champion is None:
        promoted, reason = True, f"first model: no champion yet ({metric}={value:.4f})"
    elif champion.version == version:
        promoted, reason = True, f"version {version} is already the champion"
    else:
        best = float(champion.tags.get(f"metric.{_metric_name(metric)}", "nan"))
        if math.isnan(best) or value > best + min_improvement:
            promoted = True
            reason = f"{metric} {value:.4f} beats champion v{champion.version} ({best:.4f}) by more than {min_improvement}"
        else:
            promoted = False
            reason = f"{metric} {value:.4f} does not beat champion v{champion.version} ({best:.4f}) by more than {min_improvement}"
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    decision = AliasDecision(
        version=version,
        promoted=promoted,
        reason=reason,
        champion_before=champion.version if champion else None,
        champion_after=version if promoted else (champion.version if champion else None),
    )
    client.set_model_version_tag(name, version, "gate.decision", "promoted" if promoted else "rejected")
    client.set_model_version_tag(name, version, "gate.reason", reason)
    return decision


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
    """Grouped bars: every held-out accuracy metric of every evaluated stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluated = {name: row["metrics"] for name, row in stages.items() if "eval.pass@1" in row.get("metrics", {})}
    keys = sorted({k for m in evaluated.values() for k in m if k.startswith(("eval.pass@", "eval.maj@"))})
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / max(1, len(keys))
    for i, key in enumerate(keys):
        xs = [j + i * width for j in range(len(evaluated))]
        ax.bar(xs, [m.get(key, 0.0) for m in evaluated.values()], width, label=key.removeprefix("eval."))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(evaluated))], list(evaluated))
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out accuracy")
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metric_name(name: str) -> str:
    # MLflow allows alphanumerics, _ - . space / only; pass@1 -> pass_at_1
    return name.replace("@", "_at_")
