"""Throughput of the SFT and GRPO stages on one GPU: tokens/s, MFU, step time, peak memory, generation share.

    python bench/gpu_throughput.py [--size 0.5b|tiny] [--device cuda|cpu] [--sft-steps N] [--grpo-steps N] [--out DIR]
    bash bench/gpu_run.sh     # the same on the device machine, in one call (see its header)

Parts, in this order, each written to the JSON as soon as it is measured (a run stopped at its
time limit keeps what it measured): the device's bf16 matmul peak; SFT (tokens/s and MFU against
that peak); evaluation-style generation (components.generation.generate, batched vs one prompt at
a time); SFT under DeepSpeed ZeRO-2 with infra/deepspeed/zero2.json (in a subprocess
that is a one-rank distributed job); GRPO with HF generate, and with vLLM colocate where vLLM is
installed.

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
import subprocess
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

from components import base, data, evaluate, grpo, sft  # noqa: E402
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


def prepare(work: Path, size: str, params: str, profile: str, sft_cfg, grpo_cfg, generation_prompts: int) -> tuple[dict[str, str], int]:
    """Synthetic data for the steps to run, the project's tokenizer, the model with random weights (and its size)."""
    sequences = sft_cfg.max_steps * sft_cfg.per_device_train_batch_size * sft_cfg.gradient_accumulation_steps
    prompts = grpo_cfg.max_steps * grpo_cfg.per_device_train_batch_size // grpo_cfg.num_generations
    data_cfg = load_section(params, "data", data.Config, profile)
    n_rl = max(16, prompts, generation_prompts)  # GRPO's prompts and the generation part's batch
    counts = {"n_pretrain": 2000, "n_sft": max(64, sequences), "n_rl": n_rl, "n_prefs": 1, "n_eval": 1, "n_probe": 1}
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
    # GRPO's main run is HF generate; a vLLM run (where vLLM is installed) is recorded apart as grpo_vllm.
    overrides = {"sft": {"max_steps": args.sft_steps}, "grpo": {"max_steps": args.grpo_steps, "generation_backend": "hf"}}
    for stage in overrides.values():
        stage["save_steps"] = stage["max_steps"]  # only the end-of-training checkpoint, outside the timed steps
        stage["resume"] = False
        stage["deepspeed"] = None  # one process without a launcher: ZeRO has no other rank to shard across
        if args.device == "cpu":
            stage |= {"use_cpu": True, "bf16": False}  # CPUs have no fast bf16
    if args.size == "tiny":
        overrides["grpo"] |= TINY_GRPO
    for stage, key, value in args.set:  # a sweep's own changes, recorded like the others
        overrides[stage][key] = value
    configs = {}
    for name, module in (("sft", sft), ("grpo", grpo)):
        cfg = load_section(args.params, name, module.Config, args.profile)
        configs[name] = module.Config.model_validate(cfg.model_dump() | overrides[name])
    return configs, overrides


# ---------------------------------------------------------------- the stages


def run_stage(
    name: str, module, cfg, inputs: dict[str, str], out: Path, device: str, callbacks: list | None = None
) -> tuple[dict, str | None]:
    """Run one real stage under the probe (and any other `callbacks`); its measurements, and the model it wrote (None if it failed)."""
    from trl import GRPOTrainer, SFTTrainer

    probe = StepProbe(sync=gpu_sync(device))
    hook = (SFTTrainer, "compute_loss", probe.counting_batches) if name == "sft" else (GRPOTrainer, "_generate", probe.timing_generation)
    release_memory()
    reset_peak_memory(device)
    say(f"{name}: {cfg.max_steps} steps from {inputs['model']}")
    started = time.perf_counter()
    try:
        with wrapped(*hook):
            result = module.run(cfg, inputs, str(out), callbacks=[probe, *(callbacks or [])])
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


# ---------------------------------------------------------------- MFU, generation, ZeRO-2


