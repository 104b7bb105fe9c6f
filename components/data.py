"""Data stage: write the datasets every later stage reads, in TRL's standard formats.

By default it generates synthetic, verifiable math: multi-step arithmetic word problems with
step-by-step solutions and a boxed final answer. Generation is deterministic for a seed, so
the DVC hash of `data/` is reproducible. With `source: files` it normalizes the user's own
JSONL/parquet files (same formats) into `data/` instead.

    python -m components.data --params params.yaml [--profile local]

Files written (one per dataset kind):
    pretrain.jsonl  {"text"}: plain-text math (worked problems, arithmetic drills) for the base
    sft.jsonl       {"messages"}: user question, assistant solution
    prefs.jsonl     {"prompt", "chosen", "rejected"}: correct vs. flawed solution
    rl.jsonl        {"prompt", "answer"}: RL prompts with a verifiable answer
    eval.jsonl      {"prompt", "answer"}: held out, never in any training set
    val.jsonl       {"prompt", "answer"}: validation, what tuning sweeps read; disjoint from eval and training
    probe.jsonl     {"prompt", "answer"}: what the recipe must not cost the base (`probe`): bare
                    arithmetic for a base model (`23+15=`), or general-knowledge questions asked in
                    chat for an instruct model (components.general_knowledge)
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from components import general_knowledge, user_data
from components.answers import THINK_CLOSE, extract_answer, format_solution, solution_steps
from components.artifacts import DataError, digest_path, write_records
from components.config import StageResult, StrictModel, load_section

DATASET_KINDS = ("pretrain", "sft", "prefs", "rl", "eval", "val", "probe")
REQUIRED_USER_KINDS = ("sft", "prefs", "rl", "eval")

NAMES = ("Ana", "Ben", "Cai", "Dev", "Eva", "Fay", "Gus", "Ivy", "Jon", "Kim", "Leo", "Mia")
ITEMS = ("apples", "books", "coins", "marbles", "pens", "shells", "stamps", "cards")
GAINS = ("buys {n} more", "finds {n} more", "gets {n} more", "is given {n} more")
LOSSES = ("gives away {n}", "loses {n}", "sells {n}", "uses {n}")


class DataConfig(StrictModel):
    source: Literal["synthetic", "files"] = Field("synthetic", description="generate, or read `files`")
    out_dir: str = Field("data", description="the DVC-tracked data folder")
    seed: int = 1234
    n_pretrain: int = Field(40000, ge=0, description="plain-text documents for base pretraining")
    pretrain_worked_fraction: float = Field(0.5, ge=0, le=1, description="share of worked problems (the rest: drills)")
    n_sft: int = Field(3000, ge=1)
    n_prefs: int = Field(1600, ge=1, description="preference pairs (correct vs a near-miss); 10% held out by the reward model")
    n_rl: int = Field(800, ge=1)
    n_eval: int = Field(200, ge=1, description="held out: read only by the evaluations of the flow's models")
    n_val: int = Field(200, ge=0, description="validation: what every tuning sweep reads (bench/), disjoint from eval and training")
    n_probe: int = Field(200, ge=1)
    probe: Literal["arithmetic", "general_knowledge"] = Field(
        "arithmetic",
        description="the forgetting probe: bare arithmetic a base model completes (`23+15=`), or general-knowledge "
        "questions an instruct model answers in chat (what the recipe may cost a model that already knew things)",
    )
    min_steps: int = Field(2, ge=1, le=6, description="operations per word problem, at least")
    max_steps: int = Field(4, ge=1, le=6, description="operations per word problem, at most")
    max_operand: int = Field(999, ge=9, le=999, description="largest number in a problem")
    drill_operands: Literal["uniform", "digit_balanced"] = Field(
        "uniform",
        description="how the pretraining drills draw their numbers: uniform up to max_operand (with 999, nine in ten have three "
        "digits), or first a digit count, each as likely, then a number of that many digits (one- and two-digit sums a fair share)",
    )
    files: dict[Literal["pretrain", "sft", "prefs", "rl", "eval", "val", "probe"], str | user_data.FileSpec] = Field(
        default_factory=dict,
        description="kind -> your file: a path (TRL's formats), or {path, format, column names} (components/user_data.py)",
    )
    system_prompt: str | None = Field(
        None,
        description="a system turn put before every prompt but the probe's: it scopes the answer format to the task, so a chat "
        "model keeps answering other questions as before (smol, af505cd: SFT alone kept 0.64 of the general-knowledge probe with one, 0.42 without)",
    )

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) is larger than max_steps ({self.max_steps})")
        if self.probe == "general_knowledge" and self.n_probe > len(general_knowledge.QUESTIONS):
            raise ValueError(
                f"n_probe ({self.n_probe}) is more than the {len(general_knowledge.QUESTIONS)} general-knowledge "
                "questions there are (components/general_knowledge.py)"
            )
        if self.source == "files":
            missing = [kind for kind in REQUIRED_USER_KINDS if kind not in self.files]
            if missing:
                raise ValueError(f"source is 'files' but files has no entry for: {', '.join(missing)}")
        return self


Config = DataConfig  # the stage contract's name for it


# ---------------------------------------------------------------- synthetic problems


def draw_number(rng: random.Random, low: int, high: int, digit_balanced: bool = False) -> int:
    """A number in [low, high]: uniform, or (digit_balanced) a digit count first, each as likely, then uniform among those numbers.

    Uniform draws up to 999 are nine in ten three-digit numbers; a small model that sees few short
    sums can stay on a plateau where it estimates the sum rather than adding digit by digit."""
    if not digit_balanced:
        return rng.randint(low, high)
    digits = rng.randint(len(str(low)), len(str(high)))
    return rng.randint(max(low, 10 ** (digits - 1)), min(high, 10**digits - 1))


def make_problem(rng: random.Random, cfg: Config, digit_balanced: bool = False) -> tuple[str, list[str], int]:
    """One word problem: (question, reasoning steps, answer). All values stay non-negative."""
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    value = draw_number(rng, 10, cfg.max_operand, digit_balanced)
    clauses, steps = [], []
    for _ in range(rng.randint(cfg.min_steps, cfg.max_steps)):
        if value > 1 and rng.random() < 0.5:
            n = draw_number(rng, 1, min(value - 1, cfg.max_operand), digit_balanced)
            clauses.append(rng.choice(LOSSES).format(n=n))
            steps.append(f"{value}-{n}={value - n}")
            value -= n
        else:
            n = draw_number(rng, 1, cfg.max_operand, digit_balanced)
            clauses.append(rng.choice(GAINS).format(n=n))
            steps.append(f"{value}+{n}={value + n}")
            value += n
    start = steps[0].split("+")[0].split("-")[0]
    actions = ", then ".join(clauses)
    question = f"{name} has {start} {item}. {name} {actions}. How many {item} does {name} have now?"
    return question, steps, value


def corrupt_solution(rng: random.Random, steps: list[str], answer: int) -> str:
    """A realistic near-miss, as a model writes them: half an arithmetic slip that propagates, a
    quarter right steps with a wrong final answer, a quarter a format break (the right answer unboxed,
    or the reasoning block left open). The reward model reports its accuracy on each kind."""
    draw = rng.random()
    if draw < 0.5:
        slipped = slipped_solution(rng, steps, answer)
        if slipped is not None:
            return slipped
    if draw < 0.75:
        return format_solution(steps, str(answer + rng.choice((-3, -1, 1, 3, 11))))
    solution = format_solution(steps, str(answer))
    if rng.random() < 0.5:
        return solution.replace(f"\\boxed{{{answer}}}", str(answer))
    return solution.replace(f"{THINK_CLOSE}\n", "")


def slipped_solution(rng: random.Random, steps: list[str], answer: int) -> str | None:
    """The steps with one arithmetic slip carried through to the end (None if it cancels out)."""
    bad_at = rng.randrange(len(steps))
    new_steps, carry = [], None
    for i, step in enumerate(steps):
        left, _ = step.split("=")
        op = "+" if "+" in left else "-"
        a, b = (int(x) for x in left.split(op))
        a = carry if carry is not None else a
        value = a + b if op == "+" else a - b
        if i == bad_at:
            value += rng.choice((-10, -2, -1, 1, 2, 10))
        new_steps.append(f"{a}{op}{b}={value}")
        carry = value
    return format_solution(new_steps, str(carry)) if carry != answer else None


MISTAKE_KINDS = ("format", "step_count", "wrong_operation", "misread_number", "broken_carry", "arithmetic_slip", "wrong_final")


def mistake_kind(reference: str, response: str) -> str:
    """`right`, or the first mistake of `response` against the reference solution, step by step.

    step_count: a clause skipped or one made up; wrong_operation: a gain taken as a loss or back;
    misread_number: a number that is not the question's; broken_carry: a step that does not start
    from the last result (the first step: from the question's first number); arithmetic_slip: a
    step whose result is wrong; wrong_final: right steps, another boxed answer; format: no strict
    answer, or reasoning that is not steps."""
    answer, steps, gold = extract_answer(response), solution_steps(response), solution_steps(reference)
    if answer is None or steps is None or not gold:
        return "format"
    if len(steps) != len(gold):
        return "step_count"
    carry = gold[0][0]
    for (a, op, b, c), (_, gold_op, gold_b, _) in zip(steps, gold, strict=True):
        if op != gold_op:
            return "wrong_operation"
        if b != gold_b:
            return "misread_number"
        if a != carry:
            return "broken_carry"
        if c != (a + b if op == "+" else a - b):
            return "arithmetic_slip"
        carry = c
    return "right" if answer == str(carry) else "wrong_final"  # every step right: carry is the reference's result


def chat_prompt(question: str, system_prompt: str | None = None) -> list[dict]:
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*system, {"role": "user", "content": question}]


def worked_problem_text(question: str, steps: list[str], answer: int) -> str:
    """A worked problem as plain text, as a math corpus would have it (no chat format)."""
    return f"Q: {question}\nA: " + "\n".join(steps) + f"\nSo the answer is {answer}."


def drill_text(rng: random.Random, cfg: Config) -> str:
    """An arithmetic drill like `23+15=38\n38-7=31`: the same line format as reasoning steps."""
    _, steps, _ = make_problem(rng, cfg, digit_balanced=cfg.drill_operands == "digit_balanced")
    return "\n".join(steps)


def pretrain_corpus(rng: random.Random, cfg: Config, worked: list[tuple[str, list[str], int]]) -> list[dict]:
    texts = [worked_problem_text(*problem) for problem in worked]
    texts += [drill_text(rng, cfg) for _ in range(cfg.n_pretrain - len(worked))]
    rng.shuffle(texts)
    return [{"text": text} for text in texts]


def arithmetic_probe(rng: random.Random, cfg: Config) -> list[dict]:
    """Distinct bare sums and differences (`23+15=` -> `38`): what pretraining taught the base."""
    probe: dict[str, dict] = {}
    while len(probe) < cfg.n_probe:
        a, b = rng.randint(10, cfg.max_operand), rng.randint(1, cfg.max_operand)
        op = rng.choice("+-") if a > b else "+"
        probe.setdefault(f"{a}{op}{b}=", {"prompt": f"{a}{op}{b}=", "answer": str(a + b if op == "+" else a - b)})
    return list(probe.values())


def general_knowledge_probe(cfg: Config) -> list[dict]:
    """n_probe of the general-knowledge questions, each a user turn (components.general_knowledge)."""
    chosen = random.Random(cfg.seed).sample(general_knowledge.QUESTIONS, cfg.n_probe)
    return [{"prompt": [{"role": "user", "content": question}], "answer": answer} for question, answer in chosen]


def generate(cfg: Config) -> dict[str, list[dict]]:
    """Every dataset, deterministic for `cfg.seed`; eval questions never appear in training sets."""
    rng = random.Random(cfg.seed)
    n_worked = round(cfg.n_pretrain * cfg.pretrain_worked_fraction)
    needed = cfg.n_eval + cfg.n_val + cfg.n_sft + cfg.n_prefs + cfg.n_rl + n_worked
    problems, seen = [], set()
    attempts = 0
    while len(problems) < needed:
        attempts += 1
        if attempts > needed * 50:
            raise DataError(f"cannot draw {needed} distinct problems: raise max_operand or max_steps")
        question, steps, answer = make_problem(rng, cfg)
        if question not in seen:
            seen.add(question)
            problems.append((question, steps, answer))
    eval_p, sft_p, pref_p, rl_p, val_p = _split(problems, cfg.n_eval, cfg.n_sft, cfg.n_prefs, cfg.n_rl, cfg.n_val)
    worked = problems[cfg.n_eval + cfg.n_sft + cfg.n_prefs + cfg.n_rl + cfg.n_val :]

    def verifiable(batch):
        return [
            {"prompt": chat_prompt(q, cfg.system_prompt), "answer": str(a), "solution": format_solution(s, str(a))} for q, s, a in batch
        ]

    arithmetic = arithmetic_probe(rng, cfg)  # drawn either way, so the datasets drawn after it stay the same for a seed
    probe = arithmetic if cfg.probe == "arithmetic" else general_knowledge_probe(cfg)
    datasets = {
        "pretrain": pretrain_corpus(rng, cfg, worked),
        "sft": [
            {"messages": [*chat_prompt(q, cfg.system_prompt), {"role": "assistant", "content": format_solution(s, str(a))}]}
            for q, s, a in sft_p
        ],
        "prefs": [
            {
                "prompt": chat_prompt(q, cfg.system_prompt),
                "chosen": [{"role": "assistant", "content": format_solution(s, str(a))}],
                "rejected": [{"role": "assistant", "content": corrupt_solution(rng, s, a)}],
            }
            for q, s, a in pref_p
        ],
        "rl": verifiable(rl_p),
        "eval": verifiable(eval_p),
        "val": verifiable(val_p),
        "probe": probe,
    }
    for kind, wanted in (("pretrain", cfg.n_pretrain), ("val", cfg.n_val)):
        if not wanted:  # a pretrained base needs no pretraining corpus; a run that tunes nothing, no validation split
            del datasets[kind]
    return datasets


def _split(problems: list, *sizes: int) -> list[list]:
    """Consecutive slices of `problems` of these sizes (the eval slice first: its problems stay put when later sizes change)."""
    slices, start = [], 0
    for size in sizes:
        slices.append(problems[start : start + size])
        start += size
    return slices


# ---------------------------------------------------------------- user files


def load_user_files(cfg: Config) -> dict[str, list[dict]]:
    """Every file of `files`, read with its column mapping (components.user_data)."""
    return {kind: user_data.load(kind, spec, cfg.system_prompt) for kind, spec in cfg.files.items()}


# ---------------------------------------------------------------- stage entry points


def run(cfg: Config, inputs: dict[str, str] | None = None) -> StageResult:
    """Write every dataset under `cfg.out_dir`; returns their paths, counts and the folder digest."""
    start = time.perf_counter()
    datasets = generate(cfg) if cfg.source == "synthetic" else load_user_files(cfg)
    out_dir = Path(cfg.out_dir)
    outputs = {kind: str(write_records(out_dir / f"{kind}.jsonl", rows)) for kind, rows in datasets.items()}
    return StageResult(
        stage="data",
        outputs={"data_dir": str(out_dir), **outputs},
        metrics={f"count_{kind}": float(len(rows)) for kind, rows in datasets.items()},
        info={"source": cfg.source, "data_digest": digest_path(out_dir)},
        wall_seconds=time.perf_counter() - start,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", default="local")
    args = parser.parse_args(argv)
    result = run(load_section(args.params, "data", Config, args.profile))
    print(result.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
