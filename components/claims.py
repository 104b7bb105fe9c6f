"""The recipe's claims, measured: `reports/claims.md` (and claims.json), built from a run's own results.

Each claim of the R1 recipe becomes one row: what is compared, the measured numbers, a 95%
percentile-bootstrap interval and whether the claim holds. Nothing here is typed in: every number
comes from the run's files (each evaluation's predictions.jsonl and probe_predictions.jsonl, the
reward model's held_out_pairs.jsonl, the stages' usage), so a row that does not hold says so.

- A comparison of two models (GRPO vs its SFT start, distilled vs directly trained student, ...)
  is paired: both answered the same held-out problems, so the bootstrap resamples the per-problem
  differences, which cancels how hard each problem is. It holds when the interval's lower bound
  is above zero (above `margin` for claims with a stated effect size).
- A claim about one model (the reward model beats a coin) resamples its own units (pairs).
- Forgetting is the probe's accuracy, base -> final, paired over the probe problems; the claim
  "the recipe keeps the base's ability" holds when the drop's interval stays under 5 points.

Where a claim cannot be measured (its stage switched off, no probe set), its row says why.

    python -m components.claims reports/summary.json   # rebuild claims.md from a run's summary
    python -m components.claims reports/seed0/summary.json reports/seed1/summary.json --out reports/pooled

Runs of one recipe with other training seeds answer the same held-out problems: `pool` averages
each problem's score over them and bootstraps over problems, so a small effect that one run's
interval cannot resolve can show once the seeds' noise averages out (bench/seed_spread.py pools
its runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from components.artifacts import read_records, write_json
from components.intervals import bootstrap_interval
from components.scoring import ON_POLICY

CONFIDENCE = 0.95
RESAMPLES = 4000
FORGETTING_ALLOWED = 0.05  # the gate's own probe_accuracy guard (params.yaml promotion.guards)
MAJORITY_GOAL = 0.05  # issue 16: maj@8 at least pass@1 + 5 points
REWARD_MODEL_GOAL = 0.85  # issue 16: held-out pairwise accuracy


@dataclass
class Claim:
    """One row of claims.md."""

    claim: str
    measure: str
    left: float | None = None  # the two sides compared (or the one level measured), as shares
    right: float | None = None
    effect: float | None = None  # left - right (or the level), the bootstrap's point estimate
    low: float | None = None
    high: float | None = None
    threshold: float = 0.0  # holds when low > threshold
    holds: bool | None = None  # None: not measured
    note: str = ""
    units: int = 0  # problems (or pairs) resampled
    scores: tuple[list[float], list[float] | None] | None = field(default=None, repr=False)  # per unit (left, right): for pooling runs
    units_id: str = ""  # a fingerprint of the units scored (the held-out problems, the probe, the pairs): runs pool per unit when equal

    def judge(self) -> Claim:
        self.holds = None if self.low is None else self.low > self.threshold
        return self


@dataclass
class ClaimsReport:
    claims: list[Claim]
    seed_spread: dict[str, dict] = field(default_factory=dict)  # claim -> {seeds, effects, sd}, when several seeds were run
    method: str = f"{CONFIDENCE:.0%} percentile bootstrap ({RESAMPLES} resamples), paired over the same problems"

    def as_dict(self) -> dict:
        """claims.json: each row with its per-unit scores, so that runs can be pooled from their claims.json alone."""
        return {
            "method": self.method,
            "claims": [asdict(c) for c in self.claims],
            "seed_spread": self.seed_spread,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ClaimsReport:
        """A report back from claims.json (or a bench result that embeds it)."""
        claims = [Claim(**row) for row in data["claims"]]
        return cls(claims=claims, seed_spread=data.get("seed_spread", {}), method=data["method"])


# ---------------------------------------------------------------- intervals


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of `values`: the evaluation's own percentile bootstrap (components.intervals)."""
    low, high = bootstrap_interval(values, confidence=CONFIDENCE, samples=RESAMPLES)
    return float(np.mean(values)), low, high


def paired(claim: str, measure: str, left: Sequence[float], right: Sequence[float], threshold: float = 0.0, note: str = "") -> Claim:
    """A claim that `left` beats `right` on the same problems: the interval of the mean per-problem difference."""
    if len(left) != len(right) or not left:
        return Claim(claim, measure, note=f"not measured: {len(left)} vs {len(right)} problems, not the same set")
    effect, low, high = mean_interval([a - b for a, b in zip(left, right, strict=True)])
    return Claim(
        claim, measure, left=float(np.mean(left)), right=float(np.mean(right)), effect=effect, low=low, high=high,
        threshold=threshold, note=note, units=len(left), scores=(list(left), list(right)),
    ).judge()  # fmt: skip