def matmul_peak(device: str, size: int = 8192, repeats: int = 10) -> dict:
    """The MFU denominator, measured in this run: bf16 `torch.mm` FLOP/s (mean of `repeats` after 3 warm-ups).

    On a CPU (the dry mode) it is bench/mfu.py's peak at a CPU-sized matrix, in bf16 where the CPU
    computes it natively, else fp32."""
    import torch

    if device != "cuda":
        from bench.mfu import matmul_peak as cpu_peak
        from components.generation import generation_dtype

        dtype = generation_dtype("auto")[0]
        return {"dtype": dtype, "size": 1024, "flops_per_second": cpu_peak(dtype, size=1024, repeats=3)}
    a, b = (torch.randn(size, size, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        torch.mm(a, b)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    del a, b
    release_memory()
    return {"dtype": "bfloat16", "size": size, "flops_per_second": 2 * size**3 * repeats / seconds}


def attach_mfu(stage: dict, model_dir: str, peak: dict) -> None:
    """Model FLOPs per trained token (bench/mfu.py's count: 6N + attention at the mean sequence length) x tokens/s / peak."""
    from bench.mfu import flops_per_token

    per_token = flops_per_token(model_dir, stage["mean_sequence_tokens"])
    achieved = stage["tokens_per_second"] * per_token["total"]
    stage |= {"flops_per_token": per_token, "model_flops_per_second": achieved, "mfu": achieved / peak["flops_per_second"]}
    say(f"sft: {achieved / 1e12:.2f} TFLOP/s of model FLOPs, MFU {stage['mfu']:.1%} of the {peak['dtype']} matmul peak")


def generation_throughput(model_dir: str, prompts_file: str, batch_size: int, max_new_tokens: int, single_prompts: int) -> dict:
    """components.generation.generate (evaluation's and rejection sampling's HF path): one batch of
    `batch_size` prompts against `single_prompts` prompts one at a time; greedy, the same max_new_tokens."""
    from components import accounting
    from components.dataset_frames import read_dataset
    from components.generation import chat_prompts, generate, load_for_generation

    tokenizer, model, backend, why = load_for_generation(model_dir, "hf", precision="auto")
    problems = read_dataset(prompts_file, "rl")
    prompts = chat_prompts(tokenizer, [p["prompt"] for p in problems])
    generate(model, tokenizer, prompts[:2], max_new_tokens=8, batch_size=2)  # warm-up: CUDA context, kernels

    def timed(model, chosen: list[str], batch: int) -> dict:
        with accounting.metered() as usage:
            started = time.perf_counter()
            generate(model, tokenizer, chosen, max_new_tokens=max_new_tokens, batch_size=batch)  # returns text: synchronized
            seconds = time.perf_counter() - started
        tokens = usage.tokens_generated
        return {"prompts": len(chosen), "batch_size": batch, "seconds": seconds, "tokens": tokens, "tokens_per_second": tokens / seconds}

    batched = timed(model, prompts[:batch_size], batch_size)
    single = timed(model, prompts[:single_prompts], 1)
    result = {
        "backend": backend,
        "backend_reason": why,
        "max_new_tokens": max_new_tokens,
        "device": str(model.device),
        "batched": batched,
        "one_at_a_time": single,
        "speedup": batched["tokens_per_second"] / single["tokens_per_second"],
    }
    say(f"generation: {batched['tokens_per_second']:,.0f} tokens/s at batch {batch_size}, {single['tokens_per_second']:,.0f} one at a time")
    del model
    release_memory()
    return result


ZERO2_CONFIG = REPO / "infra" / "deepspeed" / "zero2.json"
ONE_RANK = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29517"}


def zero2_sft(args, model_dir: str, sft_data: str, work: Path) -> dict:
    """SFT under DeepSpeed ZeRO-2 (the cluster's config) for a few steps, as a one-rank distributed job
    (on the CPU too, in the dry mode: DeepSpeed's CPU accelerator runs the same config).

    A subprocess: DeepSpeed initialises torch.distributed and accelerate's process state, which
    must not leak into the stages measured in this process."""
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        return {"skipped": "deepspeed is not installed (carry its wheel in .whl, see bench/gpu_run.sh)"}
    out_json = work / "zero2.json"
    command = [sys.executable, __file__, "--zero2-worker", model_dir, sft_data, str(out_json), "--sft-steps", str(args.zero2_steps)]
    command += ["--params", args.params, "--profile", args.profile]
    say(f"sft with ZeRO-2 ({ZERO2_CONFIG.name}): {args.zero2_steps} steps in a one-rank subprocess")
    try:
        done = subprocess.run(command, env={**os.environ, **ONE_RANK}, timeout=args.zero2_timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.zero2_timeout} s"}
    print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", flush=True)
    if done.returncode != 0 or not out_json.is_file():
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:] or done.stdout[-300:]}"}
    return json.loads(out_json.read_text())


