"""Throughput of the SFT and GRPO stages on one GPU: tokens/s, step time, peak memory, generation share.

    python bench/gpu_throughput.py [--size 0.5b|tiny] [--device cuda|cpu] [--sft-steps N] [--grpo-steps N] [--out DIR]
    bash bench/gpu_run.sh     # the same on the device machine, in one call (see its header)

Runs the real stages, `components.sft.run` then `components.grpo.run` (from the SFT model), with
the cluster profile of params.yaml for a few steps. Nothing is downloaded: the model is built
here from a config with Qwen2.5-0.5B-Instruct's shape (`--size 0.5b`) or a few-layer one
(`--size tiny`, for CPUs) with random weights, saved in bf16 next to the project's own tokenizer,
and the data comes from components.data's synthetic generator. Random weights cost what trained
ones cost per token; they only change how long completions get (see the .md it writes).

How it measures, without changing what the stages do:
- a TrainerCallback opens a window at each optimizer step's begin and closes it at its end,
  synchronizing with the GPU at both edges (step time);
- SFTTrainer.compute_loss is wrapped to count the non-padding tokens (attention mask) and the
  loss tokens of every micro-batch: the tokens actually trained on;
- GRPOTrainer._generate (prompt tokenization, sampling with HF generate or vLLM, decoding) is
  wrapped with a synchronized timer: the generation share is its time over the step's. GRPO's
  tokens are TRL's own count (`state.num_input_tokens_seen`: prompt + completion tokens);
- peak memory is torch.cuda.max_memory_allocated / max_memory_reserved over each stage's run.
The first step of each stage is a warm-up (CUDA context, allocator, kernel choice) and is not
counted. Results: DIR/gpu_throughput.json and DIR/gpu_throughput.md.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a file, also where the project is not installed (the device machine)

from transformers import TrainerCallback  # noqa: E402

from components import base, data, grpo, sft  # noqa: E402
from components.config import load_section  # noqa: E402

# Qwen2.5-0.5B-Instruct's shape (its config.json), and a CPU-sized one of the same architecture.
SIZES = {
    "0.5b": {
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
    },
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 256,
        "vocab_size": 512,
        "max_position_embeddings": 2048,
    },
}
# A CPU run of GRPO at the cluster's 64 completions of 1024 tokens would take hours.
TINY_GRPO = {"per_device_train_batch_size": 8, "num_generations": 4, "max_completion_length": 32, "length_buffer": 8}
WARMUP_STEPS = 1
VERSIONED = ("torch", "transformers", "trl", "accelerate", "datasets", "tokenizers", "pyarrow", "huggingface_hub", "pydantic")


def say(message: str) -> None:
    print(f"[gpu-throughput] {message}", flush=True)


# ---------------------------------------------------------------- measuring


class StepProbe(TrainerCallback):
    """One record per optimizer step: its wall time and what the wrapped trainer methods saw inside it."""

    def __init__(self, sync: Callable[[], None]):
        self.sync = sync  # torch.cuda.synchronize on GPU: kernels are asynchronous, wall clocks are not
        self.steps: list[dict] = []
        self.model_facts: dict = {}
        self._open: dict | None = None
        self._started = 0.0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        parameter = next(model.parameters())
        self.model_facts = {
            "param_dtype": str(parameter.dtype).removeprefix("torch."),
            "autocast": "bf16" if args.bf16 else ("fp16" if args.fp16 else "none"),
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "train_device": str(parameter.device),
        }

    def on_step_begin(self, args, state, control, **kwargs):
        self.sync()
        self._open = {"tokens_seen_before": state.num_input_tokens_seen} | dict.fromkeys(COUNTERS, 0)
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.sync()
        step, self._open = self._open, None
        step["seconds"] = time.perf_counter() - self._started
        step["trl_tokens_seen"] = state.num_input_tokens_seen - step.pop("tokens_seen_before")
        self.steps.append(step)

    def add(self, **counts) -> None:
        if self._open is None:  # outside a step (there is none in these stages) nothing is counted
            return
        for key, value in counts.items():
            self._open[key] = max(self._open[key], value) if key == "longest" else self._open[key] + value

    def counting_batches(self, compute_loss):
        """Wrap SFTTrainer.compute_loss: count each micro-batch's tokens, then compute as before."""

        @functools.wraps(compute_loss)
        def counted(trainer, model, inputs, *args, **kwargs):
            self.add(**batch_counts(inputs))
            return compute_loss(trainer, model, inputs, *args, **kwargs)

        return counted

    def timing_generation(self, generate):
        """Wrap GRPOTrainer._generate: time it (synchronized) and count the prompt and completion tokens."""

        @functools.wraps(generate)
        def timed(trainer, *args, **kwargs):
            self.sync()
            started = time.perf_counter()
            result = generate(trainer, *args, **kwargs)
            self.sync()
            prompt_ids, completion_ids = result[0], result[1]
            self.add(
                generation_seconds=time.perf_counter() - started,
                generate_calls=1,
                sequences=len(completion_ids),
                prompt_tokens=sum(map(len, prompt_ids)),
                completion_tokens=sum(map(len, completion_ids)),
            )
            return result

        return timed


