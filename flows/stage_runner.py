"""Running one stage: in the flow's process, or as its own flow run (a Job on the GPU pool).

`stage(...)` is what the recipe calls: a Prefect task cached on the stage's key (config, input
digests, code), run here or handed to a deployment, as `execution` says. The `run-stage` flow
is the other end of that hand-over.

With `execution.mode: deployments` the `post-training` flow hands the stages named in
`execution.dispatched_stages` to this flow's deployment with `run_deployment` (a child flow run,
linked to the parent's task run) and waits. Artifacts cross between the two Jobs one of two ways:
- a shared volume (no `execution.exchange_uri`): the stage reads its inputs where the parent
  has them and writes its outputs and `result.json` under `out_dir`, which both Jobs mount;
- object storage (`execution.exchange_uri`, e.g. S3): the stage fetches its inputs into local
  scratch, runs there (its checkpoints mirrored to the store: flows.checkpoint_mirror) and
  publishes its outputs for the parent to fetch (flows.artifact_exchange).
Everything else (caching, lineage, MLflow) stays in the parent, so a dispatched stage behaves
exactly like an in-process one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, task
from pydantic import Field, field_validator

from components import accounting, live, stages
from components.artifacts import cache_key, digest_path
from components.config import StageResult, StrictModel
from flows.artifact_exchange import RESULT_FILE, ArtifactExchange, read_result, relocate, write_result
from flows.checkpoint_mirror import CheckpointMirror


class ExchangeRefs(StrictModel):
    """The object-storage side of a request: `inputs` and `out_dir` are then the parent's own paths."""

    uri: str = Field(min_length=1, description="execution.exchange_uri")
    inputs: dict[str, str] = Field(description="input name -> URL of its published copy (or a hub id)")
    out: str = Field(min_length=1, description="URL of the folder the stage publishes its outputs to")
    checkpoint_sync_seconds: float = Field(300, gt=0, description="how often training checkpoints are mirrored to the store")


class StageRequest(StrictModel):
    """One stage to run: the module, its config, its input artifacts and where its outputs go."""

    module: str = Field(description="the stage's name in the registry (components/stages.py)")
    config: dict[str, Any] = Field(description="the stage's config (its params.yaml section), validated by the stage")
    inputs: dict[str, str] = Field(description="input name -> path (or hub id) of each input artifact")
    out_dir: str = Field(min_length=1, description="output folder, on storage the parent can read (the checkpoints volume)")
    key: str = Field(pattern=r"^[0-9a-f]{64}$", description="the parent's cache key of this stage run (sha256 hex)")
    exchange: ExchangeRefs | None = Field(None, description="where inputs and outputs live in object storage, if not on a shared volume")
    stream: live.LiveTarget | None = Field(None, description="the MLflow run the parent opened for the stage: it streams its metrics there")
    threads: int | None = Field(None, ge=1, description="execution.torch_threads: torch's threads in the pod (None: its cores)")

    @field_validator("module")
    @classmethod
    def _registered(cls, name: str) -> str:
        try:
            stages.get(name)
        except KeyError as error:
            raise ValueError(error.args[0]) from None  # names the known stages
        return name


def run_metered(
    name: str, cfg, inputs: dict[str, str], out_dir: str, target: live.LiveTarget | None = None, threads: int | None = None
) -> StageResult:
    """The stage's entry function on `threads` torch threads, streaming to `target` while it trains.

    Its usage lands in `info["usage"]`, the settings its floating-point results depend on in `info["math"]`."""
    from components.modeling import configure_threads, math_settings

    configure_threads(threads)
    with live.streaming_to(target), accounting.metered() as usage:
        result = stages.get(name).entry_function()(cfg, inputs, out_dir)
    result.info["usage"] = usage.as_dict()
    result.info["math"] = math_settings()
    return result


