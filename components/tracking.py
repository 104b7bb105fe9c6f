"""MLflow tracking: connecting to the server and the runs of a pipeline.

Stages return `StageResult`s and never log themselves; the orchestrating process calls these
helpers (and those of components.registry and components.promotion), so one process owns the
runs, the registry and the aliases. `_mlflow` is the one lazy import of MLflow they all share.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from components import plots

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

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


class TrackingUnavailable(RuntimeError):
    """The MLflow server did not answer, retries included."""


def lost_connection(error: BaseException) -> bool:
    """Is `error` an MLflow server that stopped answering (not a bad request)?"""
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import Timeout

    while error is not None:
        if isinstance(error, (RequestsConnectionError, Timeout, ConnectionError)) or "Max retries exceeded" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def bound_retries(max_retries: int, backoff_seconds: int, timeout_seconds: int) -> None:
    """How long an MLflow request may keep failing: MLflow's own defaults retry for ~4 minutes."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(max_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = str(backoff_seconds)
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout_seconds)


def setup(tracking_uri: str, experiment: str, artifact_location: str | None = None) -> str:
    """Point MLflow at `tracking_uri` and make sure `experiment` exists; returns its id.

    An MLflow that does not answer fails here, naming the server, before anything is trained."""
    mlflow = connect(tracking_uri)
    try:
        found = mlflow.get_experiment_by_name(experiment)
    except Exception as error:  # MlflowException or a requests error, depending on where it broke
        if not lost_connection(error):
            raise
        retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLflow's default")
        raise TrackingUnavailable(
            f"MLflow at {tracking_uri} did not answer ({retries} retries): {type(error).__name__}; "
            "start the server or set tracking.tracking_uri; nothing was trained or registered"
        ) from error
    experiment_id = found.experiment_id if found else _create_experiment(mlflow, experiment, artifact_location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _create_experiment(mlflow, experiment: str, artifact_location: str | None) -> str:
    """Create `experiment`, or take the one another pipeline created since we looked."""
    from mlflow.exceptions import MlflowException

    location = Path(artifact_location).resolve().as_uri() if artifact_location else None
    try:
        return mlflow.create_experiment(experiment, artifact_location=location)
    except MlflowException as error:
        # Two pipelines starting at once both find no experiment; the second create is refused.
        found = mlflow.get_experiment_by_name(experiment)
        if error.error_code != "RESOURCE_ALREADY_EXISTS" or found is None:
            raise
        return found.experiment_id


def lost_a_write_race(error: BaseException) -> bool:
    """Did the tracking server refuse a write because a concurrent one inserted the same row?

    MLflow's SQL stores check for a row, then insert it: two pipelines logging the same dataset
    (same experiment, name, digest) at once both insert, and the loser's unique-key violation
    comes back as a 400 that MLflow's client does not retry. Doing it again finds the row."""
    text = str(error).lower()
    return any(marker in text for marker in ("unique constraint", "duplicate key", "integrityerror"))


def retry_write_race(write, attempts: int = 4, pause_seconds: float = 0.5):
    """`write()`, done again (a few times, with a growing pause) while it loses a write race."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except Exception as error:
            if attempt == attempts or not lost_a_write_race(error):
                raise
            time.sleep(pause_seconds * attempt)


OWNER_HOST, OWNER_PID = "posttrain.host", "posttrain.pid"  # which process a parent run belongs to


@contextmanager
def pipeline_run(run_name: str, tags: Mapping[str, str], experiment_id: str) -> Iterator[str]:
    """The parent run of one pipeline execution; stages log into nested runs under it.

    A pipeline killed outright (SIGKILL, OOM, a pre-empted node) never ends its run, so each new
    one first ends, as KILLED, the runs that processes on this host left RUNNING and died."""
    mlflow = _mlflow()
    close_orphaned_runs(experiment_id)
    owner = {OWNER_HOST: socket.gethostname(), OWNER_PID: str(os.getpid())}
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags={**tags, **owner}) as run:
        yield run.info.run_id


def close_orphaned_runs(experiment_id: str) -> list[str]:
    """End as KILLED every RUNNING run (and its RUNNING children) of a dead process on this host."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    host = socket.gethostname()
    running = client.search_runs([experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.`{OWNER_HOST}` = '{host}'")
    closed = []
    for run in running:
        if _alive(int(run.data.tags.get(OWNER_PID, "0"))):
            continue
        children = client.search_runs(
            [experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.mlflow.parentRunId = '{run.info.run_id}'"
        )
        for orphan in [*children, run]:
            client.set_terminated(orphan.info.run_id, status="KILLED")
            closed.append(orphan.info.run_id)
        print(f"[tracking] run {run.info.run_id} was left RUNNING by a process that died (pid {run.data.tags.get(OWNER_PID)}): now KILLED")
    return closed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        pass
    return True


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


def in_a_run() -> bool:
    """Is an MLflow run active in this process (a pipeline's parent run)?"""
    return _mlflow().active_run() is not None


@contextmanager
def stage_run(name: str, system_metrics: bool = False) -> Iterator[str]:
    """A stage's nested run, open while the stage runs: its trainer streams there (components.live).

    `system_metrics`: MLflow samples this process's CPU, memory (and GPU) into it, which says
    something of the stage only when it runs in this process."""
    mlflow = _mlflow()
    with mlflow.start_run(run_name=name, nested=True, log_system_metrics=system_metrics) as run:
        yield run.info.run_id


def log_stage(
    result, cfg: BaseModel | None = None, cached: bool = False, name: str | None = None, artifacts: Mapping[str, str] | None = None
) -> str:
    """One nested run for a stage that already ran (see log_stage_result)."""
    with stage_run(name or result.stage) as run_id:
        log_stage_result(result, cfg, cached, artifacts)
        return run_id


def log_stage_result(
    result, cfg: BaseModel | None = None, cached: bool = False, artifacts: Mapping[str, str] | None = None, streamed: bool = False
) -> None:
    """Into the active stage run: its config, metrics, usage, curves (with a plot) and small artifacts.

    `artifacts` maps an artifact folder name to a local file or folder to upload there.
    `streamed`: the trainer logged its curves while it trained, on its global step; otherwise
    (a cached stage) they are replayed here, on the logging index.
    """
    mlflow = _mlflow()
    mlflow.set_tags({"stage": result.stage, "cached": str(cached).lower()})
    if cfg is not None:
        params = {k: str(v)[:MAX_PARAM_CHARS] for k, v in flatten("", cfg).items()}
        mlflow.log_params(params)
    metrics = {_metric_name(k): v for k, v in result.metrics.items() if _finite(v)}
    metrics["wall_seconds"] = result.wall_seconds
    usage = result.info.get("usage", {})
    metrics |= {f"usage.{k}": v for k, v in usage.items() if _finite(v)}
    mlflow.log_metrics(metrics)
    if usage:
        mlflow.set_tags({"usage.device": str(usage.get("device")), "usage.device_count": str(usage.get("device_count"))})
    if not streamed:
        for curve_name, values in result.curves.items():
            for step, value in enumerate(values):
                if _finite(value):
                    mlflow.log_metric(_metric_name(curve_name), value, step=step)
    if result.curves:
        mlflow.log_figure(plots.plot_curves(result.curves, title=result.stage), f"{result.stage}_curves.png")
    mlflow.log_dict({"outputs": result.outputs, "info": result.info}, "stage_result.json")
    for artifact_path, local in (artifacts or {}).items():
        log_report(local, artifact_path)


def log_datasets(datasets: Mapping[str, str], digests: Mapping[str, str], context: str) -> None:
    """`mlflow.log_input` for each dataset file on the active run: its path, our digest, its role.

    The run's Datasets panel then shows what the stage read (`context` "input") or wrote
    ("generated": rejection-sampled data, distillation traces), each named by its role."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    mlflow = _mlflow()
    for role, path in datasets.items():
        with warnings.catch_warnings():  # MLflow registers its local-file source for two schemes, and says so at each file
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
            source = resolve_dataset_source(str(Path(path).resolve()))
        dataset = MetaDataset(source, name=role, digest=digests[role][:16])
        tags = {"role": role, "digest": digests[role]}
        retry_write_race(lambda dataset=dataset, tags=tags: mlflow.log_input(dataset, context=context, tags=tags))


def tag_active_run(tags: Mapping[str, str]) -> None:
    _mlflow().set_tags({k: str(v) for k, v in tags.items()})


def log_summary(summary: Mapping[str, Any], path: str | Path) -> None:
    """The pipeline summary: a JSON artifact of the parent run, its headline metrics, a chart."""
    mlflow = _mlflow()
    mlflow.log_artifact(str(path))
    for stage, row in summary.get("stages", {}).items():
        for key, value in row.get("metrics", {}).items():
            if _finite(value):
                mlflow.log_metric(_metric_name(f"{stage}.{key}"), value)
    mlflow.log_figure(plots.plot_accuracy_by_stage(summary["stages"]), "accuracy_by_stage.png")


def log_report(path: str | Path, artifact_path: str) -> None:
    """A file or folder (e.g. the Great Expectations HTML report) on the active run."""
    mlflow = _mlflow()
    path = Path(path)
    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=artifact_path)
    elif path.is_file():
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


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


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metric_name(name: str) -> str:
    # MLflow allows alphanumerics, _ - . space / only; pass@1 -> pass_at_1
    return name.replace("@", "_at_")
