"""Base stage: the model every later stage starts from.

Local profile (`source: scratch`): train a tiny BPE tokenizer on the synthetic corpus, build a
small Llama-style model from the config and pretrain it briefly on the plain-text math corpus
(worked problems and arithmetic drills, no chat format), with the loss on the answers only,
which is what makes a 1M-parameter model learn to read and to carry in minutes. Cluster
profile (`source: pretrained`): load a Hugging Face model id or path and use it as is.

A base pretrained here then checks itself on the validation split: the first step of each
validation solution as a bare sum (`968+680=`). At this size, whether pretraining crosses from
estimating a sum to adding it digit by digit depends on the seed (bench/results/tuning.md), and
every later stage inherits a base that did not: the stage says so in its result (`warning`), so
the operator reads it in the run's log and summary rather than in the final table. With
`restarts`, a base under the floor is pretrained again from another seed: chosen on validation,
and every try is in the result.

    posttrain base --params params.yaml --out artifacts/base/manual
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from components.answers import BARE_PROBE_TOKENS, completes_with, solution_steps
from components.artifacts import DataError, read_records
from components.config import StageResult, StrictModel
from components.generation import generate
from components.modeling import build_model, count_parameters, load_model, load_tokenizer, save_pretrained, train_tokenizer
from components.plain_text import pretrain


class BaseConfig(StrictModel):
    source: Literal["scratch", "pretrained"] = Field("scratch", description="build a tiny model, or load one")
    model_name_or_path: str | None = Field(None, description="hub id or path (source: pretrained)")
    vocab_size: int = Field(384, ge=300, le=65536)
    hidden_size: int = Field(128, ge=16)
    layers: int = Field(3, ge=1)
    heads: int = Field(4, ge=1)
    kv_heads: int = Field(2, ge=1)
    intermediate_size: int = Field(512, ge=16)
    max_positions: int = Field(256, ge=64)
    steps: int = Field(2400, ge=0, description="pretraining optimizer steps")
    batch_size: int = Field(64, ge=1)
    micro_batches: int = Field(
        3,
        ge=1,
        description="each batch, sorted by length, in N passes whose gradients add up to the batch's: less padding, the same update",
    )
    learning_rate: float = Field(1e-3, gt=0, le=1)
    warmup_steps: int = Field(60, ge=0)
    weight_decay: float = Field(0.01, ge=0, lt=1, description="AdamW's decoupled weight decay")
    seed: int = 0
    min_val_probe: float = Field(
        0.5,
        ge=0,
        le=1,
        description="the share of validation sums (`968+680=`) a base pretrained here must answer; below it the stage warns "
        "that the base did not learn the arithmetic its task needs (learned bases answer 0.9+, stuck ones under 0.15)",
    )
    restarts: int = Field(
        2,
        ge=0,
        le=5,
        description="while a base answers under min_val_probe of the validation sums, pretrain it again from seed + 1000·k, "
        "up to this many more times; the first over the floor is kept (else the best, with the warning)",
    )
    probe_every: int = Field(
        200,
        ge=0,
        description="every N pretraining steps the base answers the validation sums, printed and kept in its result "
        "(info.tries[].val_probe_curve): where a base leaves the plateau (0: only at the end)",
    )
    abandon_at: float = Field(
        0.5,
        gt=0,
        le=1,
        description="with a restart left, a pretraining that still answers under abandon_below of the validation sums "
        "this far through its steps is stopped there and the next seed started (checked at the probes, probe_every)",
    )
    abandon_below: float = Field(
        0.1,
        ge=0,
        le=1,
        description="the share of validation sums under which a pretraining is abandoned at abandon_at (0: never abandon); "
        "half-way, base seed 2000 answered 0.56 and went on to 0.93, stuck seed 0 answered 0.02",
    )

    @model_validator(mode="after")
    def _check(self) -> BaseConfig:
        if self.source == "pretrained" and not self.model_name_or_path:
            raise ValueError("source is 'pretrained' but model_name_or_path is not set")
        if self.hidden_size % self.heads or self.heads % self.kv_heads:
            raise ValueError("hidden_size must divide by heads, and heads by kv_heads")
        return self


Config = BaseConfig  # the stage contract's name for it


def tokenizer_corpus(inputs: dict[str, str]) -> list[str]:
    """Pretraining text plus the SFT conversations, so the tokenizer knows the words too."""
    texts = [r["text"] for r in read_records(inputs["pretrain"])]
    for record in read_records(inputs["sft"]):
        texts.extend(m["content"] for m in record["messages"])
    return texts


def use_pretrained(name_or_path: str, out_dir: Path, start: float) -> StageResult:
    """Nothing to train: resolve the model (a GGUF is imported into `out_dir` first), record its identity.

    Later stages load it from the resolved folder: a local one, or the hub id's snapshot in the
    Hugging Face cache. A hub id that is not cached fails here, before any training."""
    from components.model_import import import_model, resolve_model

    source = Path(name_or_path)
    if source.suffix == ".gguf" or (source.is_dir() and any(source.glob("*.gguf"))):
        resolved = resolve_model(str(import_model(name_or_path, out_dir)))
        resolved_from = {"imported_from": name_or_path}
    else:
        resolved, resolved_from = resolve_model(name_or_path), {}
    tokenizer, model = load_tokenizer(resolved.path), load_model(resolved.path)
    return StageResult(
        stage="base",
        outputs={"model": resolved.path},
        metrics={"parameters": float(count_parameters(model))},
        info={"source": "pretrained", "vocab_size": len(tokenizer), **resolved.lineage(), **resolved_from},
        wall_seconds=time.perf_counter() - start,
    )


RESTART_SEED_STRIDE = 1000  # a restart's seed: seed + 1000·k, clear of the small seed offsets the seed-spread bench shifts by


def run(cfg: Config, inputs: dict[str, str], out_dir: str) -> StageResult:
    """Build (or load) the base model and save it under `out_dir/model`."""
    start = time.perf_counter()
    model_dir = Path(out_dir) / "model"
    if cfg.source == "pretrained":
        return use_pretrained(cfg.model_name_or_path, Path(out_dir), start)
    if not inputs.get("pretrain"):
        raise DataError(
            "base: source is 'scratch' but there is no pretraining corpus (input `pretrain`): "
            "set data.n_pretrain above 0, give data.files.pretrain, or load a model with base.source: pretrained"
        )
    import torch

    torch.manual_seed(cfg.seed)
    tokenizer, texts, probes = pretraining_inputs(cfg, inputs)
    seeds = [cfg.seed + RESTART_SEED_STRIDE * k for k in range(1 + (cfg.restarts if probes else 0))]  # no sums: no restart
    tries, kept = [], None
    for attempt, seed in enumerate(seeds):
        tried = pretrain_once(cfg, tokenizer, texts, probes, seed, may_abandon=attempt < len(seeds) - 1)  # the last one finishes
        tries.append({k: v for k, v in tried.items() if k not in ("model", "curve")})
        kept = tried if kept is None or preference(tried) > preference(kept) else kept  # only the best model stays in memory
        if not probes or tried["val_probe_accuracy"] >= cfg.min_val_probe:
            break
        if attempt + 1 < len(seeds):  # said as it happens: a restart costs a pretraining's time
            why = (  # an abandoned try's last line already said its share and why
                ""
                if "abandoned_at_step" in tried
                else f" answers {tried['val_probe_accuracy']:.3f} of {len(probes)} validation sums (base.min_val_probe {cfg.min_val_probe}):"
            )
            print(
                f"[base] seed {seed}{why} pretraining again from seed {seeds[attempt + 1]} (restart {attempt + 1} of {cfg.restarts})",
                flush=True,
            )
    save_pretrained(kept["model"], tokenizer, model_dir)
    metrics = {"parameters": float(count_parameters(kept["model"])), "final_loss": kept["final_loss"]}
    info = {"source": "scratch", "vocab_size": len(tokenizer)}
    if probes:
        metrics |= {"val_probe_accuracy": kept["val_probe_accuracy"], "pretraining_tries": float(len(tries))}
        info |= {"seed_kept": kept["seed"], "tries": tries}
        info.update(arithmetic_check(cfg, metrics, probes))
    return StageResult(
        stage="base",
        outputs={"model": str(model_dir)},
        metrics=metrics,
        curves={"pretrain_loss": kept["curve"]},
        info=info,
        wall_seconds=time.perf_counter() - start,
    )


def pretraining_inputs(cfg: Config, inputs: dict[str, str]) -> tuple:
    """What every pretraining try shares: the tokenizer trained on the corpus, the corpus's texts, and the validation sums
    to check a try by (none without a validation split)."""
    tokenizer = train_tokenizer(tokenizer_corpus(inputs), cfg.vocab_size)
    texts = [r["text"] for r in read_records(inputs["pretrain"])]
    return tokenizer, texts, validation_sums(inputs["val"]) if inputs.get("val") else []


def preference(tried: dict) -> tuple[bool, float]:
    """Which try a base keeps: a finished pretraining over an abandoned one, then the most validation sums answered."""
    return "abandoned_at_step" not in tried, tried.get("val_probe_accuracy", 0.0)


def pretrain_once(cfg: Config, tokenizer, texts: list[str], probes: list[dict], seed: int, may_abandon: bool = False) -> dict:
    """One base from `seed`: the model, its loss curve and final loss, and (with `probes`) the share of the sums it answers,
    at every `probe_every` steps and at the end. Stopped part-way when it is still on the plateau and `may_abandon`."""
    model = build_model(tokenizer, cfg.hidden_size, cfg.layers, cfg.heads, cfg.kv_heads, cfg.intermediate_size, cfg.max_positions, seed)
    settings = {k: getattr(cfg, k) for k in ("steps", "batch_size", "micro_batches", "learning_rate", "warmup_steps", "weight_decay")}
    desc = "pretraining base" if seed == cfg.seed else f"pretraining base (restart, seed {seed})"
    probe_curve: list[tuple[int, float]] = []  # (steps done, share of the sums answered)
    abandoned_at: int | None = None

    def check(step: int) -> bool:
        """The sums answered so far; True (stop) when this pretraining is past abandon_at and still under abandon_below."""
        nonlocal abandoned_at
        accuracy = probe_accuracy(model, tokenizer, probes)
        probe_curve.append((step, accuracy))
        abandon = may_abandon and step >= cfg.abandon_at * cfg.steps and accuracy < cfg.abandon_below
        print(
            f"[base] seed {seed}, step {step} of {cfg.steps}: answers {accuracy:.3f} of {len(probes)} validation sums"
            + (f", under base.abandon_below {cfg.abandon_below} at {cfg.abandon_at:.0%} of its steps: abandoned" if abandon else ""),
            flush=True,
        )
        abandoned_at = step if abandon else None
        return abandon

    checking = {"check_every": cfg.probe_every, "check": check} if probes and cfg.probe_every else {}
    curve = (
        pretrain(model, tokenizer, texts, max_length=cfg.max_positions, seed=seed, desc=desc, **settings, **checking) if cfg.steps else []
    )
    tried = {"seed": seed, "model": model, "curve": curve, "final_loss": curve[-1] if curve else float("nan")}
    if probes:
        if abandoned_at is None:  # an abandoned try's last check is its result
            probe_curve.append((cfg.steps, probe_accuracy(model, tokenizer, probes)))
        tried |= {"val_probe_accuracy": probe_curve[-1][1], "val_probe_curve": probe_curve}
        tried |= {} if abandoned_at is None else {"abandoned_at_step": abandoned_at}
    return tried


def validation_sums(val_path: str, limit: int = 200) -> list[dict]:
    """Bare sums from the validation split: each solution's first step (`968+680=` -> `1648`), as the probe set has them.

    None from solutions that are not `a+b=c` steps (a user's own data): then there is nothing to check."""
    probes = {}
    for record in read_records(val_path):
        steps = solution_steps(record.get("solution") or "")
        if steps:
            a, op, b, c = steps[0]
            probes.setdefault(f"{a}{op}{b}=", {"prompt": f"{a}{op}{b}=", "answer": str(c)})
    return list(probes.values())[:limit]


def probe_accuracy(model, tokenizer, probes: list[dict]) -> float:
    """The share of `probes` whose greedy completion starts with the answer (what the evaluate stage's bare probe counts)."""
    replies = generate(model, tokenizer, [p["prompt"] for p in probes], BARE_PROBE_TOKENS, desc="base: validation sums")
    return sum(completes_with(reply[0], p["answer"]) for reply, p in zip(replies, probes, strict=True)) / len(probes)


def arithmetic_check(cfg: Config, metrics: dict[str, float], probes: list[dict]) -> dict:
    """`arithmetic_learned`, and a `warning` naming what the operator can do when the base did not learn it."""
    accuracy = metrics["val_probe_accuracy"]
    if accuracy >= cfg.min_val_probe:
        return {"arithmetic_learned": True}
    tries = int(metrics.get("pretraining_tries", 1))
    tried = f" (the best of {tries} pretrainings)" if tries > 1 else ""
    return {
        "arithmetic_learned": False,
        "warning": (
            f"base did not learn the arithmetic its task needs: it completes {accuracy:.3f} of {len(probes)} validation sums "
            f"(e.g. `{probes[0]['prompt']}`){tried}, under base.min_val_probe {cfg.min_val_probe}; final loss "
            f"{metrics['final_loss']:.3f}. Every later stage starts from it: try another base.seed, more base.steps or "
            "base.restarts (bench/results/tuning.md: which base seeds learn)"
        ),
    }