def missing(claim: str, measure: str, why: str) -> Claim:
    return Claim(claim, measure, note=f"not measured: {why}")


# ---------------------------------------------------------------- per-problem scores from a run's files


def greedy_scores(predictions: str) -> list[float]:
    return [float(row["greedy_correct"]) for row in read_records(predictions)]


def voted_scores(predictions: str, series: str, k: int) -> list[float]:
    """Per problem, the score of a test-time method over the first k samples (maj, bon, pass)."""
    from components.metrics import score_at_k

    return [score_at_k(row, k).get(f"{series}@{k}", float("nan")) for row in read_records(predictions)]


def probe_scores(probe_predictions: str) -> list[float]:
    return [float(row["correct"]) for row in read_records(probe_predictions)]


# ---------------------------------------------------------------- the claims


@dataclass
class RunFiles:
    """What the claims read from one run: per model label, its evaluation's outputs; the reward model's pairs; usage."""

    evaluations: dict[str, dict[str, str]]  # label -> evaluate outputs (predictions, probe_predictions, ...)
    final: str  # the final policy's label
    reward_pairs: str | None = None  # the reward model's held_out_pairs.jsonl
    tokens_trained: dict[str, int] = field(default_factory=dict)  # label -> tokens its training saw
    steps: dict[str, int] = field(default_factory=dict)  # label -> optimizer steps
    round2_start: str | None = None  # the label the round-2 SFT continued from
    num_samples: int = 8
    best_of_n_scorer: str = "reward_model"  # the stage label of the reward model that scored the final model's samples

    def under(self, root: str | Path) -> RunFiles:
        """The same run with its relative paths read under `root` (a summary read from outside the run's folder)."""

        def resolve(path):
            return path if not isinstance(path, str) or Path(path).is_absolute() else str(Path(root) / path)

        evaluations = {label: {key: resolve(path) for key, path in outputs.items()} for label, outputs in self.evaluations.items()}
        return replace(self, evaluations=evaluations, reward_pairs=resolve(self.reward_pairs))


def build(run: RunFiles) -> ClaimsReport:
    measured = [
        grpo_over_sft,
        whole_recipe_over_sft,
        majority_over_greedy,
        scaling_rises,
        best_of_n_over_greedy,
        reward_model_separates,
        rejection_sampling_over_control,
        distilled_over_direct,
        forgetting,
    ]
    units = {  # what each claim's scores are per unit of: the held-out problems unless named here
        forgetting: units_fingerprint(run.evaluations.get("base", {}).get("probe_predictions"), "prompt"),
        reward_model_separates: units_fingerprint(run.reward_pairs, "prompt"),
    }
    held_out = units_fingerprint(_predictions(run, run.final), "reference")
    claims = []
    for measure in measured:
        row = measure(run)
        row.units_id = units.get(measure, held_out) if row.scores else ""
        claims.append(row)
    return ClaimsReport(claims=claims)


def units_fingerprint(path: str | None, key: str) -> str:
    """A fingerprint of the units a file scores, in order (held-out references, probe prompts, pairs' questions): equal for
    runs of one split. Pairs scored before they kept their question are told apart by their kinds in order."""
    rows = read_records(path) if path else []
    keys = [row.get(key, row.get("kind")) for row in rows if row.get("kind") != ON_POLICY]  # the policy's own pairs: never pooled
    return hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:16]


def pool(reports: Sequence[ClaimsReport]) -> ClaimsReport:
    """The claims of several runs of one recipe (other training seeds, the same held-out problems), pooled.

    Each problem's (each probe question's) score is averaged over the runs before the bootstrap
    resamples problems: a problem stays one unit however many runs answered it, so pooling narrows
    the interval only as far as the runs' own noise (training and sampling seeds) averages out, never
    as if the held-out set were N times larger. A comparison measured on other problems is refused."""
    if len(reports) < 2:
        raise ValueError(f"pooling needs two runs or more, got {len(reports)}")
    if len({len(report.claims) for report in reports}) != 1:
        counts = ", ".join(str(len(report.claims)) for report in reports)
        raise ValueError(f"the runs list {counts} claims: written by other versions of components.claims, nothing to pool")
    claims = [pool_claim(rows) for rows in zip(*(report.claims for report in reports), strict=True)]
    return ClaimsReport(claims=claims, method=pooled_method(len(reports)))


