"""The `evaluate-model` Prefect flow: evaluate one registered model version and record it.

Resolves `models:/NAME/VERSION` or `models:/NAME@ALIAS` in the MLflow registry, downloads the
version, runs the evaluate stage on it (with a reward model: best-of-N, weighted majority and
the reward metrics; with a base model: forgetting), then logs one MLflow run tagged with the
model name and version (metrics, the test-time-scaling curve with step = N, the markdown
report and its plots, the predictions) and tags the version `eval.<metric>`.

    python -m flows.evaluate_model --model r1-tiny-math --alias champion \\
        [--reward-model PATH|models:/NAME@ALIAS] [--base-model PATH|models:/NAME/VERSION] [--evaluate-base]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run
from pydantic import Field, ValidationError, model_validator

from components import eval_report, evaluate, registry, tracking
from components.artifacts import DataError, read_records
from components.config import ParamsError, StageResult, StrictModel, load_section
from components.evaluate import EvaluateConfig
from flows.params import TrackingConfig

DOWNLOAD_DONE = ".downloaded"


def _exactly_one_of_version_or_alias(name: str | None, version: str | None, alias: str | None, field: str) -> None:
    if version is None and alias is None:
        raise ValueError(f"{field}: give exactly one of `version` or `alias` for model {name!r} (got neither)")
    if version is not None and alias is not None:
        raise ValueError(
            f"{field}: give exactly one of `version` or `alias` for model {name!r} (got version={version!r} and alias={alias!r})"
        )


class ModelRef(StrictModel):
    """A model in the MLflow registry (name + version or alias), or a local Hugging Face folder (path)."""

    name: str | None = Field(None, min_length=1, description="registered model name")
    version: str | None = Field(None, pattern=r"^\d+$", description="registered version number")
    alias: str | None = Field(None, min_length=1, description="registered alias, e.g. champion")
    path: str | None = Field(None, min_length=1, description="a local Hugging Face model folder, instead of a registered model")

    @model_validator(mode="after")
    def _one_source(self) -> ModelRef:
        if (self.name is None) == (self.path is None):
            raise ValueError("give either `name` (with `version` or `alias`) or `path`")
        if self.path is not None and (self.version or self.alias):
            raise ValueError("`version` and `alias` go with `name`, not with `path`")
        if self.name is not None:
            _exactly_one_of_version_or_alias(self.name, self.version, self.alias, "name")
        return self

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """`models:/NAME/VERSION`, `models:/NAME@ALIAS`, or a path."""
        match = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@(.+))", text)
        if text.startswith("models:/") and not match:
            raise ValueError(f"{text!r}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
        return cls(name=match[1], version=match[2], alias=match[3]) if match else cls(path=text)

    def label(self) -> str:
        if self.path is not None:
            return self.path
        return f"models:/{self.name}/{self.version}" if self.version else f"models:/{self.name}@{self.alias}"


class EvaluateModelParams(StrictModel):
    """What to evaluate (a registered model at a version or alias), on what, with what."""

    model_name: str = Field(..., min_length=1, description="registered model name, e.g. r1-tiny-math")
    version: str | None = Field(None, pattern=r"^\d+$", description="version number (or give alias)")
    alias: str | None = Field(None, min_length=1, description="alias, e.g. champion or challenger (or give version)")
    tracking_uri: str = Field(TrackingConfig().tracking_uri, description="MLflow tracking and registry URI")
    artifact_location: str | None = Field(TrackingConfig().artifact_location, description="where a new experiment stores artifacts")
    experiment: str = Field("evaluation", min_length=1, description="MLflow experiment of the evaluation runs")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    eval_data: str = Field("data/eval.jsonl", description="held-out problems (prompt + answer)")
    probe_data: str | None = Field("data/probe.jsonl", description="base-capability probe; needed for forgetting")
    reward_model: ModelRef | None = Field(None, description="reward model for best-of-N, weighted majority and the reward metrics")
    base_model: ModelRef | None = Field(None, description="the model this one was trained from, for forgetting")
    evaluate_base: bool = Field(
        False, description="evaluate the base model fully too (one more evaluation): adds the accuracy-by-stage table and plot"
    )
    out_dir: str = Field("artifacts/evaluate-model", description="downloads and evaluation outputs")
    tag_version: bool = Field(True, description="write eval.<metric> tags on the model version")

    @model_validator(mode="after")
    def _check(self) -> EvaluateModelParams:
        _exactly_one_of_version_or_alias(self.model_name, self.version, self.alias, "version/alias")
        if self.evaluate_base and self.base_model is None:
            raise ValueError("evaluate_base: set base_model too (the model to compare against)")
        if self.base_model is not None and self.probe_data is None:
            raise ValueError("base_model: forgetting is measured on the probe set; set probe_data")
        return self

    def target(self) -> ModelRef:
        return ModelRef(name=self.model_name, version=self.version, alias=self.alias)


# ---------------------------------------------------------------- tasks


@task
def fetch_model(ref: ModelRef, downloads: str) -> tuple[str, str | None]:
    """A local folder for `ref` (downloaded once per version), and its registered version if any."""
    if ref.path is not None:
        if not Path(ref.path).is_dir():
            raise FileNotFoundError(f"model path {ref.path!r} is not a folder")
        return ref.path, None
    version = str(registry.resolve_model_version(ref.name, ref.version, ref.alias).version)
    target = Path(downloads) / ref.name / version
    marker = target / DOWNLOAD_DONE  # holds the model folder, relative to target
    if not marker.is_file():  # a version's files never change: reuse a finished download
        model_dir = registry.download_model_version(ref.name, version, target)
        marker.write_text(os.path.relpath(model_dir, target))
    return str(target / marker.read_text()), version


@task
def run_evaluation(cfg: EvaluateConfig, inputs: dict[str, str], out_dir: str) -> StageResult:
    return evaluate.run(cfg, inputs, out_dir)


# ---------------------------------------------------------------- the flow


@flow(name="evaluate-model", log_prints=True)
def evaluate_model(params: EvaluateModelParams) -> dict:
    """Evaluate a registered model version; returns its metrics, MLflow run id and report path.

    Args:
        params: which registered version (by version or alias), the evaluation settings, and the
            optional reward model and base model for best-of-N and forgetting
    """
    for path in (params.eval_data, params.probe_data):  # fail before any download
        if path is not None and not Path(path).is_file():
            raise DataError(f"dataset file not found: {path}")
    tracking.setup(params.tracking_uri, params.experiment, params.artifact_location)
    downloads = str(Path(params.out_dir) / "models")
    model_dir, version = fetch_model(params.target(), downloads)
    label = f"{params.model_name} v{version}"
    work = Path(params.out_dir) / "runs" / f"{params.model_name}-v{version}-{_run_stamp()}"

    inputs, results = prepare_inputs(params, model_dir, downloads, work)
    result = run_evaluation(params.evaluate, inputs, str(work / "model"))
    results[label] = result.metrics
    curve = json.loads(Path(result.outputs["tts_curve"]).read_text())
    rows = read_records(result.outputs["predictions"])  # per problem: the reliability diagram and the curve's bands
    report = eval_report.write_stage_report(
        results, work / "report", curve, title=label, facts=describe_run(params, version, result), rows=rows
    )

    base_metrics = {f"base.{k}": v for k, v in results.get("base", {}).items()}
    run_id = tracking.log_evaluation(
        result, params.evaluate, f"evaluate {label}", run_tags(params, version), curve, report.parent, base_metrics
    )
    if params.tag_version:
        registry.tag_model_version(params.model_name, version, result.metrics, {"eval.run_id": run_id})
    get_run_logger().info("%s: pass@1 %.3f, report %s, MLflow run %s", label, result.metrics["pass@1"], report, run_id)
    return {
        "model": {"name": params.model_name, "version": version, "alias": params.alias},
        "metrics": result.metrics,
        "mlflow_run_id": run_id,
        "report": str(report),
    }


def prepare_inputs(params: EvaluateModelParams, model_dir: str, downloads: str, work: Path) -> tuple[dict[str, str], dict[str, dict]]:
    """The evaluate stage's inputs; with evaluate_base, the base is evaluated first (its metrics come back too)."""
    inputs = {"model": model_dir, "eval": params.eval_data}
    if params.probe_data:
        inputs["probe"] = params.probe_data
    if params.reward_model is not None:
        inputs["reward_model"] = fetch_model(params.reward_model, downloads)[0]
    results: dict[str, dict] = {}
    if params.base_model is None:
        return inputs, results
    base_dir = fetch_model(params.base_model, downloads)[0]
    if not params.evaluate_base:
        return {**inputs, "base_model": base_dir}, results  # only the probe runs on it
    base = run_evaluation.with_options(name="evaluate-base")(params.evaluate, {**inputs, "model": base_dir}, str(work / "base"))
    results["base"] = base.metrics
    return {**inputs, "base_metrics": base.outputs["metrics"]}, results  # forgetting from the base's own probe run


