"""The one registry of stages: every stage of the recipe is declared here, once, as data.

A row names the stage's module and entry function, its config class (the `params.yaml`
section of the same name), the artifacts it consumes and produces, whether it needs a GPU and
the resources its Job asks for. Everything else reads this table: the `posttrain` CLI (one
command per row), the flow (what a stage is given and what it hands back), the dispatcher
(which stages may go to the GPU pool, with which job variables), the cache keys (the module
whose source is hashed) and docs/architecture.md (`python -m components.stages --write`).

Adding a stage is one module with a `Config` and a `run(cfg, inputs, out_dir)` plus one row.
Nothing here imports a stage: modules are named by their dotted path and loaded on use.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Input:
    """An artifact a stage consumes: a model folder, a dataset file, or a hub id."""

    kind: str  # model | dataset | file
    default: str | None = None  # the CLI's default (data/<kind>.jsonl for datasets)
    required: bool = True
    help: str = ""


@dataclass(frozen=True)
class Resources:
    """What a dispatched Job of the stage asks the GPU pool for (its work-pool job variables)."""

    gpus: int = 1
    cpu: str = "8"
    memory: str = "64Gi"  # the GPU pool's defaults (infra/prefect/gpu-pool.json)

    def job_variables(self) -> dict[str, Any]:
        return {"gpu_count": self.gpus, "cpu_request": self.cpu, "memory_request": self.memory}


@dataclass(frozen=True)
class Stage:
    name: str  # the params.yaml section, the cache-key label, the CLI command (dashes for underscores)
    module: str  # dotted path of the module holding `Config` and the entry function
    summary: str
    consumes: dict[str, Input] = field(default_factory=dict)
    produces: tuple[str, ...] = ()
    gpu: bool = False
    resources: Resources | None = None
    entry: str = "run"
    config: str = "Config"

    @property
    def command(self) -> str:
        return self.name.replace("_", "-")

    def load(self):
        return importlib.import_module(self.module)

    def config_class(self):
        return getattr(self.load(), self.config)

    def entry_function(self):
        return getattr(self.load(), self.entry)

    def check_inputs(self, inputs: dict[str, str]) -> None:
        """Refuse inputs the stage does not take, or a required one missing, before any work."""
        unknown = sorted(set(inputs) - set(self.consumes))
        missing = sorted(name for name, spec in self.consumes.items() if spec.required and name not in inputs)
        problems = [f"unknown input(s) {unknown}"] * bool(unknown) + [f"missing input(s) {missing}"] * bool(missing)
        if problems:
            consumed = ", ".join(self.consumes) or "nothing"
            raise StageInputError(f"stage {self.name}: {'; '.join(problems)} (it consumes: {consumed})")


class StageInputError(ValueError):
    """A stage was handed inputs it does not consume, or not the ones it needs."""


def _model(help: str = "the model to start from (folder or hub id)") -> Input:
    return Input("model", help=help)


def _data(kind: str, required: bool = True, help: str = "") -> Input:
    return Input("dataset", default=f"data/{kind}.jsonl", required=required, help=help or f"the {kind} dataset")


def _replay() -> Input:
    return Input("dataset", required=False, help="plain text replayed at every step (replay_weight > 0): the pretraining corpus")


def _reward_model(help: str = "the reward model folder") -> Input:
    return Input("model", required=False, help=help)


GPU = Resources()

STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage(
            "data",
            "components.data",
            "write the datasets (synthetic verifiable math, or your files normalized)",
            produces=("pretrain", "sft", "prefs", "rl", "eval", "val", "probe", "data_dir"),
        ),
        Stage(
            "validate",
            "components.validate",
            "Great Expectations suites on every dataset; nothing trains on data that fails",
            consumes={kind: _data(kind, required=False) for kind in ("pretrain", "sft", "prefs", "rl", "eval", "val", "probe")},
            produces=("report",),
        ),
        Stage(
            "base",
            "components.base",
            "the base model: a tiny one pretrained here, or a pretrained one loaded",
            consumes={
                "pretrain": _data("pretrain", required=False),
                "sft": _data("sft", required=False),
                "val": _data("val", required=False, help="the validation split: a base pretrained here checks its arithmetic on it"),
            },
            produces=("model",),
            gpu=True,
            resources=GPU,
        ),
        Stage(
            "sft",
            "components.sft",
            "supervised fine-tuning on chat data (cold start; round 2 on rejection-sampled data)",
            consumes={
                "model": _model(),
                "sft": _data("sft"),
                "replay": _replay(),
            },
            produces=("model",),
            gpu=True,
            resources=GPU,
        ),
        Stage(
            "reward_model",
            "components.reward_model",
            "a Bradley-Terry scorer trained on preference pairs",
            consumes={
                "model": _model("the SFT model the scorer starts from"),
                "prefs": _data("prefs"),
                "prompts": _data("rl", required=False, help="verifiable prompts: the SFT model's own right and wrong answers become pairs"),
            },
            produces=("model",),
            gpu=True,
            resources=GPU,
        ),
        Stage(
            "grpo",
            "components.grpo",
            "reasoning RL with verifiable rewards (TRL GRPOTrainer)",
            consumes={"model": _model("the policy to start from (the SFT model)"), "rl": _data("rl"), "reward_model": _reward_model()},
            produces=("model",),
            gpu=True,
            resources=GPU,
        ),
        Stage(
            "rejection_sampling",
            "components.rejection_sampling",
            "sample the RL model, keep verified answers: the round-2 SFT set and on-policy pairs",
            consumes={
                "model": _model("the model to sample from (the RL model)"),
                "prompts": Input("dataset", default="data/rl.jsonl", help="prompts with reference answers"),
                "sft": _data("sft", required=False, help="the original SFT data (include_sft_data)"),
                "reward_model": _reward_model("ranks the verified answers"),
            },
            produces=("sft", "pairs", "stats"),
            gpu=True,
            resources=GPU,
        ),
        Stage(
            "alignment",
            "components.alignment",
            "the final preference pass: DPO on pairs",
            consumes={"model": _model(), "prefs": _data("prefs", help="preference pairs"), "replay": _replay()},
            produces=("model",),
            gpu=True,
            resources=GPU,
        ),
        Stage(
            "distill",
            "components.distill",
            "a smaller student from the teacher's verified answers, and its SFT-only yardstick",
            consumes={
                "teacher": _model("the final model of the recipe"),
                "base": _model("the base model the student is cut from"),
                "sft": _data("sft"),
                "rl": _data("rl", required=False),
                "pretrain": _data(
                    "pretrain",
                    required=False,
                    help="the base's corpus: to heal the cut student (distill.heal_steps), and replayed in both students' SFT "
                    "(distill.student_sft.replay_weight)",
                ),
            },
            produces=("model", "baseline_model", "teacher_data"),
            gpu=True,
            resources=GPU,
        ),
        Stage(
            "evaluate",
            "components.evaluate",
            "pass@k, maj@k, best-of-N, calibration, forgetting and length on the held-out set",
            consumes={
                "model": _model("the model to evaluate"),
                "eval": _data("eval"),
                "probe": _data("probe", required=False, help="the base-capability probe (forgetting)"),
                "reward_model": _reward_model("adds bon@k, wmaj@k and the reward metrics"),
                "base_model": Input("model", required=False, help="adds forgetting: its probe accuracy minus this model's"),
                "base_metrics": Input("file", required=False, help="the base model's metrics.json (forgetting, no re-run)"),
            },
            produces=("metrics", "predictions"),
            gpu=True,
            resources=GPU,
        ),
    )
}


def get(name: str) -> Stage:
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r} (known: {', '.join(STAGES)})")
    return STAGES[name]


def gpu_stages() -> list[str]:
    return [stage.name for stage in STAGES.values() if stage.gpu]


def by_command(command: str) -> Stage | None:
    return next((stage for stage in STAGES.values() if stage.command == command), None)


# ---------------------------------------------------------------- docs/architecture.md

ARCHITECTURE = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


def architecture_markdown() -> str:
    """docs/architecture.md: the layers, the data's path through them, and the stage table."""
    rows = [
        f"| `{s.name}` | `{s.module}` | {', '.join(f'`{n}`' for n in s.consumes) or '-'} | "
        f"{', '.join(f'`{n}`' for n in s.produces) or '-'} | {'yes' if s.gpu else 'no'} | {s.summary} |"
        for s in STAGES.values()
    ]
    flow = "\n".join(f"    {a} --> {b}" for a, b in _data_path())
    return f"""# Architecture

Generated from the stage registry (`components/stages.py`) by `python -m components.stages --write`;
a test fails when this file is stale.

## Layers

Imports point down only. Stages never import each other: they meet through artifacts.

```mermaid
flowchart TB
    subgraph flows["flows/ (the only code that knows Prefect)"]
        post_training["post_training: the recipe"] --> stage_runner["stage_runner: in-process or dispatched"]
        evaluate_model & promote & retrain
    end
    subgraph stages["components/&lt;stage&gt;.py (one module per stage, registered in components/stages.py)"]
        {" & ".join(STAGES)}
    end
    subgraph shared["components/ shared helpers (import no stage; MLflow only in tracking, registry, promotion and the live stream)"]
        {" & ".join(_shared_modules())}
    end
    flows --> stages --> shared
    flows --> shared
```

## The data's path

```mermaid
flowchart LR
{flow}
```

## Stages

| stage | module | consumes | produces | GPU | what it does |
|---|---|---|---|---|---|
{chr(10).join(rows)}
"""


