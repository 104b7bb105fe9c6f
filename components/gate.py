"""The promotion gate: does a challenger model beat the champion, beyond noise, without regressing?

Pure decision logic (no MLflow, no Prefect): `decide(cfg, challenger, champion)` takes what is
known about each model (`Evidence`: its metrics and, for the gate metric, its per-problem scores
on a named eval set) and returns a `GateDecision` whose `reasons` explain every step.

The primary rule: the lower bound of a bootstrap confidence interval of
(challenger - champion) on `cfg.metric` must exceed `cfg.min_improvement`. Which bootstrap
depends on the evidence, and the reason says which one was used:
- paired: both models scored the same problems (same eval-set digest and length); resampling
  problem indices cancels the problems' shared difficulty, the tightest honest interval;
- unpaired: both have per-problem scores but on different eval sets; each side is resampled alone;
- one-sample: only the challenger has per-problem scores (e.g. a champion registered before
  they were recorded); the champion's point value is taken as exact;
- point estimate: no per-problem scores at all; the plain difference must exceed the margin.

Guards then check that no other metric regressed past its threshold (forgetting, calibration,
length). A guard whose metric is missing on either side is skipped, with a reason, and so is one
made vacuous by the champion (`skip_if_champion_zero`: calibration against a champion that is never
right).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from pydantic import Field, model_validator

from components.config import StrictModel

PAIRED, UNPAIRED, ONE_SAMPLE, POINT, NO_CHAMPION = (
    "paired-bootstrap",
    "unpaired-bootstrap",
    "one-sample-bootstrap",
    "point-estimate",
    "no-champion",
)


class GuardConfig(StrictModel):
    """A metric that must not get worse than the champion's by more than `max_regression`."""

    metric: str = Field(..., min_length=1, description="evaluation metric name, e.g. probe_accuracy")
    higher_is_better: bool = Field(..., description="direction of improvement of the metric")
    max_regression: float = Field(..., ge=0.0, description="largest tolerated move in the worse direction")
    relative: bool = Field(False, description="max_regression is a fraction of the champion's value (0.5 = at most 50% worse)")
    skip_if_champion_zero: str | None = Field(
        None,
        min_length=1,
        description="a metric whose 0 on the champion makes this guard vacuous (then it is skipped, with that reason)",
    )


def default_guards() -> list[GuardConfig]:
    return [
        # forgetting: the base capability (the probe set) later stages must keep
        GuardConfig(metric="probe_accuracy", higher_is_better=True, max_regression=0.05),
        # calibration: expected calibration error of the model's confidence. Against a champion none
        # of whose samples is right it is vacuous: its ECE is then its mean agreement, low when its
        # wrong samples disagree, and would hold a challenger that answers right to that figure.
        GuardConfig(metric="ece", higher_is_better=False, max_regression=0.05, skip_if_champion_zero="sample_accuracy"),
        # length: responses may not balloon (relative: tokens have no natural absolute scale)
        GuardConfig(metric="mean_length", higher_is_better=False, max_regression=0.5, relative=True),
    ]


class GateConfig(StrictModel):
    """When the `champion` alias may move to a newly registered model."""

    metric: str = Field("pass@1", min_length=1, description="held-out metric the challenger must beat the champion on")
    min_improvement: float = Field(
        0.0, ge=0.0, le=1.0, description="the CI's lower bound of (challenger - champion) must exceed this margin"
    )
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="two-sided confidence level of the bootstrap interval")
    bootstrap_samples: int = Field(2000, ge=100, le=100_000, description="bootstrap resamples")
    seed: int = Field(0, ge=0, description="bootstrap RNG seed (decisions are reproducible)")
    guards: list[GuardConfig] = Field(default_factory=default_guards, description="metrics that must not regress")
    base_is_first_champion: bool = Field(
        False,
        description="a pretrained base with no champion yet: register the shipped model first as the champion to beat",
    )

    @model_validator(mode="after")
    def _guards_are_unique(self) -> GateConfig:
        names = [guard.metric for guard in self.guards]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"guards: metric(s) {duplicated} listed more than once")
        return self


@dataclass
class Evidence:
    """What the gate knows about one model."""

    label: str  # e.g. "challenger v3"
    metrics: Mapping[str, float]
    per_problem: Sequence[float] | None = None  # per-problem scores of the gate metric (mean = the metric)
    eval_set: str | None = None  # identity of the problems those scores are on


@dataclass
class GateDecision:
    promoted: bool
    reasons: list[str]
    method: str
    metric: str
    challenger_value: float | None = None
    champion_value: float | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None
    guard_failures: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def as_dict(self) -> dict:
        return {**asdict(self), "reason": self.reason}


def decide(cfg: GateConfig, challenger: Evidence, champion: Evidence | None) -> GateDecision:
    """Promote or not, and why. `champion` is None when there is none yet."""
    if champion is None:
        value = challenger.metrics.get(cfg.metric)
        shown = f"{cfg.metric}={value:.4f}" if value is not None else f"{cfg.metric} not measured"
        return GateDecision(True, [f"first model: no champion yet ({shown})"], NO_CHAMPION, cfg.metric, challenger_value=value)
    decision = _primary(cfg, challenger, champion)
    for guard in cfg.guards:
        failure, reason = check_guard(guard, challenger.metrics, champion.metrics)
        decision.reasons.append(reason)
        if failure:
            decision.guard_failures.append(guard.metric)
    decision.promoted = decision.promoted and not decision.guard_failures
    return decision


# ---------------------------------------------------------------- primary metric


