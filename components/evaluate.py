"""Evaluate stage: held-out accuracy of any model, greedy and with test-time sampling.

One greedy and n sampled completions per problem (batched), plus the probe set. Answers are
checked with the strict extractor + math-verify. Metrics (shares in [0, 1] unless said):

- pass@1: greedy decoding, one answer per problem (the promotion gate's headline);
- free_text_pass@1: the same greedy answers read leniently (`answers.extract_free_answer`): a
  model that solves the problem but never boxes its answer counts here, not in pass@1;
- sample_accuracy: mean correctness of single samples (pass@1 under sampling);
- pass@k (k > 1): unbiased estimator (Chen et al. 2021) from the n samples;
- maj@k: self-consistency, the most frequent extracted answer among the first k samples, math-
  equivalent answers voting together (`31`, `31.0` and `62/2` are one vote: `answers.equivalent`);
- ece: expected calibration error of self-consistency over the n samples: confidence is the
  agreement (share of samples giving the majority answer), outcome is "majority answer right",
  10 equal-width bins;
- format_rate, mean_length (tokens of the greedy response);
- probe_accuracy: what later stages must keep of the base (`inputs["probe"]`). A bare probe
  (`23+15=`, a string prompt) counts when the completion starts with the answer; a chat probe
  (a question as a user turn, `data.probe: general_knowledge`) counts when the reply names the
  answer: a whole-word, case-insensitive match ("Paris") after any reasoning block, within
  probe_max_new_tokens;
- forgetting: the base model's probe_accuracy minus this model's (positive = capability lost),
  when `inputs["base_metrics"]` (a base evaluation's metrics.json) or `inputs["base_model"]`
  (then only the probe runs on it) is given.

With a reward model (`inputs["reward_model"]`: one batched forward pass per sample, no extra
generation); without one these metrics are absent, not zero:

- bon@k: best-of-N, is the sample the reward model scores highest among the first k right?
- wmaj@k: majority vote among the first k where each sample weighs exp(reward) (a softmax over
  the k samples). exp(r) is the Bradley-Terry strength the reward model was trained to express,
  so a confident RM tends to best-of-N and an indifferent one to plain maj@k;
- mean_reward: mean raw reward of all samples;
- reward_accuracy_gap: mean sigmoid(reward) minus sample_accuracy. sigmoid(r) is the RM's
  Bradley-Terry probability that the sample beats a score-0 response (the RM is trained
  centred on 0), so it reads as "how good the RM thinks the samples are" on accuracy's scale.
  A gap growing across stages means the reward rises without correctness: reward hacking;
- reward_auc: probability that a correct sample outscores a wrong sample of the same problem
  (ties count half): how well the RM ranks what best-of-N ranks; absent when no problem has
  both right and wrong samples.

Also written: predictions.jsonl (one row per problem, in eval-set order), probe_predictions.jsonl
(per probe: right or not, what a paired forgetting interval resamples), metrics.json, the
test-time-scaling curve (accuracy against N for pass@N, maj@N, bon@N, wmaj@N) as JSON and PNG
(with each series' 95% bootstrap band over problems), the reliability diagram of ece's
confidence bins (reliability.png), and a markdown report showing both.

    posttrain evaluate --params params.yaml --model PATH --out reports/eval/manual \\
        [--reward-model PATH] [--base-model PATH]
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from pydantic import Field, model_validator

from components.answers import BARE_PROBE_TOKENS, THINK_CLOSE, completes_with
from components.artifacts import DataError, write_json, write_records
from components.config import StageResult, StrictModel
from components.dataset_frames import read_dataset
from components.generation import Backend, Precision, chat_prompts, generate, load_for_generation, sample
from components.metrics import scaling_curve, score_problems
from components.modeling import load_model, load_tokenizer
from components.tuning import refuse_held_out, validation_set


class EvaluateConfig(StrictModel):
    max_new_tokens: int = Field(96, ge=1, le=4096)
    num_samples: int = Field(8, ge=1, le=256, description="sampled completions per problem (n)")
    ks: list[int] = Field([1, 4, 8], description="k values for pass@k and maj@k; each <= num_samples")
    temperature: float = Field(0.4, gt=0, le=2.0, description="sampling temperature (greedy is always run too); chosen on validation")
    top_p: float = Field(1.0, gt=0, le=1.0)
    batch_size: int = Field(64, ge=1, description="sequences per generate call")
    limit: int | None = Field(None, ge=1, description="evaluate only the first N problems")
    generation_backend: Backend = Field("auto", description="auto: vLLM when installed with a GPU, else HF generate")
    generation_dtype: Precision = Field("float32", description="weights for HF generate; auto: bf16 where the hardware has it")
    probe_max_new_tokens: int = Field(48, ge=1, le=1024, description="a chat probe's reply length cap (a bare probe reads 8 tokens)")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> EvaluateConfig:
        too_big = [k for k in self.ks if k > self.num_samples or k < 1]
        if too_big:
            raise ValueError(f"ks {too_big} must be between 1 and num_samples ({self.num_samples})")
        return self

    @classmethod
    def greedy_only(cls, **settings) -> EvaluateConfig:
        """Greedy pass@1 and nothing sampled beyond one completion a problem: what a tuning sweep compares models by."""
        return cls(num_samples=1, ks=[1], **settings)


Config = EvaluateConfig  # the stage contract's name for it


# ---------------------------------------------------------------- model passes


def names_answer(reply: str, answer: str) -> bool:
    """Whether a chat reply states `answer` as a whole word or phrase (case-blind), after any reasoning."""
    stated = reply.split(THINK_CLOSE)[-1].lower()
    return re.search(rf"(?<!\w){re.escape(answer.strip().lower())}(?!\w)", stated) is not None


def probe_results(model, tokenizer, probes: list[dict], cfg: Config) -> list[dict]:
    """Per probe, in order: its prompt and answer, the model's reply and whether it got it (a bare
    completion starts with the answer; a chat reply names it). probe_predictions.jsonl's rows, what a
    paired forgetting interval resamples."""
    replies: dict[int, tuple[str, bool]] = {}
    bare = [i for i, p in enumerate(probes) if isinstance(p["prompt"], str)]
    chat = [i for i, p in enumerate(probes) if not isinstance(p["prompt"], str)]
    if bare:
        outputs = generate(
            model, tokenizer, [probes[i]["prompt"] for i in bare], BARE_PROBE_TOKENS, batch_size=cfg.batch_size, desc="probe"
        )
        replies.update({i: (o[0], completes_with(o[0], probes[i]["answer"])) for i, o in zip(bare, outputs, strict=True)})
    if chat:
        prompts = chat_prompts(tokenizer, [probes[i]["prompt"] for i in chat])
        outputs = generate(model, tokenizer, prompts, cfg.probe_max_new_tokens, batch_size=cfg.batch_size, desc="probe (chat)")
        replies.update({i: (o[0], names_answer(o[0], probes[i]["answer"])) for i, o in zip(chat, outputs, strict=True)})
    return [{"prompt": p["prompt"], "answer": p["answer"], "reply": replies[i][0], "correct": replies[i][1]} for i, p in enumerate(probes)]


def probe_accuracy(results: list[dict]) -> float:
    return sum(r["correct"] for r in results) / max(1, len(results))


def sample_completions(model, tokenizer, prompts: list[str], cfg: Config) -> tuple[list[str], list[list[str]]]:
    """The greedy completion and cfg.num_samples sampled ones per prompt: the only generation passes."""
    greedy = [o[0] for o in generate(model, tokenizer, prompts, cfg.max_new_tokens, batch_size=cfg.batch_size, desc="greedy")]
    return greedy, sample(model, tokenizer, prompts, cfg, desc="sampling")


def reward_samples(reward_model_dir: str, problems: list[dict], samples: list[list[str]], batch_size: int) -> list[list[float]]:
    """The reward of every sample, one batched forward pass each, grouped per problem."""
    # The same scorer the reward-model stage measures and rejection sampling / GRPO use, so
    # best-of-N here ranks exactly as they do. That module imports TRL only inside its training
    # functions, so importing it stays light.
    from components.scoring import RewardScorer

    scorer = RewardScorer(reward_model_dir, batch_size=batch_size)
    prompts = [p["prompt"] for p, sampled in zip(problems, samples, strict=True) for _ in sampled]
    flat = iter(scorer.score(prompts, [s for sampled in samples for s in sampled]))
    return [[next(flat) for _ in sampled] for sampled in samples]


def base_probe_accuracy(inputs: dict[str, str], probes: list[dict], cfg: Config) -> float | None:
    """The base model's probe accuracy: read from its evaluation's metrics, or measured on its probe."""
    if inputs.get("base_metrics"):
        path = Path(inputs["base_metrics"])
        if not path.is_file():
            raise DataError(f"base_metrics: no such file {path}")
        base = json.loads(path.read_text())
        if "probe_accuracy" not in base:
            raise DataError(f"base_metrics: {path} has no probe_accuracy (was the base evaluated with a probe set?)")
        return float(base["probe_accuracy"])
    if inputs.get("base_model"):
        model = load_model(inputs["base_model"])
        return probe_accuracy(probe_results(model, load_tokenizer(inputs["base_model"]), probes, cfg))
    return None


def evaluate_for_tuning(cfg: Config, model: str, data_dir: str | Path, out_dir: str | Path, extra_inputs: dict[str, str] | None = None):
    """`run` on the validation split of `data_dir` (components.tuning): the only metrics a sweep may choose by."""
    inputs = {"model": model, "eval": str(validation_set(data_dir)), **(extra_inputs or {})}
    for path in inputs.values():
        refuse_held_out(path, data_dir)
    return run(cfg, inputs, str(out_dir))


# ---------------------------------------------------------------- the stage


def run(cfg: Config, inputs: dict[str, str], out_dir: str) -> StageResult:
    """Evaluate `inputs["model"]` on `inputs["eval"]`.

    Optional inputs: `probe` (probe set), `reward_model` (RM dir: bon@k, wmaj@k, reward metrics),
    `base_metrics` or `base_model` (forgetting; needs `probe`).
    """
    from components import eval_report

    start = time.perf_counter()
    out = Path(out_dir)
    problems = read_dataset(inputs["eval"], "eval")[: cfg.limit]
    probes = read_dataset(inputs["probe"], "probe") if inputs.get("probe") else None
    references = [str(p["answer"]) for p in problems]

    tokenizer, model, backend, why = load_for_generation(inputs["model"], cfg.generation_backend, cfg.seed, cfg.generation_dtype)
    print(f"[evaluate] generating with {backend}: {why}")
    greedy, samples = sample_completions(model, tokenizer, chat_prompts(tokenizer, [p["prompt"] for p in problems]), cfg)
    probed = probe_results(model, tokenizer, probes, cfg) if probes else None
    probe_score = probe_accuracy(probed) if probed else None
    del model  # the reward model and the base model come next: one model in memory at a time

    rewards = reward_samples(inputs["reward_model"], problems, samples, cfg.batch_size) if inputs.get("reward_model") else None
    metrics, rows = score_problems(greedy, samples, references, cfg.ks, rewards)
    metrics["mean_length"] = sum(len(tokenizer(g, add_special_tokens=False)["input_ids"]) for g in greedy) / max(1, len(greedy))
    metrics["n_problems"] = float(len(problems))
    forgetting_note = "measured"
    if probe_score is None:  # user data often has no probe set: say so rather than fail or stay silent
        forgetting_note = "not measured: no probe set (data.files.probe, or `probe` in the synthetic data)"
    else:
        metrics["probe_accuracy"] = probe_score
        base_probe = base_probe_accuracy(inputs, probes, cfg)
        if base_probe is not None:
            metrics["base_probe_accuracy"] = base_probe
            metrics["forgetting"] = base_probe - probe_score
        else:
            forgetting_note = "not measured: no base model to compare with (base_metrics or base_model)"

    curve = scaling_curve(rows, cfg.num_samples)
    label = Path(inputs["model"]).name
    outputs = {
        "predictions": str(write_records(out / "predictions.jsonl", rows)),
        "metrics": str(write_json(out / "metrics.json", metrics)),
        "tts_curve": str(write_json(out / "tts_curve.json", curve)),
        **({"probe_predictions": str(write_records(out / "probe_predictions.jsonl", probed))} if probes else {}),
        "report": str(eval_report.write_stage_report({label: metrics}, out, curve, title=inputs["model"], rows=rows)),
        "tts_plot": str(out / "tts_curve.png"),
        "reliability_plot": str(out / "reliability.png"),
    }
    return StageResult(
        stage="evaluate",
        outputs=outputs,
        metrics=metrics,
        info={
            "model": inputs["model"],
            "reward_model": inputs.get("reward_model"),
            "generation_backend": backend,
            "generation_backend_reason": why,
            "forgetting": forgetting_note,
        },
        wall_seconds=time.perf_counter() - start,
    )
