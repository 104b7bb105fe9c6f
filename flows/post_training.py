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
import functools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from components import accounting, plots, promotion, registry, serving, stages, tracking
from components.artifacts import digest_path, write_json
from components.config import ParamsError, StageResult
from components.live import LiveTarget
from components.versioning import git_commit, params_hash, recorded_data_md5, track_data
from flows import events, run_artifacts
from flows.params import PipelineParams, load_params
from flows.registry_lock import registry_lock
from flows.report import RunSummary, StageRow, format_summary
from flows.stage_runner import input_digest
from flows.stage_runner import stage as run_registered_stage


class ValidationFailed(RuntimeError):
    """The data failed validation: nothing was trained, registered or promoted."""


def stage(
    name: str,
    cfg,
    inputs: dict[str, str],
    params: PipelineParams,
    force: bool,
    label: str | None = None,
    artifacts: Callable[[StageResult], dict[str, str]] | None = None,
) -> tuple[StageResult, bool]:
    """Run the registered stage `name` in its own MLflow run (cached, in-process or dispatched as `params.execution` says).

    The run opens before the stage starts, so a trainer streams its metrics there while it trains
    (components.live); the datasets it read and wrote, its result, usage and `artifacts(result)`
    (name -> local path) are logged there when it ends. Returns (result, from_cache)."""
    run_here = functools.partial(run_registered_stage, name, cfg, inputs, params.execution, params.paths.artifacts_dir, force, label=label)
    if not tracking.in_a_run():  # a stage called outside a pipeline run (a test, a notebook): nothing to log into
        return run_here()
    dispatched = params.execution.deployment_for(name) is not None
    uri = params.tracking.tracking_uri
    with tracking.stage_run(label or name, system_metrics=not dispatched) as run_id:
        # A dispatched pod streams only to a tracking server: a SQLite file or folder is this machine's.
        reachable = not dispatched or uri.startswith(("http://", "https://", "databricks"))
        target = LiveTarget(tracking_uri=uri, run_id=run_id) if reachable else None
        result, cached = run_here(target=target)
        _log_datasets(name, inputs, result)
        tracking.log_stage_result(result, cfg, cached, artifacts=artifacts(result) if artifacts else None, streamed=not cached)
    return result, cached


def _log_datasets(name: str, inputs: dict[str, str], result: StageResult) -> None:
    """The dataset files the stage read (by the registry's input kinds) and the ones it wrote."""
    consumes = stages.get(name).consumes
    read = {role: path for role, path in inputs.items() if consumes[role].kind == "dataset" and Path(path).is_file()}
    # named by the stage that wrote them: rejection sampling reads `sft` and writes another one
    wrote = {f"{name}.{role}": path for role, path in result.outputs.items() if path.endswith(".jsonl") and Path(path).is_file()}
    for datasets, context in ((read, "input"), (wrote, "generated")):
        if datasets:
            tracking.log_datasets(datasets, {role: input_digest(path) for role, path in datasets.items()}, context)