def pooled_method(runs: int) -> str:
    """How pooled claims were measured, said under their table."""
    return (
        f"{CONFIDENCE:.0%} percentile bootstrap ({RESAMPLES} resamples) over problems, each problem's score averaged over "
        f"{runs} runs; notes: each run's own effect"
    )


def pool_claim(rows: Sequence[Claim]) -> Claim:
    """One claim over several runs: per unit, the mean score of each side; judged against the runs' own threshold.

    A claim about one model's level whose runs scored other units (the reward model's held-out pairs, split
    with each run's seed) pools their units side by side instead: every run's pairs, resampled together."""
    first = rows[0]
    if any(row.claim != first.claim for row in rows):
        raise ValueError(f"the runs list other claims ({', '.join(sorted({row.claim for row in rows}))}): written by other versions?")
    note = "per run: " + ", ".join(_signed(row.effect) for row in rows)
    if any(row.scores is None for row in rows):
        return missing(first.claim, first.measure, f"not measured in every run ({note})")
    if any(not row.units_id for row in rows):
        raise ValueError(f"{first.claim}: a run's claims carry no units fingerprint (written before pooling existed): rebuild them"
                         " from its summary (python -m components.claims reports/summary.json)")  # fmt: skip
    same_units = len({row.units_id for row in rows}) == 1
    if first.scores[1] is None:  # one model's level (the reward model's accuracy), over its own units
        if same_units:
            values = np.mean([row.scores[0] for row in rows], axis=0).tolist()
        else:
            values = [value for row in rows for value in row.scores[0]]
            note += f"; each run scored its own {'/'.join(str(len(row.scores[0])) for row in rows)} units: resampled together"
        level, low, high = mean_interval(values)
        return Claim(
            first.claim, first.measure, left=level, effect=level, low=low, high=high, threshold=first.threshold, note=note,
            units=len(values), scores=(values, None), units_id=first.units_id if same_units else "",
        ).judge()  # fmt: skip
    if not same_units:
        raise ValueError(f"{first.claim}: the runs were measured on other problems (another held-out split or probe): nothing to pool")
    left = np.mean([row.scores[0] for row in rows], axis=0).tolist()
    right = np.mean([row.scores[1] for row in rows], axis=0).tolist()
    pooled_row = paired(first.claim, first.measure, left, right, threshold=first.threshold, note=note)
    pooled_row.units_id = first.units_id
    return pooled_row


def _predictions(run: RunFiles, label: str) -> str | None:
    return run.evaluations.get(label, {}).get("predictions")


def grpo_over_sft(run: RunFiles) -> Claim:
    claim, measure = "GRPO lifts pass@1 over the cold-start SFT", "pass@1: grpo - sft"
    grpo, sft = _predictions(run, "grpo"), _predictions(run, "sft")
    if not grpo or not sft:
        return missing(claim, measure, "the grpo stage is switched off")
    return paired(claim, measure, greedy_scores(grpo), greedy_scores(sft))


def whole_recipe_over_sft(run: RunFiles) -> Claim:
    claim, measure = "the stages after the cold-start SFT lift pass@1", f"pass@1: final ({run.final}) - sft"
    if run.final == "sft" or not _predictions(run, "sft"):
        return missing(claim, measure, "no stage after the SFT")
    return paired(claim, measure, greedy_scores(_predictions(run, run.final)), greedy_scores(_predictions(run, "sft")))


def majority_over_greedy(run: RunFiles) -> Claim:
    k = run.num_samples
    claim = f"majority vote beats greedy decoding on the final model (goal: +{MAJORITY_GOAL:.0%})"
    measure = f"maj@{k} - pass@1 (greedy), final"
    final = _predictions(run, run.final)
    row = paired(claim, measure, voted_scores(final, "maj", k), greedy_scores(final))
    if row.effect is not None:
        row.note = f"goal of +{MAJORITY_GOAL:.2f} {'met' if row.effect >= MAJORITY_GOAL else 'not met'} (point estimate)"
    return row


def scaling_rises(run: RunFiles) -> Claim:
    k = run.num_samples
    final = _predictions(run, run.final)
    return paired(
        "more samples help: the test-time-scaling curve rises", f"maj@{k} - maj@1 (one sample), final",
        voted_scores(final, "maj", k), voted_scores(final, "maj", 1),
    )  # fmt: skip