def _shared_modules() -> list[str]:
    """The components modules below the stages: every module that is not a stage, the CLI or this registry."""
    stage_modules = {stage.module.removeprefix("components.") for stage in STAGES.values()}
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("*.py") if p.stem not in stage_modules | {"__init__", "cli", "stages"})


def _data_path() -> list[tuple[str, str]]:
    return [
        ("dvc[data.dvc]", "data"),
        ("data", "validate"),
        ("validate", "base"),
        ("base", "sft"),
        ("sft", "reward_model"),
        ("sft", "grpo"),
        ("reward_model", "grpo"),
        ("grpo", "rejection_sampling"),
        ("rejection_sampling", "sft_round2[sft round 2]"),
        ("sft_round2[sft round 2]", "alignment"),
        ("alignment", "evaluate"),
        ("alignment", "verifier[verifier: reward_model from the final policy]"),
        ("verifier[verifier: reward_model from the final policy]", "evaluate"),
        ("alignment", "distill"),
        ("evaluate", "registry[(MLflow registry)]"),
        ("registry[(MLflow registry)]", "gate{gate}"),
        ("gate{gate}", "champion([champion alias])"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The stage registry: print it, or (re)write docs/architecture.md from it.")
    parser.add_argument("--write", action="store_true", help=f"write {ARCHITECTURE}")
    args = parser.parse_args(argv)
    text = architecture_markdown()
    if args.write:
        ARCHITECTURE.write_text(text)
        print(f"wrote {ARCHITECTURE}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