@task(log_prints=True)
def prepare_data(params: PipelineParams) -> tuple[StageResult, dict[str, str]]:
    """Write the datasets and version them with DVC (cheap, so never cached)."""
    from components import data

    result = data.run(params.data)
    previous_md5 = recorded_data_md5(result.outputs["data_dir"])  # read before `dvc add` rewrites the pointer
    facts = track_data(result.outputs["data_dir"])
    events.data_versioned(previous_md5, facts, result.outputs, params.tracking)
    return result, facts


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
    tracking.bound_retries(params.tracking.max_retries, params.tracking.retry_backoff_seconds, params.tracking.request_timeout_seconds)
    experiment_id = tracking.setup(params.tracking.tracking_uri, params.tracking.experiment, params.tracking.artifact_location)
    lineage = {
        "params_hash": params_hash(params),
        "git_commit": git_commit(),
        "prefect_flow_run_id": str(flow_run.id or "none"),
        "profile": params.profile,
    }
    summary = RunSummary(lineage=lineage)
    with tracking.pipeline_run(f"post-training {flow_run.name or ''}".strip(), lineage, experiment_id) as parent_run_id:
        summary.mlflow_run_id = parent_run_id
        datasets = _prepare_and_validate(summary, params, force, started)
        recipe = Recipe(summary, datasets, params, force)
        final = recipe.run()
        recipe.register_intermediates()

        # ---- the final policy: registered under the main name, then the promotion gate
        name = params.tracking.registered_model
        if params.promotion.base_is_first_champion and params.base.source == "pretrained":
            recipe.shipped_model_as_champion(name)
        # per-problem correctness on the eval set: what lets a later gate compare problem by problem
        evidence = promotion.gate_evidence_tags(recipe.evaluations[final.label].outputs["predictions"], datasets["eval"])
        version, created = recipe.register(final, name, extra_tags=evidence)
        decision = gate(name, version, params)
        summary.model = {"name": name, "version": version, "newly_registered": created, "path": final.path, "stage": final.label}
        summary.alias = decision.as_dict()
        logger.info("model %s v%s (%s): %s", name, version, final.label, decision.reason)
        recipe.register_reward_models()
        if params.recipe.distill:
            recipe.distill(teacher=final)
        recipe.measure_claims(final)
        path = _write_summary(summary, params, started)
        run_artifacts.publish_stage_table(summary, params.cost.currency)
        tracking.tag_active_run(summary.lineage)
        tracking.log_summary(summary.as_dict(), path)
    return summary.as_dict()


def _prepare_and_validate(summary: RunSummary, params: PipelineParams, force: bool, started: float) -> dict[str, str]:
    """Data, versioned by DVC, then validation: nothing trains on data that failed its checks."""
    data_result, data_version = prepare_data(params)
    summary.lineage.update(data_version)
    tracking.log_stage(data_result, params.data, name="data")
    _record(summary, "data", data_result, cached=False)
    datasets = {k: v for k, v in data_result.outputs.items() if k != "data_dir"}
    data_docs = lambda result: {"validation_report": str(Path(result.outputs["report"]).parent)}  # noqa: E731 (GX's HTML)
    validation, cached = stage("validate", params.validation, datasets, params, force, artifacts=data_docs)
    _record(summary, "validate", validation, cached)
    summary.lineage["validation_status"] = "passed" if validation.metrics.get("passed") else "failed"
    tracking.tag_active_run(summary.lineage)  # the parent run: the data version and whether it passed
    tracking.log_datasets(datasets, {role: input_digest(path) for role, path in datasets.items()}, "input")
    if not validation.metrics.get("passed"):
        _write_summary(summary, params, started)
        run_artifacts.publish_stage_table(summary, params.cost.currency)
        failures = "\n  ".join(validation.info.get("failures", [])[:10])
        raise ValidationFailed(f"data validation failed; nothing was trained or registered:\n  {failures}")
    return datasets


@dataclass
class Model:
    """A model a stage produced: its summary label, its files and the model it was trained from."""

    label: str
    path: str
    parent: Model | None = None