COUNTERS = (
    "tokens",
    "loss_tokens",
    "padded_tokens",
    "sequences",
    "longest",
    "generation_seconds",
    "generate_calls",
    "prompt_tokens",
    "completion_tokens",
)


def batch_counts(inputs) -> dict[str, int]:
    """Tokens of one collated SFT batch: non-padding, with loss, and as padded."""
    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    tokens = int(mask.sum()) if mask is not None else ids.numel()  # padding-free batches have no padding
    loss_tokens = int((inputs["labels"] != -100).sum()) if "labels" in inputs else tokens
    return {"tokens": tokens, "loss_tokens": loss_tokens, "padded_tokens": ids.numel(), "sequences": ids.shape[0], "longest": ids.shape[1]}


@contextmanager
def wrapped(cls, name: str, wrap: Callable) -> Iterator[None]:
    """Replace `cls.name` by `wrap(original)` while the stage runs: it builds its trainer from the class."""
    original = cls.__dict__.get(name)
    if original is None:
        raise RuntimeError(f"{cls.__name__}.{name} is gone in this TRL version: update bench/gpu_throughput.py's probe")
    setattr(cls, name, wrap(original))
    try:
        yield
    finally:
        setattr(cls, name, original)


# ---------------------------------------------------------------- inputs: data, tokenizer, model


def prepare(work: Path, size: str, params: str, profile: str, sft_cfg, grpo_cfg) -> tuple[dict[str, str], int]:
    """Synthetic data for the steps to run, the project's tokenizer, the model with random weights (and its size)."""
    sequences = sft_cfg.max_steps * sft_cfg.per_device_train_batch_size * sft_cfg.gradient_accumulation_steps
    prompts = grpo_cfg.max_steps * grpo_cfg.per_device_train_batch_size // grpo_cfg.num_generations
    data_cfg = load_section(params, "data", data.Config, profile)
    counts = {"n_pretrain": 2000, "n_sft": max(64, sequences), "n_rl": max(16, prompts), "n_prefs": 1, "n_eval": 1, "n_probe": 1}
    data_cfg = data.Config.model_validate(data_cfg.model_dump() | counts | {"source": "synthetic", "out_dir": str(work / "data")})
    datasets = data.run(data_cfg).outputs
    base_cfg = load_section(params, "base", base.Config, "local")  # the local base stage is what trains a tokenizer
    model_dir, parameters = build_model(work / "model", SIZES[size], datasets, base_cfg.vocab_size, base_cfg.seed)
    return {"model": str(model_dir), "sft": datasets["sft"], "rl": datasets["rl"]}, parameters


def build_model(out: Path, shape: dict, datasets: dict[str, str], vocab_size: int, seed: int) -> tuple[Path, int]:
    """A Qwen2 causal LM of `shape` with random weights, saved in bf16 with the project's BPE tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from components.modeling import count_parameters, save_pretrained, train_tokenizer

    tokenizer = train_tokenizer(base.tokenizer_corpus(datasets), vocab_size)
    if len(tokenizer) > shape["vocab_size"]:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens, more than the model's vocab_size {shape['vocab_size']}")
    config = Qwen2Config(
        **shape,
        tie_word_embeddings=True,
        rope_theta=1e6,
        rms_norm_eps=1e-6,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # random init of 0.5B weights is much faster on a GPU
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    save_pretrained(model, tokenizer, out)
    parameters = count_parameters(model)
    del model
    release_memory()
    return out, parameters


# ---------------------------------------------------------------- settings


def stage_configs(args) -> tuple[dict, dict]:
    """The cluster profile's sft and grpo sections with the few changes a short benchmark needs, and those changes."""
    overrides = {"sft": {"max_steps": args.sft_steps}, "grpo": {"max_steps": args.grpo_steps}}
    for stage in overrides.values():
        stage["save_steps"] = stage["max_steps"]  # only the end-of-training checkpoint, outside the timed steps
        stage["resume"] = False
        stage["deepspeed"] = None  # one process without a launcher: ZeRO has no other rank to shard across
        if args.device == "cpu":
            stage |= {"use_cpu": True, "bf16": False}  # CPUs have no fast bf16
    if args.size == "tiny":
        overrides["grpo"] |= TINY_GRPO
    configs = {}
    for name, module in (("sft", sft), ("grpo", grpo)):
        cfg = load_section(args.params, name, module.Config, args.profile)
        configs[name] = module.Config.model_validate(cfg.model_dump() | overrides[name])
    return configs, overrides


