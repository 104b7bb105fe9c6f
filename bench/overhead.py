"""What the pipeline costs over plain TRL: the same SFT, reward-model and DPO training, side by side.

    python bench/overhead.py [--sft-steps 100] [--out bench/results/overhead.json]

1. The pipeline: `post-training` in this process (ephemeral Prefect, SQLite MLflow, DVC in a
   scratch project), the local profile with its base shortened and GRPO, rejection sampling and
   distillation off: data -> validate -> base -> SFT -> reward model -> DPO, each model
   evaluated on a few held-out problems, registered and gated. Each training stage's throughput is
   its trainer's tokens over its time inside `trainer.train()` (components.accounting: the
   non-padding tokens the Trainer counts); the orchestration overhead is the flow's wall time
   over the sum of its stages' wall times (everything the flow does outside a stage: Prefect,
   MLflow logging, DVC, registration, the gate).
2. Plain TRL, right after, on the same data files, starting models, TRL configs (every field
   the stage passes, built by the same function), seeds and steps: `XTrainer(...).train()` and
   nothing else (no callback, no tracking, no cache), timed the same way.
Ratios only, measured in one run (`pipeline / plain`, goal >= 0.97; `flow / stages`, goal <= 1.03):
absolute tokens/s on a shared 2-core machine say little.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STAGES = ("sft", "reward_model", "alignment")


def pipeline(project: Path, sft_steps: int) -> tuple[dict, float]:
    """The flow on the shortened local profile; returns its summary and wall seconds."""
    from components.config import deep_merge
    from flows.params import PipelineParams, load_params
    from flows.post_training import post_training

    local = load_params(REPO / "params.yaml", "local").model_dump(mode="json")
    overrides = {
        "recipe": {"grpo": False, "rejection_sampling": False, "distill": False, "alignment": True, "reward_model": True},
        "alignment": {"pairs": "dataset"},
        "base": {"steps": 100},
        "sft": {"max_steps": sft_steps, "replay_weight": 0},  # the plain TRL script replays nothing: like for like
        "reward_model": {"scorer": "head", "learning_rate": 5e-4},  # TRL's own head, as the plain script trains it
        "evaluate": {"limit": 20, "num_samples": 2, "ks": [1, 2]},
        "data": {"out_dir": str(project / "data")},
        "tracking": {"tracking_uri": f"sqlite:///{project}/mlflow.db", "artifact_location": str(project / "mlflow-artifacts")},
        "paths": {"artifacts_dir": str(project / "artifacts"), "reports_dir": str(project / "reports")},
    }
    params = PipelineParams.model_validate(deep_merge(local, overrides))
    cwd = Path.cwd()
    os.chdir(project)  # DVC and git act on the scratch project
    try:
        started = time.perf_counter()
        summary = post_training(params, force=True)
        return summary | {"_params": params}, time.perf_counter() - started
    finally:
        os.chdir(cwd)


def plain(stage: str, cfg, model: str, data: str, out: Path) -> dict:
    """The same training as a user's ~30-line TRL script: build the trainer, `.train()`, nothing else."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl import DPOTrainer, RewardTrainer, SFTTrainer

    from components.dataset_frames import read_dataset
    from components.modeling import configure_threads
    from components.supervised import SFT_DEFAULTS
    from components.trainer_args import trl_config

    configure_threads()  # the stage's thread count: what differs must be the pipeline, not the threads
    tokenizer = AutoTokenizer.from_pretrained(model)
    if stage == "sft":
        rows = [{"messages": r["messages"]} for r in read_dataset(data, "sft")]
        trainer = SFTTrainer(
            model=AutoModelForCausalLM.from_pretrained(model),
            args=trl_config(cfg, out, defaults=SFT_DEFAULTS),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
        )
    else:
        pairs = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in read_dataset(data, "prefs")]
        if stage == "reward_model":
            from components.reward_model import split_pairs

            pairs, _ = split_pairs(pairs, cfg.held_out_fraction, cfg.seed)  # the stage trains on the same split
            head = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
            head.config.pad_token_id = tokenizer.pad_token_id
            trainer = RewardTrainer(
                model=head,
                args=trl_config(cfg, out, dataset_num_proc=1),
                train_dataset=Dataset.from_list(pairs),
                processing_class=tokenizer,
            )
        else:
            trainer = DPOTrainer(
                model=AutoModelForCausalLM.from_pretrained(model),
                args=trl_config(cfg.dpo, out, dataset_num_proc=1),
                train_dataset=Dataset.from_list(pairs),
                processing_class=tokenizer,
            )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return {"tokens": int(trainer.state.num_input_tokens_seen), "train_seconds": seconds, "steps": trainer.state.global_step}