def zero2_worker(args) -> int:
    """The subprocess of zero2_sft: one SFT stage with `deepspeed: infra/deepspeed/zero2.json`, its measurements to a JSON file."""
    model_dir, sft_data, out_json = args.zero2_worker
    cfg = load_section(args.params, "sft", sft.Config, args.profile)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"  # CPU only to try the worker itself where no GPU is
    changes = {"max_steps": args.sft_steps, "save_steps": args.sft_steps, "resume": False, "deepspeed": str(ZERO2_CONFIG)}
    if device == "cpu":
        changes |= {"use_cpu": True, "bf16": False}
    cfg = sft.Config.model_validate(cfg.model_dump() | changes)
    measured, model = run_stage("sft", sft, cfg, {"model": model_dir, "sft": sft_data}, Path(out_json).parent / "zero2-sft", device)
    import deepspeed

    measured |= {
        "deepspeed_version": deepspeed.__version__,
        "config": str(ZERO2_CONFIG.relative_to(REPO)),
        "wrote_model": model is not None,
    }
    Path(out_json).write_text(json.dumps(measured))
    return 0 if model else 1


def vllm_facts() -> dict:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return {
            "installed": False,
            "why_not_measured": "vLLM is not in the device image, and its wheel and CUDA dependencies (hundreds of MB) exceed "
            "what a call can carry (64 MiB); GRPO's HF-generate figures stand alone",
        }
    return {"installed": True, "version": metadata.version("vllm")}


# ---------------------------------------------------------------- report