def execute_stage(
    name: str,
    cfg,
    inputs: dict[str, str],
    out_dir: str,
    key: str,
    reuse: bool = True,
    target: live.LiveTarget | None = None,
    threads: int | None = None,
) -> StageResult:
    """Run the registered stage's entry function and mark its output folder complete with `result.json`.

    `out_dir` is keyed by the stage's cache key, so two pipelines with the same stage config
    meet here: a lock beside the folder lets one train while the other waits, and the waiter
    then reuses the finished result (unless `reuse` is off: a forced re-run). The lock is an
    flock, so a killed run releases it."""
    from filelock import FileLock

    spec = stages.get(name)
    spec.check_inputs(inputs)
    Path(out_dir).parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{out_dir}.lock")
    if lock.is_locked:
        print(f"[{name}] another run is working in {out_dir}: waiting for it")
    with lock:
        if reuse and completed_by(out_dir, key):
            print(f"[{name}] {out_dir} was completed by another run: reusing its result")
            return read_result(out_dir)
        result = run_metered(name, cfg, inputs, out_dir, target, threads)
        write_result(out_dir, key, result)
    return result


def completed_by(out_dir: str, key: str) -> bool:
    """Does `out_dir` hold a finished result of exactly this stage run (cache key `key`)?"""
    path = Path(out_dir) / RESULT_FILE
    return path.is_file() and json.loads(path.read_text()).get("key") == key


def execute_through_exchange(request: StageRequest, cfg) -> StageResult:
    """Fetch the inputs into scratch (under $TMPDIR), run the stage there, publish its outputs."""
    exchange = ArtifactExchange(request.exchange.uri)
    scratch = Path(tempfile.mkdtemp(prefix=f"posttrain-{request.module}-"))
    try:
        local_inputs = exchange.fetch_inputs(request.exchange.inputs, scratch)
        local_out = scratch / "out"
        # An earlier Job of this stage that died left its checkpoints in the store: resume there.
        mirror = CheckpointMirror(exchange, local_out, request.exchange.out)
        restored = mirror.restore()
        with mirror.running(request.exchange.checkpoint_sync_seconds):
            result = run_metered(request.module, cfg, local_inputs, str(local_out), request.stream, request.threads)
        result.info["restored_checkpoints"] = restored
        # Report paths as the parent will have them: its out_dir, its own input paths.
        path_map = {str(local_out): request.out_dir}
        path_map |= {local: request.inputs[name] for name, local in local_inputs.items() if local != request.inputs[name]}
        exchange.publish_outputs(local_out, request.exchange.out, request.key, result, path_map)
        mirror.clear()  # the published model supersedes them
        return relocate(result, path_map)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@flow(name="run-stage")
def run_stage_flow(request: StageRequest) -> dict:
    """Run one stage of the recipe (dispatched by `post-training`); returns its StageResult.

    Args:
        request: the stage module, its config, its inputs and its output folder
    """
    cfg = stages.get(request.module).config_class().model_validate(request.config)
    if request.exchange is not None:
        return execute_through_exchange(request, cfg).model_dump(mode="json")
    result = execute_stage(
        request.module, cfg, request.inputs, request.out_dir, request.key, target=request.stream, threads=request.threads
    )
    return result.model_dump(mode="json")


# ---------------------------------------------------------------- the orchestrator's side


class StageDispatchFailed(RuntimeError):
    """A stage handed to a deployment did not complete (or left no result where the parent can read it)."""


GPU_POOL_LIMIT = "gpu-pool"  # the global concurrency limit every dispatched GPU stage holds its GPUs of
LOG_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Dispatch:
    """Where a dispatched stage runs, and how its artifacts cross over."""

    deployment: str
    exchange: ArtifactExchange | None = None
    digests: dict[str, str] | None = None  # of the inputs: their content address in the exchange
    remote_out: str | None = None
    checkpoint_sync_seconds: float = 300
    timeout: float | None = None  # execution.timeout_for(stage): a hung Job fails the stage, not the whole night
    gpu_slots: int = 8  # execution.gpu_slots: the size of the `gpu-pool` limit when this run creates it

    def run(self, request: StageRequest, timeout: float | None = None) -> StageResult:
        timeout = timeout if timeout is not None else self.timeout
        if self.exchange is not None:
            published = self.exchange.publish_inputs(request.inputs, self.digests)
            refs = ExchangeRefs(
                uri=self.exchange.uri, inputs=published, out=self.remote_out, checkpoint_sync_seconds=self.checkpoint_sync_seconds
            )
            request = request.model_copy(update={"exchange": refs})
        resources = stages.get(request.module).resources
        with gpu_slots(resources.gpus if resources else 0, self.gpu_slots):
            return dispatch_stage(self.deployment, request, timeout)