def _primary(cfg: GateConfig, challenger: Evidence, champion: Evidence) -> GateDecision:
    metric, mine, theirs = cfg.metric, challenger.metrics.get(cfg.metric), champion.metrics.get(cfg.metric)
    if mine is None or theirs is None:
        missing = challenger.label if mine is None else champion.label
        reason = f"{metric} not measured for {missing}: cannot compare, the champion stays (promote by hand with the promote-model flow)"
        return GateDecision(False, [reason], POINT, metric, mine, theirs)
    method, diffs = _bootstrap(cfg, challenger, champion)
    decision = GateDecision(False, [], method, metric, mine, theirs, difference=mine - theirs, confidence=cfg.confidence)
    versus = f"{metric} {mine:.4f} ({challenger.label}) vs {theirs:.4f} ({champion.label})"
    if diffs is None:
        decision.promoted = decision.difference > cfg.min_improvement
        verdict = "exceeds" if decision.promoted else "does not exceed"
        decision.reasons.append(
            f"{versus}: difference {decision.difference:+.4f} {verdict} the margin {cfg.min_improvement} ({_why(method)})"
        )
        return decision
    tail = (1.0 - cfg.confidence) / 2.0
    decision.ci_low, decision.ci_high = (float(q) for q in np.quantile(diffs, [tail, 1.0 - tail]))
    decision.promoted = decision.ci_low > cfg.min_improvement
    verdict = "beats the champion" if decision.promoted else "does not beat the champion beyond noise"
    decision.reasons.append(
        f"{versus}: {verdict}: {cfg.confidence:.0%} CI of the difference [{decision.ci_low:+.4f}, {decision.ci_high:+.4f}], "
        f"lower bound {'>' if decision.promoted else '<='} margin {cfg.min_improvement} ({_why(method)})"
    )
    return decision


def _bootstrap(cfg: GateConfig, challenger: Evidence, champion: Evidence) -> tuple[str, np.ndarray | None]:
    """The bootstrap distribution of (challenger - champion) the evidence allows, and its name."""
    rng = np.random.default_rng(cfg.seed)
    n = cfg.bootstrap_samples
    mine, theirs = _scores(challenger), _scores(champion)
    if mine is None:
        return POINT, None
    if theirs is None:
        return ONE_SAMPLE, resample_means(mine, n, rng) - champion.metrics[cfg.metric]
    if same_problems(challenger, champion):
        return PAIRED, resample_means(mine - theirs, n, rng)
    return UNPAIRED, resample_means(mine, n, rng) - resample_means(theirs, n, rng)


def _scores(evidence: Evidence) -> np.ndarray | None:
    return np.asarray(evidence.per_problem, dtype=float) if evidence.per_problem else None


def same_problems(a: Evidence, b: Evidence) -> bool:
    return a.eval_set is not None and a.eval_set == b.eval_set and len(a.per_problem or ()) == len(b.per_problem or ())


def resample_means(values: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `samples` bootstrap resamples (problem indices drawn with replacement).

    Drawn as multinomial counts over the distinct values, which is the same distribution as
    resampling indices but costs O(samples x distinct values) instead of O(samples x problems):
    per-problem correctness has two distinct values, so a 100k-problem eval set is as cheap as 20.
    """
    distinct, counts = np.unique(values, return_counts=True)
    drawn = rng.multinomial(len(values), counts / len(values), size=samples)
    return drawn @ distinct / len(values)


def _why(method: str) -> str:
    return {
        PAIRED: "paired bootstrap over the same eval problems",
        UNPAIRED: "unpaired bootstrap: the two models were evaluated on different eval sets",
        ONE_SAMPLE: "one-sample bootstrap: the champion has no per-problem scores, its point value is taken as exact",
        POINT: "point estimates only: no per-problem scores for this metric, no confidence interval",
    }[method]


# ---------------------------------------------------------------- guards


def check_guard(guard: GuardConfig, challenger: Mapping[str, float], champion: Mapping[str, float]) -> tuple[bool, str]:
    """(failed, reason) for one guard; a metric missing on either side skips the guard."""
    if guard.skip_if_champion_zero and champion.get(guard.skip_if_champion_zero) == 0:
        return (
            False,
            f"guard {guard.metric} skipped: the champion's {guard.skip_if_champion_zero} is 0, so its {guard.metric} says nothing to regress from",
        )
    mine, theirs = challenger.get(guard.metric), champion.get(guard.metric)
    if mine is None or theirs is None or not (math.isfinite(mine) and math.isfinite(theirs)):
        side = "challenger" if mine is None or not math.isfinite(mine) else "champion"
        return False, f"guard {guard.metric} skipped: not measured for the {side}"
    worse_by = theirs - mine if guard.higher_is_better else mine - theirs
    if guard.relative:
        worse_by = worse_by / abs(theirs) if theirs else (math.inf if worse_by > 0 else 0.0)
    unit = " (relative)" if guard.relative else ""
    shown = f"guard {guard.metric}: {mine:.4f} vs champion {theirs:.4f}, worse by {max(worse_by, 0.0):.4f}{unit}"
    if worse_by > guard.max_regression:
        return True, f"{shown} > allowed {guard.max_regression}: REGRESSION"
    return False, f"{shown} <= allowed {guard.max_regression}: ok"


# ---------------------------------------------------------------- per-problem scores as text


def encode_correctness(correct: Sequence[bool]) -> str:
    """Per-problem correctness as '0'/'1' characters: a version tag, readable in the MLflow UI."""
    return "".join("1" if ok else "0" for ok in correct)


def decode_correctness(text: str | None) -> list[float] | None:
    if not text or set(text) - {"0", "1"}:
        return None
    return [float(ch) for ch in text]