def write_json(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_throughput.json").write_text(json.dumps(rounded(results), indent=2) + "\n")


def write_report(results: dict, out: Path) -> None:
    write_json(results, out)
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
    dev, ver, m, s, g = r["device"], r["versions"], r["model"], r["sft"], r.get("grpo", {"error": "not run (--parts)"})
    precision = s if "param_dtype" in s else g
    lines = [
        f"# SFT and GRPO stage throughput, {dev['name']} ({r['date'][:10]})",
        "",
        f"`python bench/gpu_throughput.py --size {r['size']} --device {dev['type']} --sft-steps {r['sft_steps']} "
        f"--grpo-steps {r['grpo_steps']}{sets(r)}`: the real stages with the `{r['profile']}` profile of params.yaml, one run. "
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
    lines += extra_sections(r)
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


def sets(r: dict) -> str:
    return "".join(f" --set {stage}.{key}={value}" for stage, key, value in r.get("sets", []))


def extra_sections(r: dict) -> list[str]:
    """MFU, generation, ZeRO-2 and vLLM lines: each part as measured, or why it is missing."""
    lines = []
    peak, s = r.get("matmul_peak", {}), r["sft"]
    if "mfu" in s:
        lines.append(
            f"SFT MFU: **{s['mfu']:.1%}** ({s['model_flops_per_second'] / 1e12:.1f} TFLOP/s of model FLOPs: 6N + attention at "
            f"{s['mean_sequence_tokens']:.0f} tokens/sequence, {s['flops_per_token']['total'] / 1e9:.2f} GFLOP/token) against a "
            f"{peak['dtype']} matmul peak of {peak['flops_per_second'] / 1e12:.1f} TFLOP/s measured in this run "
            f"({peak['size']}x{peak['size']} `torch.mm`). Gradient checkpointing recomputes the forward pass: hardware FLOPs "
            "are ~8N per token, model FLOPs 6N."
        )
        lines.append("")
    g = r.get("generation", {})
    if "batched" in g:
        b, one = g["batched"], g["one_at_a_time"]
        lines.append(
            f"Generation (`components.generation.generate`, {g['backend_reason']}, greedy, {g['max_new_tokens']} new tokens): "
            f"**{b['tokens_per_second']:,.0f} tokens/s** for {b['prompts']} prompts in one batch of {b['batch_size']}, "
            f"{one['tokens_per_second']:,.0f} tokens/s one prompt at a time ({one['prompts']} prompts): **{g['speedup']:.1f}x**."
        )
        lines.append("")
    elif "error" in g:
        lines += [f"Generation: failed: {g['error'][:200]}", ""]
    z = r.get("zero2_sft", {})
    if "tokens_per_second" in z:
        ratio = z["tokens_per_second"] / s["tokens_per_second"] if "tokens_per_second" in s else float("nan")
        lines.append(
            f"SFT under DeepSpeed {z['deepspeed_version']} ZeRO-2 (`{z['config']}`, one rank): {z['tokens_per_second']:,.0f} tokens/s, "
            f"median {z['step_seconds']['median']:.3f} s/step{memory_note(z)}: "
            f"{ratio:.2f}x the plain run's tokens/s (one rank shards nothing; this checks the cluster's config trains on a GPU)."
        )
        lines.append("")
    elif z:
        lines += [f"SFT under DeepSpeed ZeRO-2: {z.get('skipped') or 'failed: ' + z.get('error', '')[:300]}", ""]
    v = r.get("vllm", {})
    if v and not v.get("installed"):
        lines += [f"vLLM colocate: not measured: {v['why_not_measured']}.", ""]
    return lines


def memory_note(stage: dict) -> str:
    allocated = stage.get("peak_memory_allocated_gib")
    return f", peak allocated {allocated:.1f} GiB" if allocated is not None else ""


def table_row(name: str, stage: dict, setup: Callable[[dict], str]) -> str:
    if "error" in stage:
        status = "not run" if stage["error"].startswith("not run") else "failed"
        return f"| {name} | {status} | | | | | {stage['error'][:120]} |"
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


PARTS = ("generation", "zero2", "grpo")


def setting(text: str) -> tuple[str, str, object]:
    """`sft.per_device_train_batch_size=32` -> ("sft", "per_device_train_batch_size", 32); the value is read as YAML."""
    import yaml

    target, sep, value = text.partition("=")
    stage, dot, key = target.partition(".")
    if not sep or not dot or stage not in ("sft", "grpo"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected sft.KEY=VALUE or grpo.KEY=VALUE")
    return stage, key, yaml.safe_load(value)


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default=None, help="model size (default: 0.5b on cuda, tiny on cpu)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--sft-steps", type=int, default=12, help="SFT optimizer steps (the first is a warm-up)")
    parser.add_argument("--grpo-steps", type=int, default=4, help="GRPO optimizer steps (the first is a warm-up)")
    parser.add_argument("--zero2-steps", type=int, default=6, help="SFT steps under DeepSpeed ZeRO-2 (GPU only)")
    parser.add_argument("--zero2-timeout", type=int, default=240, help="seconds before the ZeRO-2 subprocess is stopped")
    parser.add_argument("--gen-tokens", type=int, default=256, help="max_new_tokens of the generation part")
    parser.add_argument(
        "--gen-single", type=int, default=4, help="prompts generated one at a time (the batched run takes evaluate.batch_size)"
    )
    parser.add_argument("--out", default=str(REPO / "bench" / "results"), help="folder for gpu_throughput.json and .md")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--profile", default="cluster", help="params.yaml profile whose sections run")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts to run after SFT (of {','.join(PARTS)})")
    parser.add_argument("--set", action="append", default=[], type=setting, metavar="STAGE.KEY=VALUE", help="change an sft/grpo setting")
    parser.add_argument("--zero2-worker", nargs=3, metavar=("MODEL", "SFT_DATA", "OUT_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.size = args.size or ("0.5b" if args.device == "cuda" else "tiny")
    args.parts = [part for part in args.parts.split(",") if part]
    if unknown := set(args.parts) - set(PARTS):
        parser.error(f"--parts: unknown {sorted(unknown)}; choose from {','.join(PARTS)}")
    if args.sft_steps < 2 or args.grpo_steps < 2 or args.zero2_steps < 2:
        parser.error("--sft-steps, --grpo-steps and --zero2-steps must be at least 2: the first step is a warm-up")
    return args


def check_device(device: str) -> None:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"--device cuda, but torch {torch.__version__} sees no GPU (built for CUDA {torch.version.cuda}); use --device cpu")


def guarded(results: dict, part: str, out: Path, measure: Callable[[], dict], write: Callable[[dict, Path], None] | None = None) -> dict:
    """Measure one part; a failure is recorded under its name and the next part still runs. The JSON is rewritten after each
    (by `write`: another benchmark reusing this one writes its own file)."""
    try:
        results[part] = measure()
    except Exception as exc:
        traceback.print_exc()
        say(f"{part} failed: {exc!r}")
        results[part] = {"error": repr(exc)}
    (write or write_json)(results, out)
    return results[part]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.zero2_worker:
        return zero2_worker(args)
    check_device(args.device)
    configs, overrides = stage_configs(args)
    out = Path(args.out)
    results = {
        "benchmark": "gpu_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": args.size,
        "profile": args.profile,
        "sft_steps": args.sft_steps,
        "grpo_steps": args.grpo_steps,
        "sets": args.set,
        "overrides": overrides,
    } | environment(args.device)
    say(f"device {results['device']['name']}; torch {results['versions']['torch']}, trl {results['versions']['trl']}")
    evaluate_batch = load_section(args.params, "evaluate", evaluate.Config, args.profile).batch_size
    with tempfile.TemporaryDirectory(prefix="gpu-throughput-") as scratch:
        work = Path(scratch)
        say(f"building data, tokenizer and a {args.size} model with random weights in {work}")
        inputs, parameters = prepare(work, args.size, args.params, args.profile, configs["sft"], configs["grpo"], evaluate_batch)
        results["model"] = model_facts(inputs["model"], args.size, parameters)
        say(f"model: {results['model']['parameters'] / 1e6:.1f}M parameters")
        peak = guarded(results, "matmul_peak", out, lambda: matmul_peak(args.device))
        say(f"matmul peak: {peak.get('flops_per_second', 0) / 1e12:.1f} TFLOP/s ({peak.get('dtype')})")
        results["sft"], sft_model = run_stage(
            "sft", sft, configs["sft"], {"model": inputs["model"], "sft": inputs["sft"]}, work / "sft", args.device
        )
        if "error" not in results["sft"] and "error" not in peak:
            guarded(results, "sft_mfu", out, lambda: attach_mfu(results["sft"], inputs["model"], peak) or {"attached_to": "sft"})
        write_json(results, out)
        policy = sft_model or inputs["model"]  # GRPO starts from the SFT model, as in the pipeline
        if "generation" in args.parts:
            generation = functools.partial(generation_throughput, policy, inputs["rl"], evaluate_batch, args.gen_tokens, args.gen_single)
            guarded(results, "generation", out, generation)
        if "zero2" in args.parts:
            guarded(results, "zero2_sft", out, lambda: zero2_sft(args, inputs["model"], inputs["sft"], work))
        results["vllm"] = vllm_facts()
        backends = ["hf", "vllm"] if results["vllm"]["installed"] and args.device == "cuda" else ["hf"]
        for backend in backends if "grpo" in args.parts else []:
            key = "grpo" if backend == "hf" else "grpo_vllm"
            cfg = configs["grpo"].model_copy(update={"generation_backend": backend})
            results[key], _ = run_stage("grpo", grpo, cfg, {"model": policy, "rl": inputs["rl"]}, work / f"grpo-{backend}", args.device)
            results[key]["start_model"] = "sft output" if sft_model else "random base (SFT failed)"
            write_json(results, out)
    write_report(results, out)
    return 1 if any("error" in results.get(part, {}) for part in ("sft", "grpo", "generation", "zero2_sft")) else 0


if __name__ == "__main__":
    raise SystemExit(main())