class Recipe:
    """The R1 stages in order; each trains from the previous policy, is evaluated and registered.

    `run` trains up to the final policy; `register_intermediates` registers the ones before it, the
    flow registers the final one behind the gate, then `distill`s it.
    """

    def __init__(self, summary: RunSummary, datasets: dict[str, str], params: PipelineParams, force: bool):
        self.summary, self.data, self.params, self.force = summary, datasets, params, force
        self.registered: dict[str, str] = {}  # label -> "name/version", the parents of later models
        self.evaluations: dict[str, StageResult] = {}
        self.trained: list[Model] = []  # the policies in training order; the last is the final one
        self.reward_model: str | None = None
        self.verifier: str | None = None  # the reward model retrained from the final policy (recipe.verifier)
        self.unevaluated: Model | None = None  # the last policy trained: evaluated once it is known whether it is the final one
        self.base: Model | None = None
        self.base_info: dict = {}
        self.pairs: str | None = None
        self.round2_start: Model | None = None

    def run(self) -> Model:
        p, on = self.params, self.params.recipe
        base_inputs = (
            {kind: self.data[kind] for kind in ("pretrain", "sft", "val") if kind in self.data} if p.base.source == "scratch" else {}
        )
        result = self.run_stage("base", p.base, base_inputs, artifacts=functools.partial(base_tries_plot, p.base))
        self.base_info = result.info
        self.summary.lineage.update({k: str(v) for k, v in result.info.items() if k.startswith("base_model")})
        # threads, torch, CPU flags: what the weights depend on beyond the seeds (a cached base: as it was trained)
        self.summary.lineage.update({f"math.{k}": v for k, v in result.info.get("math", {}).items()})
        base = self.base = Model("base", result.outputs["model"], None)
        policy = self.train("sft", "sft", p.sft, self._sft_inputs(p.sft, base, self.data["sft"]), parent=base)
        if on.reward_model:
            result = self.run_stage(
                "reward_model", p.reward_model, {"model": policy.path, "prefs": self.data["prefs"], "prompts": self.data["rl"]}
            )
            self.reward_model = result.outputs["model"]
        # Evaluated once the reward model exists, so every row of the summary carries its mean reward.
        for model in (base, policy):
            self.evaluate(model)
            self.trained.append(model)
        if on.grpo:
            policy = self.step("grpo", "grpo", p.grpo, {"model": policy.path, "rl": self.data["rl"]} | self._rm(), policy)
        if on.rejection_sampling:
            inputs = {"model": policy.path, "prompts": self.data["rl"], "sft": self.data["sft"]} | self._rm()
            sampled = self.run_stage("rejection_sampling", p.rejection_sampling, inputs)
            self.pairs = sampled.outputs["pairs"] if sampled.metrics["preference_pairs"] else None
            start = self.round2_start = base if on.round2_from == "base" else policy
            if on.controls:
                self.control_round2(start)
            policy = self.step("sft_round2", "sft", p.sft_round2, self._sft_inputs(p.sft_round2, start, sampled.outputs["sft"]), policy)
        if on.alignment:
            policy = self.align(policy)
        self.finish(policy)
        return policy

    def finish(self, final: Model) -> None:
        """The final policy's verifier, then its evaluation: its best-of-N is scored by a reward model as strong as it is.

        The reward model cut from the SFT model knows less arithmetic than the policy the later stages
        made, and on validation its best-of-8 of the final model fell below greedy decoding (bench/results/tuning.md)."""
        if self.params.recipe.verifier and self.unevaluated is final:
            inputs = {"model": final.path, "prefs": self.data["prefs"], "prompts": self.data["rl"]}
            self.verifier = self.run_stage("verifier", self.params.verifier, inputs, name="reward_model").outputs["model"]
        self.evaluate_unevaluated()

    def align(self, policy: Model) -> Model:
        """DPO on preference pairs, or (method grpo) the GRPO stage on the reward model's score."""
        p = self.params
        if p.alignment.method == "grpo":
            return self.step("alignment", "grpo", p.alignment_grpo, {"model": policy.path, "rl": self.data["rl"]} | self._rm(), policy)
        prefs = self.pairs if p.alignment.pairs != "dataset" and self.pairs else self.data["prefs"]
        return self.step(
            "alignment", "alignment", p.alignment, {"model": policy.path, "prefs": prefs} | self._replay(p.alignment.dpo), policy
        )

    # ---- building blocks

    def run_stage(self, label: str, cfg, inputs: dict[str, str], name: str | None = None, artifacts=None) -> StageResult:
        result, cached = stage(name or label, cfg, inputs, self.params, self.force, label=label, artifacts=artifacts)
        _record(self.summary, label, result, cached)
        return result

    def train(self, label: str, name: str, cfg, inputs: dict[str, str], parent: Model | None) -> Model:
        self.evaluate_unevaluated()  # a stage trains after the last one: that one was not the final policy
        result = self.run_stage(label, cfg, inputs, name)
        return Model(label, result.outputs["model"], parent)

    def step(self, label: str, name: str, cfg, inputs: dict[str, str], parent: Model) -> Model:
        """Train one stage's model; it is evaluated before the next stage trains, or by `finish` if it is the final one."""
        model = self.train(label, name, cfg, inputs, parent)
        self.unevaluated = model
        self.trained.append(model)
        return model

    def evaluate_unevaluated(self) -> None:
        if self.unevaluated is not None:
            model, self.unevaluated = self.unevaluated, None
            self.evaluate(model)

    def distill(self, teacher: Model) -> None:
        """A smaller student of the registered final model, and its SFT-only yardstick."""
        base = self.base
        inputs = {"teacher": teacher.path, "base": base.path, "sft": self.data["sft"], "rl": self.data["rl"]}
        if self.params.distill.corpus_knobs() and "pretrain" in self.data:  # without it, the stage names what is missing
            inputs["pretrain"] = self.data["pretrain"]
        result = self.run_stage("distill", self.params.distill, inputs)
        student = Model("distill", result.outputs["model"], teacher)
        baseline = Model("student_sft", result.outputs["baseline_model"], base)
        self.summary.stages["student_sft"] = StageRow(cached=self.summary.stages["distill"].cached)
        for model in (student, baseline):
            self.evaluate(model)
        self.register_stage(student, name=f"{self.params.tracking.registered_model}-student")

    def control_round2(self, start: Model) -> None:
        """The round-2 SFT's control: the same start and steps on the original SFT data (evaluated, not registered).

        Without it, "rejection sampling helps" cannot be told from "more SFT steps help"."""
        inputs = self._sft_inputs(self.params.sft_round2, start, self.data["sft"])
        self.evaluate(self.train("sft_control", "sft", self.params.sft_round2, inputs, parent=start))

    def measure_claims(self, final: Model) -> None:
        """reports/claims.md and claims.json from this run's own evaluations, logged to the parent run."""
        from components import claims

        stages_run = self.summary.stages
        distill = stages_run["distill"].metrics if "distill" in stages_run else {}
        run = claims.RunFiles(
            evaluations={label: result.outputs for label, result in self.evaluations.items()},
            final=final.label,
            reward_pairs=stages_run["reward_model"].outputs.get("held_out_pairs") if "reward_model" in stages_run else None,
            tokens_trained={
                label: int(distill[key])
                for label, key in (("distill", "distilled_tokens_trained"), ("student_sft", "baseline_tokens_trained"))
                if key in distill
            },
            steps={"sft_round2": self.params.sft_round2.max_steps},
            round2_start=self.round2_start.label if self.round2_start else None,
            num_samples=self.params.evaluate.num_samples,
            best_of_n_scorer="verifier" if self.verifier else "reward_model",
        )
        self.summary.claims_inputs = asdict(run)
        md, data = claims.write(claims.build(run), self.params.paths.reports_dir, warnings=self.summary.warnings)
        for path in (md, data):
            tracking.log_report(path, "claims")
        get_run_logger().info("claims: %s\n%s", md, md.read_text())

    def evaluate(self, model: Model) -> StageResult:
        """`model` on the eval set; its best-of-N scored by the verifier once there is one (the final policy, the students)."""
        extra = {"reward_model": self.verifier} if self.verifier else self._rm()
        if model.label != "base" and "base" in self.evaluations:
            extra["base_metrics"] = self.evaluations["base"].outputs["metrics"]  # forgetting, at no extra cost
        result = _evaluate(self.summary, model.label, model.path, self.data, self.params, self.force, extra=extra)
        self.evaluations[model.label] = result
        return result

    def register_intermediates(self) -> None:
        """Every policy before the final one, parents first: the registered lineage of the final one."""
        for model in self.trained[:-1]:
            self.register_stage(model)

    def shipped_model_as_champion(self, name: str) -> None:
        """A real model's first run: the model as shipped is the champion the recipe's model must beat."""
        if promotion.current_champion(name) is not None:
            return
        evidence = promotion.gate_evidence_tags(self.evaluations["base"].outputs["predictions"], self.data["eval"])
        version, _ = self.register(self.base, name, extra_tags=evidence)
        gate(name, version, self.params)  # no champion yet (unless a concurrent run just made one): it becomes one

    def register_stage(self, model: Model, name: str | None = None) -> None:
        """An intermediate model goes to `<registered_model>-<stage>`."""
        self.register(model, name or f"{self.params.tracking.registered_model}-{model.label.replace('_', '-')}")

    def register_reward_models(self) -> None:
        """The reward model goes to `<registered_model>-reward-model`, its parent the SFT model it was trained from;
        the verifier to `<registered_model>-verifier`, its parent the final policy.

        Its metrics are its stage's own (held-out pairwise accuracy and margin); it is logged as a
        servable scorer (components.serving.log_reward_model says which flavor and why)."""
        if self.reward_model:
            self._register_scorer(Model("reward_model", self.reward_model, next(m for m in self.trained if m.label == "sft")))
        if self.verifier:
            self._register_scorer(Model("verifier", self.verifier, self.trained[-1]))

    def _register_scorer(self, model: Model) -> None:
        name = f"{self.params.tracking.registered_model}-{model.label.replace('_', '-')}"
        self.register(model, name, metrics=self.summary.stages[model.label].metrics, task=serving.REWARD_TASK)

    def register(
        self, model: Model, name: str, extra_tags: dict[str, str] | None = None, metrics: dict | None = None, task: str = serving.CHAT_TASK
    ) -> tuple[str, bool]:
        lineage = self.summary.lineage
        tags = {**lineage, "stage": model.label, "model_digest": digest_path(model.path), "parent_model": self._parent_ref(model)}
        tags.update(extra_tags or {})
        tags.update(self._cost_tags(model.label))
        if metrics is None:  # a policy: its evaluation
            metrics = {k.removeprefix("eval."): v for k, v in self.summary.stages[model.label].metrics.items() if k.startswith("eval.")}
        retrying = _server_retries(register_version, self.params.tracking, f"register-{model.label}")
        version, created = retrying(model.path, name, tags, metrics, task)
        if created:
            events.model_version_created(name, version, model.label, self.params.tracking)
        self.registered[model.label] = f"{name}/{version}"
        self.summary.registered[model.label] = {"name": name, "version": version, "parent_model": tags["parent_model"]}
        return version, created

    def _cost_tags(self, label: str) -> dict[str, str]:
        """What the stage that made the model cost (its training and evaluation): on the version and its card."""
        row, prices = self.summary.stages[label], self.params.cost
        if not row.usage:
            return {}
        used = accounting.total(row.usage)
        row.priced(prices.price_per_device_hour)  # the summary's own pricing, early
        return {
            f"cost.{prices.currency.lower()}": f"{row.cost:.6g}",
            "cost.device_seconds": f"{used['device_seconds']:.1f}",
            "cost.tokens_trained": str(used["tokens_trained"]),
            "cost.tokens_generated": str(used["tokens_generated"]),
            "cost.device": str(row.usage[0].get("device")),
        }

    def _parent_ref(self, model: Model) -> str:
        if model.parent is None:  # the base: built here, or a pretrained model with its revision or digest
            base_info = self.base_info
            return "none (trained from scratch)" if self.params.base.source == "scratch" else base_info.get("base_model", model.path)
        if model.parent.label in self.registered:
            return f"models:/{self.registered[model.parent.label]}"
        return f"{model.parent.label}:{input_digest(model.parent.path)[:16]} ({model.parent.path})"

    def _sft_inputs(self, cfg, start: Model, conversations: str) -> dict[str, str]:
        """An SFT stage's inputs, with the pretraining corpus when its config replays it."""
        return {"model": start.path, "sft": conversations} | self._replay(cfg)

    def _replay(self, cfg) -> dict[str, str]:
        """The pretraining corpus as a `replay` input when the trainer config replays it (replay_weight)."""
        return {"replay": self.data["pretrain"]} if cfg.replay_weight and "pretrain" in self.data else {}

    def _rm(self) -> dict[str, str]:
        return {"reward_model": self.reward_model} if self.reward_model else {}


