"""The `post-training` Prefect flow: data -> validate -> base -> SFT -> evaluate -> register/promote.

Each stage is a Prefect task whose cache key is the stage's config, the digests of its input
artifacts and its code version, so a re-run with unchanged data and params recomputes nothing
(and, the model files being identical, registers nothing new). MLflow gets a parent run per
pipeline run and a nested run per stage; the final model is registered with its lineage and
the `champion` alias moves only past the promotion gate (components.gate).

    python -m flows.post_training --params params.yaml [--profile local] [--force]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from components import tracking
from components.artifacts import cache_key, digest_path, write_json
from components.config import ParamsError, StageResult
from components.versioning import git_commit, params_hash, track_data
from flows.params import PipelineParams, load_params
from flows.report import format_summary


class ValidationFailed(RuntimeError):
    """The data failed validation: nothing was trained, registered or promoted."""


# ---------------------------------------------------------------- stage tasks


def _stage_cache_key(context, parameters) -> str:
    return parameters["key"]


@task(cache_key_fn=_stage_cache_key, persist_result=True, log_prints=True)
def run_stage(module: str, cfg, inputs: dict[str, str], out_dir: str, key: str) -> StageResult:
    """Run `components.<module>.run` and mark its output folder complete."""
    stage = importlib.import_module(f"components.{module}")
    result = stage.run(cfg, inputs, out_dir)
    write_json(Path(out_dir) / "result.json", {"key": key, **result.model_dump(mode="json")})
    return result


def stage(module: str, cfg, inputs: dict[str, str], params: PipelineParams, force: bool, name: str | None = None):
    """Run one stage as a cached task; returns (result, served_from_cache)."""
    digests = {k: _digest(v) for k, v in inputs.items()}
    key = cache_key(name or module, cfg, digests, module=module)
    out_dir = str(Path(params.paths.artifacts_dir) / (name or module) / key[:16])
    # Outputs deleted since the cached run? The cached result would point at nothing: recompute.
    refresh = force or not (Path(out_dir) / "result.json").is_file()
    task_fn = run_stage.with_options(name=name or module, refresh_cache=refresh or None)
    state = task_fn(module, cfg, inputs, out_dir, key, return_state=True)
    return state.result(), state.name == "Cached"


def _digest(path_or_id: str) -> str:
    # A hub id (cluster profile) has no files here: its name is its identity.
    return digest_path(path_or_id) if Path(path_or_id).exists() else f"id:{path_or_id}"


@task(log_prints=True)
def prepare_data(params: PipelineParams) -> tuple[StageResult, dict[str, str]]:
    """Write the datasets and version them with DVC (cheap, so never cached)."""
    from components import data

    result = data.run(params.data)
    return result, track_data(result.outputs["data_dir"])


# ---------------------------------------------------------------- the flow


@flow(name="post-training", log_prints=True)
def post_training(params: PipelineParams = PipelineParams(), force: bool = False) -> dict:  # noqa: B008
    """Run the post-training recipe; returns the summary (also written to reports/summary.json).

    Args:
        params: every stage's knobs (the local profile by default), typed and bounded
        force: recompute every stage, ignoring the cache
    """
    logger = get_run_logger()
    started = time.perf_counter()
    tracking.setup(params.tracking.tracking_uri, params.tracking.experiment, params.tracking.artifact_location)
    lineage = {
        "params_hash": params_hash(params),
        "git_commit": git_commit(),
        "prefect_flow_run_id": str(flow_run.id or "none"),
        "profile": params.profile,
    }
    summary: dict = {"stages": {}, "lineage": lineage}
    with tracking.pipeline_run(f"post-training {flow_run.name or ''}".strip(), lineage) as parent_run_id:
        summary["mlflow_run_id"] = parent_run_id

        # ---- data + validation: nothing trains on data that failed its checks
        data_result, data_version = prepare_data(params)
        lineage.update(data_version)
        _record(summary, "data", data_result, cached=False, cfg=params.data)
        datasets = {k: v for k, v in data_result.outputs.items() if k != "data_dir"}
        validation, cached = stage("validate", params.validation, datasets, params, force)
        report_dir = str(Path(validation.outputs["report"]).parent)
        _record(summary, "validate", validation, cached, cfg=params.validation, artifacts={"validation_report": report_dir})
        lineage["validation_status"] = "passed" if validation.metrics.get("passed") else "failed"
        if not validation.metrics.get("passed"):
            _write_summary(summary, params, started)
            failures = "\n  ".join(validation.info.get("failures", [])[:10])
            raise ValidationFailed(f"data validation failed; nothing was trained or registered:\n  {failures}")

        # ---- base model, cold-start SFT, evaluation of both
        base_inputs = {"pretrain": datasets["pretrain"], "sft": datasets["sft"]} if params.base.source == "scratch" else {}
        base, cached = stage("base", params.base, base_inputs, params, force)
        _record(summary, "base", base, cached, cfg=params.base)
        _evaluate(summary, "base", base.outputs["model"], datasets, params, force)
        sft, cached = stage("sft", params.sft, {"model": base.outputs["model"], "sft": datasets["sft"]}, params, force)
        _record(summary, "sft", sft, cached, cfg=params.sft)
        final_eval = _evaluate(summary, "sft", sft.outputs["model"], datasets, params, force)

        # ---- register with lineage, then the alias gate
        lineage.update(
            model_digest=digest_path(sft.outputs["model"]),
            parent_model=f"base:{_digest(base.outputs['model'])[:16]} ({base.outputs['model']})",
        )
        name = params.tracking.registered_model
        # per-problem correctness on the eval set: what lets a later gate compare problem by problem
        evidence = tracking.gate_evidence_tags(final_eval.outputs["predictions"], datasets["eval"])
        version, created = tracking.register_model(sft.outputs["model"], name, {**lineage, **evidence}, final_eval.metrics)
        decision = tracking.apply_gate(name, version, params.promotion)
        summary["model"] = {"name": name, "version": version, "newly_registered": created, "path": sft.outputs["model"]}
        summary["alias"] = decision.as_dict()
        logger.info("model %s v%s: %s", name, version, decision.reason)
        path = _write_summary(summary, params, started)
        tracking.log_summary(summary, path)
    return summary


def _evaluate(summary: dict, label: str, model: str, datasets: dict, params: PipelineParams, force: bool) -> StageResult:
    inputs = {"model": model, "eval": datasets["eval"], "probe": datasets["probe"]}
    result, cached = stage("evaluate", params.evaluate, inputs, params, force, name=f"evaluate-{label}")
    tracking.log_stage(result, params.evaluate, cached, name=f"evaluate-{label}", artifacts={"predictions": result.outputs["predictions"]})
    row = summary["stages"][label]
    row["metrics"].update({f"eval.{k}": v for k, v in result.metrics.items()})
    row["wall_seconds"] += result.wall_seconds
    return result


def _record(summary: dict, label: str, result: StageResult, cached: bool, cfg=None, artifacts=None) -> None:
    tracking.log_stage(result, cfg, cached, name=label, artifacts=artifacts)
    summary["stages"][label] = {
        "metrics": dict(result.metrics),
        "wall_seconds": result.wall_seconds,
        "cached": cached,
        "outputs": result.outputs,
    }


def _write_summary(summary: dict, params: PipelineParams, started: float) -> Path:
    summary["pipeline_wall_seconds"] = time.perf_counter() - started
    return write_json(Path(params.paths.reports_dir) / "summary.json", summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the post-training pipeline once, in-process.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--force", action="store_true", help="recompute every stage, ignoring the cache")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params, args.profile)
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = post_training(params, force=args.force)
    except ValidationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    print(json.dumps({"summary": str(Path(params.paths.reports_dir) / "summary.json")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