def scratch_project(root: Path) -> Path:
    """A fresh-clone-like project for the flow: git, and DVC with a local remote."""
    root.mkdir(parents=True)
    env = os.environ | {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@b"}
    for command in (
        ["git", "init", "-q"],
        [sys.executable, "-m", "dvc", "init", "-q"],
        [sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(root / ".dvc-remote")],
        ["git", "commit", "-q", "--allow-empty", "-m", "init"],
    ):
        subprocess.run(command, cwd=root, check=True, capture_output=True, env=env)
    return root


def measure(sft_steps: int, workdir: Path) -> dict:
    project = scratch_project(workdir / "project")
    summary, flow_seconds = pipeline(project, sft_steps)
    params = summary.pop("_params")
    rows = summary["stages"]
    stage_seconds = sum(row["wall_seconds"] for row in rows.values())
    data = Path(params.data.out_dir)
    starts = {
        "sft": (rows["base"]["outputs"]["model"], data / "sft.jsonl", params.sft),
        "reward_model": (rows["sft"]["outputs"]["model"], data / "prefs.jsonl", params.reward_model),
        "alignment": (rows["sft"]["outputs"]["model"], data / "prefs.jsonl", params.alignment),
    }
    results = {}
    for stage in STAGES:
        used = rows[stage]["usage"][0]  # the stage itself; [1] is its evaluation
        through = {"tokens": used["tokens_trained"], "train_seconds": used["train_seconds"], "stage_seconds": used["wall_seconds"]}
        model, path, cfg = starts[stage]
        alone = plain(stage, cfg, model, str(path), workdir / f"plain-{stage}")
        assert alone["tokens"] == through["tokens"], f"{stage}: the two runs trained on different tokens ({alone} vs {through})"
        ratio = (through["tokens"] / through["train_seconds"]) / (alone["tokens"] / alone["train_seconds"])
        results[stage] = {
            "pipeline": through | {"tokens_per_second": through["tokens"] / through["train_seconds"]},
            "plain": alone | {"tokens_per_second": alone["tokens"] / alone["train_seconds"]},
            "throughput_ratio": round(ratio, 4),
        }
    return {
        "stages": results,
        "flow_seconds": flow_seconds,
        "sum_of_stage_seconds": stage_seconds,
        "orchestration_overhead": round(flow_seconds / stage_seconds, 4),
        "stage_seconds": {label: round(row["wall_seconds"], 1) for label, row in rows.items()},
    }


def machine() -> dict:
    import torch

    from components.versioning import git_commit

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "commit": git_commit(REPO, short=True),
    }


def report(result: dict) -> str:
    lines = ["| stage | pipeline tokens/s | plain TRL tokens/s | ratio (goal >= 0.97) |", "|---|---|---|---|"]
    for stage, row in result["stages"].items():
        lines.append(
            f"| {stage} | {row['pipeline']['tokens_per_second']:.0f} | {row['plain']['tokens_per_second']:.0f} | {row['throughput_ratio']:.3f} |"
        )
    lines.append(
        f"\norchestration overhead: flow {result['flow_seconds']:.0f} s / stages {result['sum_of_stage_seconds']:.0f} s = "
        f"{result['orchestration_overhead']:.3f} (goal <= 1.03)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-steps", type=int, default=100)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "overhead.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="overhead-") as workdir:
        result = measure(args.sft_steps, Path(workdir)) | {"machine": machine(), "sft_steps": args.sft_steps}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