# ---------------------------------------------------------------- the steps that talk to the registry
#
# Prefect tasks, retried with backoff when the tracking server stopped answering (not on a bad
# request, and never a training stage): both are safe to repeat. A registration finds the files
# it already registered by their digest; the gate finds the version already champion.


def _lost_connection(task, task_run, state) -> bool:
    return tracking.lost_connection(state.result(raise_on_failure=False))


@task(name="register-model-version", retry_condition_fn=_lost_connection, cache_policy=NO_CACHE)
def register_version(model_dir: str, name: str, tags: dict, metrics: dict, serving_task: str) -> tuple[str, bool]:
    with registry_lock(name):  # a concurrent run may be registering the same files
        return registry.register_model(model_dir, name, tags, metrics, task=serving_task)


@task(name="promotion-gate", retry_condition_fn=_lost_connection, cache_policy=NO_CACHE)
def promotion_gate(name: str, version: str, cfg) -> promotion.AliasDecision:
    with registry_lock(name):  # alone on the registry: the champion it reads is the one it replaces
        return promotion.apply_gate(name, version, cfg)


def _server_retries(step, cfg, run_name: str):
    backoff = [cfg.task_retry_delay_seconds * 4**attempt for attempt in range(cfg.task_retries)]  # 10 s, 40 s, ...
    return step.with_options(task_run_name=run_name, retries=cfg.task_retries, retry_delay_seconds=backoff or 0)