@contextmanager
def gpu_slots(gpus: int, pool_size: int):
    """Hold `gpus` slots of the `gpu-pool` limit while a GPU stage runs: concurrent pipelines queue here, not on the nodes."""
    if gpus <= 0:
        yield
        return
    from prefect.concurrency.sync import concurrency

    from flows.registry_lock import ensure_limit

    ensure_limit(GPU_POOL_LIMIT, slots=pool_size)
    with concurrency(GPU_POOL_LIMIT, occupy=gpus, strict=True):
        yield


def dispatch_stage(deployment: str, request: StageRequest, timeout: float | None = None) -> StageResult:
    """Run the stage through `run_deployment`, relay its log, wait at most `timeout`; its result comes back through `out_dir` or the exchange."""
    from prefect.deployments import run_deployment

    resources = stages.get(request.module).resources
    job_variables = resources.job_variables() if resources else {}
    if timeout is not None:  # Kubernetes stops the Job too: a hung pod does not hold its GPU past the wait
        job_variables["active_deadline_seconds"] = int(timeout)
    child = run_deployment(
        name=deployment, parameters={"request": request.model_dump(mode="json")}, job_variables=job_variables or None, timeout=0
    )
    child = follow(child, request.module, timeout)
    if child.state and not child.state.is_final():
        raise StageDispatchFailed(
            f"{request.module}: flow run {child.name} of {deployment} still {child.state.name} after {timeout:.0f} s "
            "(execution.stage_timeout_seconds / stage_timeouts): the stage is failed here; cancel or inspect that run in the Prefect UI"
        )
    if not child.state or not child.state.is_completed():
        raise StageDispatchFailed(
            f"{request.module}: flow run {child.name} of {deployment} ended {child.state.name if child.state else 'unknown'}"
        )
    if request.exchange is not None:
        return ArtifactExchange(request.exchange.uri).fetch_outputs(request.exchange.out, request.out_dir)
    if not (Path(request.out_dir) / RESULT_FILE).is_file():
        raise StageDispatchFailed(
            f"{request.module}: {deployment} completed but wrote no {Path(request.out_dir) / RESULT_FILE}: "
            "is out_dir on storage both can read? (or set execution.exchange_uri)"
        )
    return read_result(request.out_dir)


