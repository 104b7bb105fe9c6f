"""The pipeline's parameters: one pydantic model made of each stage's own config.

This is what `params.yaml` validates against, what the CLI loads, and what the Prefect UI
renders as the typed form of the `post-training` deployment. The field defaults are the local
profile; `params.yaml` spells them out (a test keeps the two equal) and adds profiles.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, model_validator

from components import stages
from components.alignment import AlignmentConfig, DPOSettings
from components.base import BaseConfig
from components.config import ParamsError, StrictModel, read_params, spoken_list, validate_config
from components.data import DataConfig
from components.distill import DistillConfig
from components.evaluate import EvaluateConfig
from components.gate import GateConfig
from components.grpo import GRPOStageConfig
from components.rejection_sampling import RejectionSamplingConfig
from components.reward_model import RewardModelConfig
from components.sft import SFTConfig
from components.validate import ValidationConfig

# The flow composes the stages' configs; the registry says which exist and which need a GPU.
DISPATCHABLE = [name for name in stages.STAGES if name != "data"]


class RecipeConfig(StrictModel):
    """Which stages of the R1 recipe run after the cold-start SFT (each can be switched off)."""

    reward_model: bool = Field(True, description="train a reward model on the preference pairs")
    grpo: bool = Field(True, description="reasoning RL from the SFT model")
    rejection_sampling: bool = Field(True, description="sample the RL model, keep verified answers, round-2 SFT on them")
    round2_from: Literal["base", "policy"] = Field(
        "policy", description="round-2 SFT continues from the RL model, or starts from the base (as R1)"
    )
    alignment: bool = Field(True, description="the final DPO (or GRPO-on-reward-model) pass")
    verifier: bool = Field(
        True,
        description="retrain the reward model from the final policy (`verifier`) and let it score the final model's best-of-N:"
        " one cut from the SFT model cannot check a policy that has outgrown it",
    )
    distill: bool = Field(True, description="distil the final model into a smaller student")
    controls: bool = Field(
        True,
        description="also train what reports/claims.md compares round-2 SFT with: as many further SFT steps on the original data",
    )


# The local profile's SFT stages and DPO pass replay the base's pretraining text (each step adds
# the LM loss on replay_batch_size rows of it): without it they cost the tiny model its bare arithmetic.
# Each weight chosen on a validation probe and val pass@1 (bench/replay_sweep.py, bench/results/tuning.md).
LOCAL_REPLAY = {"replay_weight": 1.0}
LOCAL_DPO_REPLAY = {"replay_weight": 3.0}


def _sft() -> SFTConfig:
    return SFTConfig(**LOCAL_REPLAY)


def _round2_sft() -> SFTConfig:
    return SFTConfig(max_steps=300, **LOCAL_REPLAY)


def _alignment() -> AlignmentConfig:
    return AlignmentConfig(dpo=DPOSettings(**LOCAL_DPO_REPLAY))


class TrackingConfig(StrictModel):
    tracking_uri: str = Field("sqlite:///mlflow/mlflow.db", description="MLflow tracking (and registry) URI")
    artifact_location: str | None = Field("mlflow/artifacts", description="where a new experiment stores artifacts")
    experiment: str = Field("post-training", min_length=1)
    registered_model: str = Field("r1-tiny-math", min_length=1, description="MLflow registered model name")
    max_retries: int = Field(4, ge=0, le=20, description="retries of each MLflow request (exponential backoff) before the run fails")
    retry_backoff_seconds: int = Field(1, ge=0, le=60, description="first retry's wait; it doubles each retry (MLflow takes whole seconds)")
    request_timeout_seconds: int = Field(30, ge=1, le=600, description="each MLflow request's timeout")
    task_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="retries of the registration and gate tasks when the server stopped answering (their requests' own retries spent)",
    )
    task_retry_delay_seconds: int = Field(10, ge=0, le=600, description="the first task retry's wait; each next one waits 4x longer")


def _verifier() -> RewardModelConfig:
    # Synthetic near-misses only: from the final policy, its own right-vs-wrong pairs gave a worse best-of-8 (tuning.md).
    return RewardModelConfig(on_policy_samples=0)


def _rm_grpo() -> GRPOStageConfig:
    return GRPOStageConfig(rewards={"reward_model": 1.0, "accuracy": 1.0}, max_steps=30, beta=0.05)


class ExecutionConfig(StrictModel):
    """Where the stages run: all in the flow's own process, or the GPU ones as child flow runs."""

    mode: Literal["in_process", "deployments"] = Field(
        "in_process", description="deployments: the stages in dispatched_stages run as child flow runs of stage_deployment"
    )
    stage_deployment: str = Field(
        "run-stage/run-stage-gpu", pattern=r"^[^/]+/[^/]+$", description="<flow>/<deployment> of the run-stage flow (e.g. on the GPU pool)"
    )
    dispatched_stages: list[Literal[tuple(DISPATCHABLE)]] = Field(
        default_factory=stages.gpu_stages, description="stages that run through stage_deployment; the rest run in the orchestrator"
    )
    exchange_uri: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9+.-]*://\S+$",
        description="object storage where dispatched stages and the orchestrator exchange artifacts, e.g. s3://bucket/prefix "
        "(credentials and endpoint from AWS_* variables); unset: a volume both Jobs mount at the same path",
    )

    stage_timeout_seconds: int = Field(
        43200, ge=60, description="how long a stage may run (in process, or as a dispatched flow run and its Job) before it is failed"
    )
    stage_timeouts: dict[Literal[tuple(DISPATCHABLE)], Annotated[int, Field(ge=60)]] = Field(
        default_factory=dict, description="stage -> its own limit in seconds, in place of stage_timeout_seconds (e.g. grpo: 86400)"
    )
    gpu_slots: int = Field(
        8,
        ge=1,
        description="GPUs the dispatched stages may hold at once (a Prefect global concurrency limit, `gpu-pool`, made with this many)",
    )
    checkpoint_sync_seconds: int = Field(
        300, ge=10, description="with exchange_uri: how often a dispatched stage mirrors its newest checkpoint to the store"
    )
    torch_threads: int | None = Field(
        2,
        ge=1,
        description="torch's threads in every stage, fixed: the count changes CPU sums' order and so the trained weights "
        "(the same seeds give the same models only at the same count); null: the cores each process has; OMP_NUM_THREADS wins",
    )

    @model_validator(mode="after")
    def _exchange_needs_dispatch(self) -> ExecutionConfig:
        if self.exchange_uri is not None and self.mode != "deployments":
            raise ValueError(
                "execution.exchange_uri is set, but execution.mode is in_process: no stage is dispatched to exchange artifacts with"
            )
        if self.exchange_uri is not None:
            from fsspec.registry import known_implementations

            protocol = self.exchange_uri.split("://", 1)[0]
            if protocol not in known_implementations:
                raise ValueError(
                    f"execution.exchange_uri {self.exchange_uri!r}: unknown storage protocol {protocol!r} (e.g. s3, gs, az, file)"
                )
        return self

    def timeout_for(self, stage: str) -> int:
        return self.stage_timeouts.get(stage, self.stage_timeout_seconds)

    def deployment_for(self, stage: str) -> str | None:
        return self.stage_deployment if self.mode == "deployments" and stage in self.dispatched_stages else None


