"""The `run-stage` flow: one stage of the recipe as its own flow run, e.g. a Job on the GPU pool.

With `execution.mode: deployments` the `post-training` flow hands the stages named in
`execution.dispatched_stages` to this flow's deployment with `run_deployment` (a child flow run,
linked to the parent's task run) and waits. The stage writes its outputs and `result.json`
under `out_dir`, which on a cluster is the shared checkpoints volume both Jobs mount; the
parent reads the result from there. Everything else (caching, lineage, MLflow) stays in the
parent, so a dispatched stage behaves exactly like an in-process one.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from pydantic import Field

from components.artifacts import write_json
from components.config import StageResult, StrictModel

STAGE_MODULES = ("validate", "base", "sft", "reward_model", "grpo", "rejection_sampling", "alignment", "distill", "evaluate")


class StageRequest(StrictModel):
    """One stage to run: the module, its config, its input artifacts and where its outputs go."""

    module: Literal[STAGE_MODULES] = Field(description="the stage module under components/")
    config: dict[str, Any] = Field(description="the stage's config (its params.yaml section), validated by the stage")
    inputs: dict[str, str] = Field(description="input name -> path (or hub id) of each input artifact")
    out_dir: str = Field(min_length=1, description="output folder, on storage the parent can read (the checkpoints volume)")
    key: str = Field(pattern=r"^[0-9a-f]{64}$", description="the parent's cache key of this stage run (sha256 hex)")


def execute_stage(module: str, cfg, inputs: dict[str, str], out_dir: str, key: str) -> StageResult:
    """Run `components.<module>.run` and mark its output folder complete with `result.json`."""
    stage = importlib.import_module(f"components.{module}")
    result = stage.run(cfg, inputs, out_dir)
    write_json(Path(out_dir) / "result.json", {"key": key, **result.model_dump(mode="json")})
    return result


@flow(name="run-stage")
def run_stage_flow(request: StageRequest) -> dict:
    """Run one stage of the recipe (dispatched by `post-training`); returns its StageResult.

    Args:
        request: the stage module, its config, its inputs and its output folder
    """
    stage = importlib.import_module(f"components.{request.module}")
    cfg = stage.Config.model_validate(request.config)
    return execute_stage(request.module, cfg, request.inputs, request.out_dir, request.key).model_dump(mode="json")