def follow(child, module: str, timeout: float | None):
    """Wait for the child flow run to end (at most `timeout` s), relaying its log lines into this run's log.

    Returns the child as last read: still running if the timeout passed first."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    deadline = None if timeout is None else time.monotonic() + timeout
    relayed = 0
    with get_client(sync_client=True) as client:
        while True:
            child = client.read_flow_run(child.id)
            ended = child.state is not None and child.state.is_final()
            while True:  # the lines logged since the last look, a page at a time
                logs = client.read_logs(
                    LogFilter(flow_run_id=LogFilterFlowRunId(any_=[child.id])), sort=LogSort.TIMESTAMP_ASC, offset=relayed, limit=200
                )
                for line in logs:
                    _logger().log(line.level, "[%s, flow run %s] %s", module, child.name, line.message)
                relayed += len(logs)
                if len(logs) < 200:
                    break
            if ended or (deadline is not None and time.monotonic() >= deadline):
                return child
            time.sleep(LOG_POLL_SECONDS if deadline is None else max(0.0, min(LOG_POLL_SECONDS, deadline - time.monotonic())))


def _logger():
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:  # called outside a run (a test): the module's logger
        import logging

        return logging.getLogger(__name__)


def _stage_cache_key(context, parameters) -> str:
    return parameters["key"]


# log_prints stays off: `datasets` fingerprints functions through dill, which disassembles them
# into a captured stdout that Prefect's print-to-log hook would send to the run log instead.
@task(cache_key_fn=_stage_cache_key, persist_result=True, log_prints=False)
def run_stage(
    name: str,
    cfg,
    inputs: dict[str, str],
    out_dir: str,
    key: str,
    dispatch: Dispatch | None = None,
    reuse: bool = True,
    target: live.LiveTarget | None = None,
    threads: int | None = None,
) -> StageResult:
    """Run the stage here, or as a child flow run of a deployment (e.g. on the GPU pool)."""
    if dispatch is None:
        return execute_stage(name, cfg, inputs, out_dir, key, reuse=reuse, target=target, threads=threads)
    # The pod samples its own CPU, memory and GPU into the run: the orchestrator's would say nothing of it.
    target = target.model_copy(update={"system_metrics": True}) if target is not None else None
    request = StageRequest(
        module=name, config=cfg.model_dump(mode="json"), inputs=inputs, out_dir=out_dir, key=key, stream=target, threads=threads
    )
    return dispatch.run(request)


def stage(
    name: str,
    cfg,
    inputs: dict[str, str],
    execution,
    artifacts_dir: str,
    force: bool,
    label: str | None = None,
    target: live.LiveTarget | None = None,
):
    """Run the registered stage `name` as a cached task (under `label`, e.g. sft_round2); returns (result, from_cache).

    `target`: the MLflow run the stage streams its training metrics to (not part of the cache key)."""
    spec = stages.get(name)
    spec.check_inputs(inputs)
    digests = {k: input_digest(v) for k, v in inputs.items()}
    key = cache_key(label or name, cfg, digests, module=spec.module)
    relative_out = f"{label or name}/{key[:16]}"
    out_dir = str(Path(artifacts_dir) / relative_out)
    dispatch = dispatch_for(name, execution, digests, relative_out)
    # Outputs deleted since the cached run? The cached result would point at nothing: recompute.
    refresh = force or not outputs_present(out_dir, dispatch)
    # The limit stops a stage that runs here; a dispatched one is bounded by its wait (and its Job's deadline).
    in_process_limit = execution.timeout_for(name) if dispatch is None else None
    task_fn = run_stage.with_options(name=label or name, refresh_cache=refresh or None, timeout_seconds=in_process_limit)
    threads = execution.torch_threads
    state = task_fn(name, cfg, inputs, out_dir, key, dispatch=dispatch, reuse=not force, target=target, threads=threads, return_state=True)
    return state.result(), state.name == "Cached"


def dispatch_for(name: str, execution, digests: dict[str, str], relative_out: str) -> Dispatch | None:
    deployment = execution.deployment_for(name)
    if deployment is None:
        return None
    timeout, slots = execution.timeout_for(name), execution.gpu_slots
    if execution.exchange_uri is None:
        return Dispatch(deployment, timeout=timeout, gpu_slots=slots)
    exchange = ArtifactExchange(execution.exchange_uri)
    remote_out = exchange.output_uri(relative_out)
    return Dispatch(deployment, exchange, digests, remote_out, execution.checkpoint_sync_seconds, timeout, slots)


def outputs_present(out_dir: str, dispatch: Dispatch | None) -> bool:
    """The outputs are here, or (a new orchestrator pod) in the exchange, fetched now."""
    if (Path(out_dir) / RESULT_FILE).is_file():
        return True
    if dispatch is None or dispatch.exchange is None or not dispatch.exchange.has_outputs(dispatch.remote_out):
        return False
    dispatch.exchange.fetch_outputs(dispatch.remote_out, out_dir)
    return True


def input_digest(path_or_id: str) -> str:
    # A hub id (cluster profile) has no files here: its name is its identity.
    return digest_path(path_or_id) if Path(path_or_id).exists() else f"id:{path_or_id}"