class CostConfig(StrictModel):
    """What a device-hour costs: the summary prices each stage's device time with it (components.accounting)."""

    price_per_device_hour: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"cpu": 0.10, "cuda": 2.50},
        description="device name (e.g. 'NVIDIA H100 80GB HBM3') or kind ('cuda', 'cpu') -> price per device-hour",
    )
    currency: str = Field("USD", min_length=1, max_length=8)


class PathsConfig(StrictModel):
    artifacts_dir: str = Field("artifacts", description="stage outputs, one folder per cache key")
    reports_dir: str = Field("reports", description="summary.json and validation reports")


class PipelineParams(StrictModel):
    """Every knob of the post-training pipeline."""

    profile: str = Field("local", description="the params.yaml profile these values came from")
    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    base: BaseConfig = Field(default_factory=BaseConfig)
    sft: SFTConfig = Field(default_factory=_sft)
    recipe: RecipeConfig = Field(default_factory=RecipeConfig)
    reward_model: RewardModelConfig = Field(default_factory=RewardModelConfig)
    verifier: RewardModelConfig = Field(
        default_factory=_verifier, description="the reward model retrained from the final policy: what scores its best-of-N"
    )
    grpo: GRPOStageConfig = Field(default_factory=GRPOStageConfig)
    rejection_sampling: RejectionSamplingConfig = Field(default_factory=RejectionSamplingConfig)
    sft_round2: SFTConfig = Field(default_factory=_round2_sft, description="SFT on the rejection-sampled data")
    alignment: AlignmentConfig = Field(default_factory=_alignment)
    alignment_grpo: GRPOStageConfig = Field(
        default_factory=_rm_grpo, description="the grpo stage's knobs when alignment.method is grpo (RL on the reward model)"
    )
    distill: DistillConfig = Field(default_factory=DistillConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    promotion: GateConfig = Field(default_factory=GateConfig, description="the gate the champion alias moves past")
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    cost: CostConfig = Field(default_factory=CostConfig, description="prices of device time, for the summary's cost column")
    paths: PathsConfig = Field(default_factory=PathsConfig)

    def _no_pretraining_corpus(self) -> bool:
        return "pretrain" not in self.data.files if self.data.source == "files" else self.data.n_pretrain == 0

    @model_validator(mode="after")
    def _base_has_a_corpus(self) -> PipelineParams:
        if self.base.source == "scratch" and self._no_pretraining_corpus():
            raise ValueError(
                "base.source is 'scratch', which pretrains on data/pretrain.jsonl, but the data stage writes none: "
                "set data.files.pretrain (or data.n_pretrain > 0), or use base.source: pretrained"
            )
        return self

    @model_validator(mode="after")
    def _corpus_readers_have_a_corpus(self) -> PipelineParams:
        # refused here, all at once, not stage by stage: the distill stage starts after every other stage has trained
        knobs = self._corpus_knobs()
        if knobs and self._no_pretraining_corpus():
            named = spoken_list([f"{name} ({value:g})" for name, value in knobs.items()])
            raise ValueError(
                f"{named} {'read' if len(knobs) > 1 else 'reads'} data/pretrain.jsonl (the base's pretraining corpus), but the data "
                f"stage writes none: set data.files.pretrain (or data.n_pretrain > 0), or set {'them' if len(knobs) > 1 else 'it'} to 0"
            )
        return self

    def _corpus_knobs(self) -> dict[str, float]:
        """The knobs set to read the pretraining corpus after the base (replay, the students' healing), by their params.yaml path;
        only those of stages the recipe runs (switched off, a stage's knob reads nothing, and asking to zero it would mislead)."""
        on = self.recipe
        replaying = {
            "sft": self.sft,
            **({"sft_round2": self.sft_round2} if on.rejection_sampling else {}),  # round 2 and its control
            **({"alignment.dpo": self.alignment.dpo} if on.alignment and self.alignment.method == "dpo" else {}),
        }
        knobs = {f"{name}.replay_weight": cfg.replay_weight for name, cfg in replaying.items()}
        knobs |= self.distill.corpus_knobs() if self.recipe.distill else {}
        return {name: value for name, value in knobs.items() if value}

    @model_validator(mode="after")
    def _reward_model_consumers_have_one(self) -> PipelineParams:
        if self.recipe.reward_model:
            return self
        if self.recipe.grpo and "reward_model" in self.grpo.rewards:
            raise ValueError("grpo.rewards uses reward_model, but recipe.reward_model is off: switch it on or drop that reward")
        if self.recipe.alignment and self.alignment.method == "grpo" and "reward_model" in self.alignment_grpo.rewards:
            raise ValueError("alignment.method is grpo on the reward model, but recipe.reward_model is off")
        return self

    @model_validator(mode="after")
    def _on_policy_pairs_need_rejection_sampling(self) -> PipelineParams:
        if self.recipe.alignment and self.alignment.pairs == "on_policy" and not self.recipe.rejection_sampling:
            raise ValueError("alignment.pairs is on_policy (rejection sampling's pairs), but recipe.rejection_sampling is off")
        return self


def load_params(path: str | Path = "params.yaml", profile: str = "local") -> PipelineParams:
    """`params.yaml` (with `profile` applied) as PipelineParams; errors name the file and key."""
    values = read_params(path, profile)
    values["profile"] = profile
    return validate_config(PipelineParams, values, str(path))


def check_deployments(prefect_file: str | Path) -> list[str]:
    """Validate every post-training deployment's `params` in a prefect.yaml the way the flow will.

    The Prefect server checks parameters against the JSON schema only; what pydantic checks
    beyond it (DeepSpeed files that parse, recipe switches that fit together) would otherwise
    surface when a run starts. Returns one message per bad deployment (empty: all good)."""
    path = Path(prefect_file)
    document = yaml.safe_load(path.read_text()) or {}
    problems = []
    for deployment in document.get("deployments") or []:
        if not str(deployment.get("entrypoint", "")).endswith(":post_training"):
            continue
        params = (deployment.get("parameters") or {}).get("params", {})
        try:
            validate_config(PipelineParams, params, f"{path} deployment {deployment.get('name')!r} parameters.params")
        except ParamsError as error:
            problems.append(str(error))
    return problems


GENERATED_BEGIN = "  # BEGIN generated by `python -m flows.params --sync"
GENERATED_END = "  # END generated"


def rendered_deployment_params(prefect_file: str | Path, params_file: str | Path = "params.yaml", profile: str = "cluster") -> str:
    """The prefect file with its generated `definitions.<profile>_params` block made from params.yaml.

    One source for the cluster deployment's parameters: params.yaml. The block is every key of the
    profile (a deployment's parameters are what its runs get), anchored for the deployments to merge."""
    text = Path(prefect_file).read_text()
    lines = text.splitlines(keepends=True)
    begin = next((i for i, line in enumerate(lines) if line.startswith(GENERATED_BEGIN)), None)
    end = next((i for i, line in enumerate(lines) if line.startswith(GENERATED_END)), None)
    if begin is None or end is None or end < begin:
        raise ParamsError(
            f"{prefect_file}: no generated-params block (lines starting {GENERATED_BEGIN.strip()!r} ... {GENERATED_END.strip()!r})"
        )
    values = load_params(params_file, profile).model_dump(mode="json")
    body = yaml.safe_dump({f"{profile}_params": values}, sort_keys=False, width=120, default_flow_style=False)
    body = body.replace(f"{profile}_params:", f"{profile}_params: &{profile}_params", 1)
    block = "".join(f"  {line}\n" for line in body.splitlines())
    return "".join(lines[: begin + 1]) + block + "".join(lines[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check (or, with --sync, regenerate) the params of the post-training deployments in a prefect.yaml."
    )
    parser.add_argument("prefect_file", help="e.g. infra/prefect/prefect.cluster.yaml")
    parser.add_argument("--sync", action="store_true", help="rewrite its generated params block from params.yaml first")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        if args.sync:
            Path(args.prefect_file).write_text(rendered_deployment_params(args.prefect_file, args.params))
            print(f"{args.prefect_file}: params regenerated from {args.params}")
        problems = check_deployments(args.prefect_file)
    except ParamsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{args.prefect_file}: every post-training deployment's params are valid")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
