"""The evaluation's estimators and per-problem scoring: pure functions of answers and rewards.

components/evaluate.py's docstring defines every metric; this module computes them from the
greedy and sampled responses (and the reward model's scores), with no model in sight, so the
tests check each against brute force and hand-built cases.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

from components.answers import equivalent, extract_answer, extract_free_answer, is_correct
from components.rewards import sigmoid  # the reward_model reward's squashing, so the gap reads on its scale

ECE_BINS = 10


# ---------------------------------------------------------------- estimators


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: probability that at least one of k draws (of n, c correct) is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_answer(answers: Sequence[str | None]) -> str | None:
    """Most frequent non-empty answer, counting math-equivalent ones together; ties go to the answer seen first."""
    return weighted_majority_answer(answers, [1.0] * len(answers))


def equivalence_classes(answers: Sequence[str | None]) -> list[str | None]:
    """Each answer replaced by the first-seen answer it is math-equivalent to (`31.0` votes with `31`)."""
    representatives: list[str] = []
    classes: list[str | None] = []
    for answer in answers:
        if answer is None:
            classes.append(None)
            continue
        same = next((r for r in representatives if equivalent(answer, r)), None)
        if same is None:
            representatives.append(same := answer)
        classes.append(same)
    return classes


def weighted_majority_answer(answers: Sequence[str | None], weights: Sequence[float]) -> str | None:
    """The non-empty answer whose math-equivalence class has the largest total weight (its first-seen
    member stands for it); ties go to the class seen first."""
    totals: dict[str, float] = {}
    for answer, weight in zip(equivalence_classes(answers), weights, strict=True):
        if answer is not None:
            totals[answer] = totals.get(answer, 0.0) + weight
    if not totals:
        return None
    return max(totals, key=totals.__getitem__)  # dicts keep first-seen order; max keeps the first


def bradley_terry_weights(rewards: Sequence[float]) -> list[float]:
    """Softmax of the rewards: each sample's share of exp(reward), computed stably."""
    top = max(rewards)
    exps = [math.exp(r - top) for r in rewards]
    total = sum(exps)
    return [e / total for e in exps]


def best_of_n_index(rewards: Sequence[float]) -> int:
    """Index of the highest reward; ties go to the earlier sample."""
    return max(range(len(rewards)), key=rewards.__getitem__)


def chosen_is_correct(answers: Sequence[str | None], correct: Sequence[bool], chosen: str | None) -> bool:
    """Correctness of a voted answer, read off the first sample that gave it (no re-checking)."""
    return chosen is not None and correct[answers.index(chosen)]


def agreement(answers: Sequence[str | None]) -> float:
    """Share of samples that give the majority answer (or an equivalent one): self-consistency's confidence."""
    majority = majority_answer(answers)
    return 0.0 if majority is None else sum(a == majority for a in equivalence_classes(answers)) / len(answers)


def _calibration_bins(confidences: Sequence[float], outcomes: Sequence[bool], n_bins: int) -> dict[int, list[tuple[float, bool]]]:
    """Equal-width bins on [0, 1], in first-seen order: the one binning ECE and the reliability diagram share."""
    bins: dict[int, list[tuple[float, bool]]] = {}
    for confidence, outcome in zip(confidences, outcomes, strict=True):
        index = min(int(confidence * n_bins), n_bins - 1)  # confidence 1.0 belongs to the last bin
        bins.setdefault(index, []).append((confidence, outcome))
    return bins


def expected_calibration_error(confidences: Sequence[float], outcomes: Sequence[bool], n_bins: int = ECE_BINS) -> float:
    """ECE with equal-width bins on [0, 1]: sum over bins of |accuracy - mean confidence|, weighted by bin size."""
    if not confidences:
        return 0.0
    error = 0.0
    for members in _calibration_bins(confidences, outcomes, n_bins).values():
        mean_confidence = sum(c for c, _ in members) / len(members)
        accuracy = sum(o for _, o in members) / len(members)
        error += len(members) / len(confidences) * abs(accuracy - mean_confidence)
    return error


@dataclass(frozen=True)
class CalibrationBin:
    """One non-empty bin of a reliability diagram: [low, high), its size, mean confidence and accuracy."""

    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


def calibration_bins(confidences: Sequence[float], outcomes: Sequence[bool], n_bins: int = ECE_BINS) -> list[CalibrationBin]:
    """The non-empty bins expected_calibration_error sums over, by rising confidence."""
    bins = _calibration_bins(confidences, outcomes, n_bins)
    return [
        CalibrationBin(
            low=index / n_bins,
            high=(index + 1) / n_bins,
            count=len(members),
            confidence=sum(c for c, _ in members) / len(members),
            accuracy=sum(o for _, o in members) / len(members),
        )
        for index, members in sorted(bins.items())
    ]


def reward_auc(rewards_per_problem: Sequence[Sequence[float]], correct_per_problem: Sequence[Sequence[bool]]) -> float | None:
    """P(a correct sample outscores a wrong sample of the same problem), ties half; None without such pairs."""
    wins = pairs = 0.0
    for rewards, correct in zip(rewards_per_problem, correct_per_problem, strict=True):
        right = [r for r, ok in zip(rewards, correct, strict=True) if ok]
        wrong = [r for r, ok in zip(rewards, correct, strict=True) if not ok]
        for r in right:
            for w in wrong:
                wins += 1.0 if r > w else 0.5 if r == w else 0.0
        pairs += len(right) * len(wrong)
    return wins / pairs if pairs else None