def describe_run(params: EvaluateModelParams, version: str, result: StageResult) -> dict[str, str]:
    """The report's header: what was evaluated, with what, on what."""
    facts = {"model": f"models:/{params.model_name}/{version}" + (f" (alias {params.alias})" if params.alias else "")}
    for name, ref in (("reward model", params.reward_model), ("base model", params.base_model)):
        if ref is not None:
            facts[name] = ref.label()
    problems = int(result.metrics["n_problems"])
    facts["eval data"] = f"{params.eval_data} ({problems} problems, n={params.evaluate.num_samples} samples)"
    return facts


def run_tags(params: EvaluateModelParams, version: str) -> dict[str, str]:
    tags = {
        "model_name": params.model_name,
        "model_version": version,
        "model_alias": params.alias or "",
        "prefect_flow_run_id": str(flow_run.id),
    }
    for name, ref in (("reward_model", params.reward_model), ("base_model", params.base_model)):
        if ref is not None:
            tags[name] = ref.label()
    return tags


def explain(exc: ValidationError) -> str:
    """A parameter error in a line per problem, naming the field (not the whole input back)."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])
        lines.append(f"{where}: {err['msg']}" if where else err["msg"].removeprefix("Value error, "))
    return "; ".join(lines)


def _run_stamp() -> str:
    return str(flow_run.id)[:8] if flow_run.id else time.strftime("%Y%m%d-%H%M%S")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a registered model version, in-process.")
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--version")
    parser.add_argument("--alias")
    parser.add_argument("--params", default="params.yaml", help="its `evaluate` section is the evaluation config")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--tracking-uri", default=TrackingConfig().tracking_uri)
    parser.add_argument("--reward-model", help="a path, models:/NAME/VERSION or models:/NAME@ALIAS")
    parser.add_argument("--base-model", help="a path, models:/NAME/VERSION or models:/NAME@ALIAS")
    parser.add_argument("--evaluate-base", action="store_true", help="evaluate the base model fully too")
    parser.add_argument("--eval", default="data/eval.jsonl")
    parser.add_argument("--probe", default="data/probe.jsonl")
    args = parser.parse_args(argv)
    try:
        params = EvaluateModelParams(
            model_name=args.model,
            version=args.version,
            alias=args.alias,
            tracking_uri=args.tracking_uri,
            evaluate=load_section(args.params, "evaluate", EvaluateConfig, args.profile),
            eval_data=args.eval,
            probe_data=args.probe,
            reward_model=ModelRef.parse(args.reward_model) if args.reward_model else None,
            base_model=ModelRef.parse(args.base_model) if args.base_model else None,
            evaluate_base=args.evaluate_base,
        )
    except ValidationError as exc:
        print(f"error: {explain(exc)}", file=sys.stderr)
        return 2
    except (ParamsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = evaluate_model(params)
    except (registry.RegistryLookupError, DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(eval_report.render_report({summary["model"]["name"]: summary["metrics"]}))
    print(f"report: {summary['report']}\nMLflow run: {summary['mlflow_run_id']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
