"""The `run-stage` flow: one stage of the recipe as its own flow run, e.g. a Job on the GPU pool.

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

import importlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from pydantic import Field

from components.config import StageResult, StrictModel
from flows.artifact_exchange import ArtifactExchange, relocate, write_result
from flows.checkpoint_mirror import CheckpointMirror

STAGE_MODULES = ("validate", "base", "sft", "reward_model", "grpo", "rejection_sampling", "alignment", "distill", "evaluate")


class ExchangeRefs(StrictModel):
    """The object-storage side of a request: `inputs` and `out_dir` are then the parent's own paths."""

    uri: str = Field(min_length=1, description="execution.exchange_uri")
    inputs: dict[str, str] = Field(description="input name -> URL of its published copy (or a hub id)")
    out: str = Field(min_length=1, description="URL of the folder the stage publishes its outputs to")
    checkpoint_sync_seconds: float = Field(300, gt=0, description="how often training checkpoints are mirrored to the store")


class StageRequest(StrictModel):
    """One stage to run: the module, its config, its input artifacts and where its outputs go."""

    module: Literal[STAGE_MODULES] = Field(description="the stage module under components/")
    config: dict[str, Any] = Field(description="the stage's config (its params.yaml section), validated by the stage")
    inputs: dict[str, str] = Field(description="input name -> path (or hub id) of each input artifact")
    out_dir: str = Field(min_length=1, description="output folder, on storage the parent can read (the checkpoints volume)")
    key: str = Field(pattern=r"^[0-9a-f]{64}$", description="the parent's cache key of this stage run (sha256 hex)")
    exchange: ExchangeRefs | None = Field(None, description="where inputs and outputs live in object storage, if not on a shared volume")


def execute_stage(module: str, cfg, inputs: dict[str, str], out_dir: str, key: str) -> StageResult:
    """Run `components.<module>.run` and mark its output folder complete with `result.json`."""
    stage = importlib.import_module(f"components.{module}")
    result = stage.run(cfg, inputs, out_dir)
    write_result(out_dir, key, result)
    return result


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
            result = importlib.import_module(f"components.{request.module}").run(cfg, local_inputs, str(local_out))
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
    stage = importlib.import_module(f"components.{request.module}")
    cfg = stage.Config.model_validate(request.config)
    if request.exchange is not None:
        return execute_through_exchange(request, cfg).model_dump(mode="json")
    return execute_stage(request.module, cfg, request.inputs, request.out_dir, request.key).model_dump(mode="json")