def scaling_sizes(num_samples: int) -> list[int]:
    """1, 2, 4, ... up to num_samples, and num_samples itself: the test-time-scaling x axis."""
    sizes, size = [], 1
    while size < num_samples:
        sizes.append(size)
        size *= 2
    return sizes + [num_samples]


# ---------------------------------------------------------------- scoring


def score_at_k(row: dict, k: int) -> dict[str, float]:
    """pass@k, maj@k (and bon@k, wmaj@k when the samples have rewards) of one problem."""
    answers, correct = row["sample_answers"][:k], row["sample_correct"][:k]
    scores = {
        f"pass@{k}": pass_at_k(len(row["sample_correct"]), sum(row["sample_correct"]), k),
        f"maj@{k}": float(chosen_is_correct(answers, correct, majority_answer(answers))),
    }
    if "sample_rewards" in row:
        rewards = row["sample_rewards"][:k]
        scores[f"bon@{k}"] = float(correct[best_of_n_index(rewards)])
        weighted = weighted_majority_answer(answers, bradley_terry_weights(rewards))
        scores[f"wmaj@{k}"] = float(chosen_is_correct(answers, correct, weighted))
    return scores


def problem_row(response: str, sampled: list[str], reference: str, rewards: list[float] | None) -> dict:
    """One predictions.jsonl row: the greedy answer and every sample's answer and correctness."""
    answer = extract_answer(response)
    sample_answers = [extract_answer(s) for s in sampled]
    row = {
        "reference": reference,
        "greedy": response,
        "greedy_answer": answer,
        "greedy_correct": is_correct(answer, reference),
        "greedy_free_text_correct": is_correct(extract_free_answer(response), reference),
        "sample_answers": sample_answers,
        "sample_correct": [is_correct(a, reference) for a in sample_answers],
    }
    if rewards is not None:
        row["sample_rewards"] = rewards
    return row


def score_problems(
    greedy: list[str], samples: list[list[str]], references: list[str], ks: list[int], rewards: list[list[float]] | None = None
) -> tuple[dict, list[dict]]:
    """Per-problem records and the aggregate metrics of the eval set."""
    per_problem_rewards = rewards if rewards is not None else [None] * len(greedy)
    rows = [problem_row(*args) for args in zip(greedy, samples, references, per_problem_rewards, strict=True)]
    n = max(1, len(rows))
    totals: Counter = Counter()
    for row in rows:
        totals["pass@1"] += row["greedy_correct"]
        totals["free_text_pass@1"] += row["greedy_free_text_correct"]
        totals["format_rate"] += row["greedy_answer"] is not None
        totals["sample_accuracy"] += sum(row["sample_correct"]) / len(row["sample_correct"])
        for k in ks:
            scores = score_at_k(row, k)
            scores.pop("pass@1", None)  # pass@1 stays greedy; its sampled estimate is sample_accuracy
            totals.update(scores)
    metrics = {name: value / n for name, value in totals.items()}
    confidences, outcomes = calibration_pairs(rows)
    # A model that never gives an answer has no confidence to calibrate: its ECE (0 by the formula)
    # is not measured, so the gate's ece guard does not hold a model that answers to that "perfect" 0.
    if any(confidences):
        metrics["ece"] = expected_calibration_error(confidences, outcomes)
    if rewards is not None:
        metrics.update(reward_metrics(rows, metrics["sample_accuracy"]))
    return metrics, rows


def calibration_pairs(rows: list[dict]) -> tuple[list[float], list[bool]]:
    """Per problem, what ece bins: self-consistency's confidence (agreement) and whether the majority answer is right."""
    confidences = [agreement(row["sample_answers"]) for row in rows]
    outcomes = [chosen_is_correct(row["sample_answers"], row["sample_correct"], majority_answer(row["sample_answers"])) for row in rows]
    return confidences, outcomes


def reward_metrics(rows: list[dict], sample_accuracy: float) -> dict[str, float]:
    """mean_reward, reward_accuracy_gap and (when defined) reward_auc of rewarded samples."""
    flat = [r for row in rows for r in row["sample_rewards"]]
    metrics = {
        "mean_reward": sum(flat) / len(flat),
        "reward_accuracy_gap": sum(sigmoid(r) for r in flat) / len(flat) - sample_accuracy,
    }
    auc = reward_auc([row["sample_rewards"] for row in rows], [row["sample_correct"] for row in rows])
    if auc is not None:
        metrics["reward_auc"] = auc
    return metrics


def scaling_scores(rows: list[dict], sizes: Sequence[int]) -> dict[str, list[list[float]]]:
    """Every problem's score per series and N: {"pass@N": [[problem scores at sizes[0]], ...], ...}.

    The test-time-scaling curve is their means; its interval bands resample them."""
    scores: dict[str, list[list[float]]] = {}
    for i, size in enumerate(sizes):
        for row in rows:
            for name, value in score_at_k(row, size).items():
                columns = scores.setdefault(name.replace(f"@{size}", "@N"), [[] for _ in sizes])
                columns[i].append(value)
    return scores


def scaling_curve(rows: list[dict], num_samples: int) -> dict[str, list[float]]:
    """Accuracy against N (the test-time compute): {"n": [...], "pass@N": [...], "maj@N": [...], ...}."""
    sizes = scaling_sizes(num_samples)
    curve: dict[str, list[float]] = {"n": [float(s) for s in sizes]}
    n = max(1, len(rows))
    for name, columns in scaling_scores(rows, sizes).items():
        curve[name] = [sum(column) / n for column in columns]
    return curve