def best_of_n_over_greedy(run: RunFiles) -> Claim:
    k = run.num_samples
    claim, measure = f"best-of-{k} by the reward model beats greedy", f"bon@{k} - pass@1 (greedy), final"
    final = _predictions(run, run.final)
    bon = voted_scores(final, "bon", k)
    if any(np.isnan(bon)):
        return missing(claim, measure, "no reward model scored the samples")
    if run.best_of_n_scorer == "verifier":
        scorer = "the verifier: the reward model retrained from the final policy"
    else:
        scorer = "the reward model (from the SFT model)"
    return paired(claim, measure, bon, greedy_scores(final), note=f"scored by {scorer}")


def reward_model_separates(run: RunFiles) -> Claim:
    claim = f"the reward model separates right from near-miss answers (goal: {REWARD_MODEL_GOAL:.2f})"
    measure = "held-out pairwise accuracy (chance: 0.50)"
    if not run.reward_pairs:
        return missing(claim, measure, "the reward model is switched off")
    scored = read_records(run.reward_pairs)
    pairs, own = [p for p in scored if p["kind"] != ON_POLICY], [p for p in scored if p["kind"] == ON_POLICY]
    correct = [float(p["correct"]) for p in pairs]
    accuracy, low, high = mean_interval(correct)
    kinds = sorted({p["kind"] for p in pairs})
    per_kind = ", ".join(f"{k} {np.mean([p['correct'] for p in pairs if p['kind'] == k]):.2f}" for k in kinds)
    goal = "met" if accuracy >= REWARD_MODEL_GOAL else "not met"
    row = Claim(claim, measure, left=accuracy, effect=accuracy, low=low, high=high, threshold=0.5, units=len(pairs), scores=(correct, None))
    row.note = f"by kind of rejected answer: {per_kind}; goal {goal}"
    if own:  # not in the headline: how the policy's own mistakes are ranked, what best-of-N leans on
        row.note += f"; the SFT model's own right vs wrong answers: {np.mean([p['correct'] for p in own]):.2f} of {len(own)}"
    return row.judge()


def rejection_sampling_over_control(run: RunFiles) -> Claim:
    """Round-2 SFT against its control (same start, same steps, the original data); without one, against its start."""
    claim = "SFT on rejection-sampled answers beats as many SFT steps on the original data"
    r2, control = _predictions(run, "sft_round2"), _predictions(run, "sft_control")
    if not r2:
        return missing(claim, "pass@1: sft_round2 - sft_control", "rejection sampling is switched off")
    steps = run.steps.get("sft_round2")
    if control:
        note = f"controlled: both {steps} steps from {run.round2_start}" if steps else "controlled"
        return paired(claim, "pass@1: sft_round2 - sft_control", greedy_scores(r2), greedy_scores(control), note=note)
    start = run.round2_start or "grpo"
    if not _predictions(run, start):
        return missing(claim, f"pass@1: sft_round2 - {start}", f"no control and no evaluation of {start}")
    note = f"uncontrolled (recipe.controls off): {steps} more SFT steps against the model they started from"
    return paired(claim, f"pass@1: sft_round2 - {start}", greedy_scores(r2), greedy_scores(_predictions(run, start)), note=note)


def distilled_over_direct(run: RunFiles) -> Claim:
    claim, measure = "a distilled student beats the same student trained directly", "pass@1: distill - student_sft"
    distilled, direct = _predictions(run, "distill"), _predictions(run, "student_sft")
    if not distilled or not direct:
        return missing(claim, measure, "distillation is switched off")
    tokens = run.tokens_trained
    note = ""
    if tokens.get("distill") and tokens.get("student_sft"):
        note = f"tokens trained: distilled {tokens['distill']:,}, direct {tokens['student_sft']:,}"
    return paired(claim, measure, greedy_scores(distilled), greedy_scores(direct), note=note)


def forgetting(run: RunFiles) -> Claim:
    base, final = run.evaluations.get("base", {}).get("probe_predictions"), run.evaluations.get(run.final, {}).get("probe_predictions")
    base_rows = read_records(base) if base else []
    kept = "general knowledge" if any(not isinstance(row["prompt"], str) for row in base_rows) else "arithmetic"  # chat probes ask facts
    claim = f"the recipe keeps the base's {kept} (forgetting under {FORGETTING_ALLOWED:.0%})"
    measure = f"probe accuracy: final ({run.final}) - base"
    if not base or not final:
        return missing(claim, measure, "no probe set (data.files.probe, or `probe` in the synthetic data)")
    base_scores = [float(row["correct"]) for row in base_rows]
    if not any(base_scores):  # 0 -> 0 would "hold" without telling anything
        return missing(claim, measure, "the base solves none of the probe: nothing to forget (give a probe the base can do)")
    row = paired(claim, measure, probe_scores(final), base_scores, threshold=-FORGETTING_ALLOWED)
    if row.effect is not None:
        change = f"cost {-row.effect:.3f}" if row.effect < 0 else f"gained {row.effect:.3f}"  # absolute accuracy, not a ratio
        row.note = f"probe accuracy {change} (base {row.right:.3f} -> final {row.left:.3f})"
    return row