def gate(name: str, version: str, params: PipelineParams) -> promotion.AliasDecision:
    """The promotion gate on version `version`; its decision becomes an event and a Prefect artifact."""
    decision = _server_retries(promotion_gate, params.tracking, f"gate-{name}-v{version}")(name, version, params.promotion)
    events.gate_decided(name, decision, params.tracking)
    run_artifacts.publish_gate(name, decision)
    return decision


def _evaluate(summary: RunSummary, label: str, model: str, datasets: dict, params: PipelineParams, force: bool, extra=None) -> StageResult:
    probe = {"probe": datasets["probe"]} if datasets.get("probe") else {}  # user data may have no probe set
    inputs = {"model": model, "eval": datasets["eval"], **probe, **(extra or {})}
    folder = lambda result: {"evaluation": str(Path(result.outputs["metrics"]).parent)}  # noqa: E731 (predictions, report, curves)
    result, cached = stage("evaluate", params.evaluate, inputs, params, force, label=f"evaluate-{label}", artifacts=folder)
    row = summary.stages[label]
    row.metrics.update({f"eval.{k}": v for k, v in result.metrics.items()})
    row.wall_seconds += result.wall_seconds
    row.usage += [result.info["usage"]] if "usage" in result.info else []
    return result


def base_tries_plot(cfg, result: StageResult) -> dict[str, str]:
    """The base's pretraining tries, drawn beside its model for its MLflow run: each seed's validation sums by step.

    Drawn here, not in the stage: the plots module would put the evaluation's code in the base's cache key."""
    if not result.info.get("tries"):  # a loaded model, or no validation sums to check
        return {}
    path = Path(result.outputs["model"]).parent / "pretraining_tries.png"
    figure = plots.plot_pretraining_tries(result.info["tries"], cfg.min_val_probe, cfg.abandon_below, int(cfg.abandon_at * cfg.steps))
    figure.savefig(path, dpi=110)
    return {"pretraining": str(path)}