# ---------------------------------------------------------------- the stages


def run_stage(name: str, module, cfg, inputs: dict[str, str], out: Path, device: str) -> tuple[dict, str | None]:
    """Run one real stage under the probe; its measurements, and the model it wrote (None if it failed)."""
    from trl import GRPOTrainer, SFTTrainer

    probe = StepProbe(sync=gpu_sync(device))
    hook = (SFTTrainer, "compute_loss", probe.counting_batches) if name == "sft" else (GRPOTrainer, "_generate", probe.timing_generation)
    release_memory()
    reset_peak_memory(device)
    say(f"{name}: {cfg.max_steps} steps from {inputs['model']}")
    started = time.perf_counter()
    try:
        with wrapped(*hook):
            result = module.run(cfg, inputs, str(out), callbacks=[probe])
    except Exception as exc:  # one stage failing (e.g. out of memory) must not lose the other's numbers
        traceback.print_exc()
        say(f"{name} failed: {exc!r}")
        return {"error": repr(exc), "settings": cfg.model_dump(), "steps": probe.steps} | peak_memory(device), None
    measured = summarize(probe.steps, name) | peak_memory(device)
    measured |= {"settings": cfg.model_dump(), "stage_wall_seconds": round(time.perf_counter() - started, 2), **probe.model_facts}
    if name == "grpo":
        measured |= {k: result.info[k] for k in ("generation_backend", "generation_backend_reason")}
    say(f"{name}: {measured['tokens_per_second']:.0f} tokens/s, {measured['step_seconds']['median']:.3f} s/step")
    return measured, result.outputs["model"]


def summarize(steps: list[dict], stage: str) -> dict:
    """Rates over the steps after the warm-up: sums of tokens over sums of seconds."""
    timed = steps[WARMUP_STEPS:] or steps  # a one-step run has nothing else to report
    seconds = sum(s["seconds"] for s in timed)
    total = {key: sum(s[key] for s in timed) for key in (*COUNTERS, "trl_tokens_seen")}
    summary = {
        "steps_run": len(steps),
        "timed_steps": len(timed),
        "warmup_steps_excluded": len(steps) - len(timed),
        "step_seconds": spread([s["seconds"] for s in timed]),
        "first_step_seconds": round(steps[0]["seconds"], 4) if steps else None,
    }
    if stage == "sft":
        return summary | {
            "tokens_per_second": total["tokens"] / seconds,
            "loss_tokens_per_second": total["loss_tokens"] / seconds,
            "sequences_per_second": total["sequences"] / seconds,
            "tokens_per_step": total["tokens"] / len(timed),
            "sequences_per_step": total["sequences"] / len(timed),
            "mean_sequence_tokens": total["tokens"] / max(1, total["sequences"]),
            "longest_padded_batch": max(s["longest"] for s in timed),
            "padding_fraction": 1 - total["tokens"] / max(1, total["padded_tokens"]),
        }
    generated = total["prompt_tokens"] + total["completion_tokens"]
    return summary | {
        "tokens_per_second": total["trl_tokens_seen"] / seconds,
        "tokens_per_step": total["trl_tokens_seen"] / len(timed),
        "tokens_counted_by_probe_per_step": generated / len(timed),  # the same tokens, from _generate's output
        "generation_share": total["generation_seconds"] / seconds,
        "generation_seconds_per_step": total["generation_seconds"] / len(timed),
        "training_seconds_per_step": (seconds - total["generation_seconds"]) / len(timed),
        "completion_tokens_per_generation_second": total["completion_tokens"] / max(total["generation_seconds"], 1e-9),
        "generate_calls_per_step": total["generate_calls"] / len(timed),
        "completions_per_step": total["sequences"] / len(timed),
        "mean_prompt_tokens": total["prompt_tokens"] / max(1, total["sequences"]),
        "mean_completion_tokens": total["completion_tokens"] / max(1, total["sequences"]),
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "median": statistics.median(values), "min": min(values), "max": max(values)}


# ---------------------------------------------------------------- device facts


def gpu_sync(device: str) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if device == "cuda" else lambda: None