# ---------------------------------------------------------------- rendering


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _verdict(claim: Claim) -> str:
    return {True: "**holds**", False: "does not hold", None: "not measured"}[claim.holds]


def _spread_line(spread: dict) -> str:
    effects = ", ".join("-" if e is None else f"{e:+.3f}" for e in spread["effects"])
    line = f"effects {effects} over seed offsets {spread['seeds']}"
    if spread.get("sd") is not None:
        line += f" (mean {spread['mean']:+.3f}, sd {spread['sd']:.3f})"
    if "holds_in" in spread:
        line += f"; holds in {spread['holds_in']} of {spread['runs']}"
    return line


def markdown(report: ClaimsReport) -> str:
    lines = [
        "| claim | measured | left | right | effect | 95% interval | holds | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in report.claims:
        interval = "-" if c.low is None else f"[{c.low:+.3f}, {c.high:+.3f}]"
        effect = _share(c.effect) if c.right is None else _signed(c.effect)
        lines.append(
            f"| {c.claim} | {c.measure} | {_share(c.left)} | {_share(c.right)} | {effect} | {interval} | {_verdict(c)} | {c.note} |"
        )
    lines.append("")
    lines.append(f"Intervals: {report.method}; a claim holds when its interval's lower bound clears its threshold (0 for a gain).")
    if report.seed_spread:
        lines.append("")
        lines.append("Spread over seeds (the same claim measured on whole runs with other seeds):")
        for name, spread in report.seed_spread.items():
            lines.append(f"- {name}: {_spread_line(spread)}")
    return "\n".join(lines) + "\n"


def write(report: ClaimsReport, reports_dir: str | Path, measured_on: str = "this run", warnings: Sequence[str] = ()) -> tuple[Path, Path]:
    """claims.md and claims.json under `reports_dir`; `warnings` (what the run's stages flagged) above the table."""
    out = Path(reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "claims.md"
    flagged = "".join(f"> **Warning**: {warning}\n\n" for warning in warnings)  # read before the rows they qualify
    md.write_text(f"# The recipe's claims, measured on {measured_on}\n\n" + flagged + markdown(report))
    return md, write_json(out / "claims.json", report.as_dict())


def from_summary(summary: dict) -> RunFiles:
    """A RunFiles from reports/summary.json (its `claims_inputs`, written by the flow)."""
    inputs = summary.get("claims_inputs")
    if not inputs:
        raise ValueError("the summary has no claims_inputs: it was written before claims were recorded")
    return RunFiles(**inputs)


def report_of(path: Path) -> ClaimsReport:
    """A run's claims from its summary.json (measured again from its files) or its claims.json (as written)."""
    data = json.loads(path.read_text())
    if "claims_inputs" in data:
        return build(from_summary(data))
    if "claims" in data and "method" in data:
        return ClaimsReport.from_dict(data)
    raise ValueError(f"{path}: neither a run's summary.json (claims_inputs) nor a claims.json (claims, method)")


def warnings_of(path: Path) -> list[str]:
    """What a run's stages flagged (a summary.json's `warnings`; a claims.json has none)."""
    return json.loads(path.read_text()).get("warnings", [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild claims.md from a run's summary, or pool several runs' claims")
    parser.add_argument(
        "summary", nargs="*", default=["reports/summary.json"],
        help="a run's summary.json or claims.json; several (runs with other seeds): their claims pooled (run from the folder they ran in)",
    )  # fmt: skip
    parser.add_argument("--out", default=None, help="folder for claims.md and claims.json (default: beside the one summary)")
    args = parser.parse_args(argv)
    reports = [report_of(Path(path)) for path in args.summary]
    if len(reports) == 1:
        md, _ = write(reports[0], args.out or Path(args.summary[0]).parent, warnings=warnings_of(Path(args.summary[0])))
    elif not args.out:
        parser.error("pooling several runs needs --out: a folder of its own, not one run's reports")
    else:
        flagged = [f"{path}: {warning}" for path in args.summary for warning in warnings_of(Path(path))]
        md, _ = write(pool(reports), args.out, f"{len(reports)} runs pooled", warnings=flagged)
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