def _record(summary: RunSummary, label: str, result: StageResult, cached: bool) -> None:
    notes = {
        k: v for k, v in result.info.items() if k in ("generation_backend", "generation_backend_reason", "resumed_from", "method") and v
    }
    get_run_logger().info("%s: %.0f s%s %s", label, result.wall_seconds, " (cached)" if cached else "", notes or "")
    if result.info.get("warning"):  # a stage that ran but whose model the operator should not trust as is
        get_run_logger().warning("%s: %s", label, result.info["warning"])
        summary.warnings.append(f"{label}: {result.info['warning']}")
    usage = [result.info["usage"]] if "usage" in result.info else []  # none from a result cached before usage was metered
    summary.stages[label] = StageRow(
        metrics=dict(result.metrics), wall_seconds=result.wall_seconds, cached=cached, outputs=result.outputs, usage=usage
    )


def _write_summary(summary: RunSummary, params: PipelineParams, started: float) -> Path:
    summary.pipeline_wall_seconds = time.perf_counter() - started
    summary.price(params.cost.price_per_device_hour, params.cost.currency)
    return write_json(Path(params.paths.reports_dir) / "summary.json", summary.as_dict())


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
    except tracking.TrackingUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not tracking.lost_connection(exc):
            raise
        print(
            f"error: MLflow at {params.tracking.tracking_uri} stopped answering mid-run ({params.tracking.max_retries} retries: "
            f"{type(exc).__name__}); the stages that finished are kept: start it again and re-run to continue",
            file=sys.stderr,
        )
        return 2
    print(format_summary(summary))
    print(json.dumps({"summary": str(Path(params.paths.reports_dir) / "summary.json")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