def release_memory() -> None:
    """Drop the last stage's tensors so the next stage's reserved-memory peak is its own."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak_memory(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> dict[str, float | None]:
    import resource

    import torch

    gib = 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / gib  # the whole process so far
    if device != "cuda":
        return {"peak_memory_allocated_gib": None, "peak_memory_reserved_gib": None, "process_peak_rss_gib": rss}
    return {
        "peak_memory_allocated_gib": torch.cuda.max_memory_allocated() / gib,
        "peak_memory_reserved_gib": torch.cuda.max_memory_reserved() / gib,
        "process_peak_rss_gib": rss,
    }


def environment(device: str) -> dict:
    import torch

    versions = {"python": platform.python_version(), "cuda": torch.version.cuda}
    for package in VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        facts = {"type": "cuda", "name": props.name, "memory_gib": props.total_memory / 2**30, "capability": f"{props.major}.{props.minor}"}
    else:
        facts = {"type": "cpu", "name": f"CPU ({os.cpu_count()} cores, {platform.machine()})", "threads": torch.get_num_threads()}
    return {"device": facts, "versions": versions}


def model_facts(model_dir: str, size: str, parameters: int) -> dict:
    from transformers import AutoConfig

    from components.modeling import load_tokenizer

    config = AutoConfig.from_pretrained(model_dir)
    return (
        {
            "architecture": config.architectures[0],
            "shape_of": "Qwen2.5-0.5B-Instruct's shape" if size == "0.5b" else "a few-layer CPU-sized shape",
            "weights": "random init (nothing downloaded), saved in bf16",
            "parameters": parameters,  # tied embeddings counted once
            "tokenizer_tokens": len(load_tokenizer(model_dir)),
        }
        | {k: getattr(config, k) for k in (*SIZES["tiny"], "tie_word_embeddings")}
        | {"rope_theta": config.rope_parameters["rope_theta"]}
    )


# ---------------------------------------------------------------- report


def write_report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_throughput.json").write_text(json.dumps(rounded(results), indent=2) + "\n")
    (out / "gpu_throughput.md").write_text(markdown(results))
    say(f"wrote {out / 'gpu_throughput.json'} and {out / 'gpu_throughput.md'}")


def rounded(value):
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def markdown(r: dict) -> str:
    dev, ver, m, s, g = r["device"], r["versions"], r["model"], r["sft"], r["grpo"]
    precision = s if "param_dtype" in s else g
    lines = [
        f"# SFT and GRPO stage throughput, {dev['name']} ({r['date'][:10]})",
        "",
        f"`python bench/gpu_throughput.py --size {r['size']} --device {dev['type']} --sft-steps {r['sft_steps']} "
        f"--grpo-steps {r['grpo_steps']}`: the real stages with the `{r['profile']}` profile of params.yaml, one run. "
        f"torch {ver['torch']} (CUDA {ver['cuda'] or 'none'}), transformers {ver['transformers']}, TRL {ver['trl']}, Python {ver['python']}.",
        "",
        f"Model: {m['architecture']}, {m['shape_of']} (hidden {m['hidden_size']}, {m['num_hidden_layers']} layers, "
        f"{m['num_attention_heads']}/{m['num_key_value_heads']} heads, intermediate {m['intermediate_size']}, vocab {m['vocab_size']}, "
        f"tied embeddings, {m['parameters'] / 1e6:.3g}M parameters), **random weights** built here (nothing downloaded), with "
        f"the project's {m['tokenizer_tokens']}-token BPE tokenizer and the synthetic math data of components.data.",
        "",
        "| stage | steps (timed) | median s/step | tokens/s | peak allocated GiB | peak reserved GiB | setup |",
        "|---|---|---|---|---|---|---|",
        table_row("SFT", s, sft_setup),
        table_row("GRPO", g, grpo_setup),
        "",
    ]
    if "error" not in g:
        lines += [
            f"GRPO generation share: **{g['generation_share']:.1%}** of step time in `GRPOTrainer._generate` "
            f"({g['generation_backend']}: {g['generation_backend_reason']}); per step {g['generation_seconds_per_step']:.2f} s "
            f"generating, {g['training_seconds_per_step']:.2f} s scoring and training; "
            f"{g['completion_tokens_per_generation_second']:,.0f} completion tokens per second of generation.",
            "",
        ]
    lines += [
        "How to read it:",
        "- SFT tokens/s counts the non-padding tokens of the batches (attention mask), prompt and answer; the loss is on the "
        "answer tokens only (`loss_tokens_per_second` in the JSON). GRPO tokens/s is TRL's `num_input_tokens_seen` (prompt + "
        "completion tokens) per second of whole steps, generation included.",
        f"- The first {WARMUP_STEPS} step(s) of each stage are a warm-up, not counted; step windows are synchronized with the device.",
        "- Random weights cost per token what trained ones do, but they almost never sample the end-of-turn token: completions "
        f"run to `max_completion_length` (mean {g.get('mean_completion_tokens', 0):.0f} tokens here). A trained model stops "
        "earlier, so its GRPO steps are shorter and its generation share lower.",
        f"- Weights are held in {precision.get('param_dtype')} (as the stages load them), autocast {precision.get('autocast')}, "
        f"attention {precision.get('attn_implementation')}. ZeRO (`deepspeed`) is off in one process; the only checkpoint is the "
        "end-of-training one, outside the timed steps. Every setting: `settings` and `overrides` in the JSON.",
        "",
    ]
    return "\n".join(lines)


def table_row(name: str, stage: dict, setup: Callable[[dict], str]) -> str:
    if "error" in stage:
        return f"| {name} | failed | | | | | {stage['error'][:120]} |"
    allocated, reserved = stage["peak_memory_allocated_gib"], stage["peak_memory_reserved_gib"]
    memory = f"{allocated:.1f} | {reserved:.1f}" if allocated is not None else "n/a (CPU) | n/a (CPU)"
    return (
        f"| {name} | {stage['steps_run']} ({stage['timed_steps']}) | {stage['step_seconds']['median']:.3f} | "
        f"{stage['tokens_per_second']:,.0f} | {memory} | {setup(stage)} |"
    )


def sft_setup(stage: dict) -> str:
    c = stage["settings"]
    return (
        f"batch {c['per_device_train_batch_size']} x accumulation {c['gradient_accumulation_steps']}, max_length {c['max_length']}, "
        f"{stage['mean_sequence_tokens']:.0f} tokens/sequence, gradient checkpointing {c['gradient_checkpointing']}"
    )


def grpo_setup(stage: dict) -> str:
    c = stage["settings"]
    return (
        f"{c['per_device_train_batch_size']} completions ({c['per_device_train_batch_size'] // c['num_generations']} prompts x {c['num_generations']}), "
        f"max {c['max_completion_length']} new tokens, prompts {stage['mean_prompt_tokens']:.0f} tokens, beta {c['beta']}"
    )


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default=None, help="model size (default: 0.5b on cuda, tiny on cpu)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--sft-steps", type=int, default=12, help="SFT optimizer steps (the first is a warm-up)")
    parser.add_argument("--grpo-steps", type=int, default=4, help="GRPO optimizer steps (the first is a warm-up)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"), help="folder for gpu_throughput.json and .md")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--profile", default="cluster", help="params.yaml profile whose sft and grpo sections run")
    args = parser.parse_args(argv)
    args.size = args.size or ("0.5b" if args.device == "cuda" else "tiny")
    if args.sft_steps < 2 or args.grpo_steps < 2:
        parser.error("--sft-steps and --grpo-steps must be at least 2: the first step is a warm-up")
    return args


def check_device(device: str) -> None:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"--device cuda, but torch {torch.__version__} sees no GPU (built for CUDA {torch.version.cuda}); use --device cpu")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_device(args.device)
    configs, overrides = stage_configs(args)
    results = {
        "benchmark": "gpu_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": args.size,
        "profile": args.profile,
        "sft_steps": args.sft_steps,
        "grpo_steps": args.grpo_steps,
        "overrides": overrides,
    } | environment(args.device)
    say(f"device {results['device']['name']}; torch {results['versions']['torch']}, trl {results['versions']['trl']}")
    with tempfile.TemporaryDirectory(prefix="gpu-throughput-") as scratch:
        work = Path(scratch)
        say(f"building data, tokenizer and a {args.size} model with random weights in {work}")
        inputs, parameters = prepare(work, args.size, args.params, args.profile, configs["sft"], configs["grpo"])
        results["model"] = model_facts(inputs["model"], args.size, parameters)
        say(f"model: {results['model']['parameters'] / 1e6:.1f}M parameters")
        results["sft"], sft_model = run_stage(
            "sft", sft, configs["sft"], {"model": inputs["model"], "sft": inputs["sft"]}, work / "sft", args.device
        )
        policy = sft_model or inputs["model"]  # GRPO starts from the SFT model, as in the pipeline
        results["grpo"], _ = run_stage("grpo", grpo, configs["grpo"], {"model": policy, "rl": inputs["rl"]}, work / "grpo", args.device)
        results["grpo"]["start_model"] = "sft output" if sft_model else "random base (SFT failed)"
    write_report(results, Path(args.out))
    return 1 if any("error" in results[stage] for stage in ("sft", "grpo")) else 0


if __name__ == "__main__":
    raise SystemExit(main())
