"""Evaluation report: a readable markdown page and the plots of the evaluate stage.

- `plot_scaling_curve`: accuracy against N samples (pass@N, maj@N, bon@N, wmaj@N), with
  a bootstrap interval band per series when the per-problem rows are given (components.intervals);
- `plot_accuracy_by_stage`: grouped bars of the accuracy metrics of several evaluated models;
- `plot_reliability`: accuracy of the majority answer per confidence bin, against the diagonal;
- `render_report`: the metrics table (with what each metric means), the test-time-scaling
  table, an accuracy-by-stage table when given several results, and links to the plots.

Combine the evaluations of several stages into one report:

    python -m components.eval_report --result base=artifacts/evaluate-base/<key>/metrics.json \\
        --result sft=artifacts/evaluate-sft/<key>/metrics.json --out reports/eval \\
        [--curve .../tts_curve.json --predictions .../predictions.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from components import intervals
from components.artifacts import read_records
from components.metrics import CalibrationBin, calibration_bins, calibration_pairs, expected_calibration_error
from components.plots import pyplot

# What each metric means, in a phrase; `@k` names are matched by their prefix.
METRIC_HELP = {
    "pass@1": "greedy decoding, one answer per problem",
    "free_text_pass@1": "greedy answers read from free text when not boxed (format aside)",
    "sample_accuracy": "mean correctness of single samples",
    "pass@": "unbiased pass@k: at least one of k samples right",
    "maj@": "self-consistency: the majority answer of k samples is right",
    "bon@": "best-of-N: the reward model's top sample of k is right",
    "wmaj@": "majority vote of k samples weighted by exp(reward)",
    "ece": "expected calibration error of majority agreement vs correctness (0 = calibrated)",
    "format_rate": "greedy responses with a boxed answer after the reasoning block",
    "mean_length": "tokens per greedy response",
    "probe_accuracy": "capability probe: bare arithmetic, or general knowledge asked in chat (what the base knew)",
    "base_probe_accuracy": "the base model on the same probe",
    "forgetting": "base probe accuracy minus this model's (positive = forgot)",
    "mean_reward": "mean reward-model score of the samples",
    "reward_accuracy_gap": "mean sigmoid(reward) minus sample accuracy (rising = reward hacking)",
    "reward_auc": "P(right sample outscores a wrong one of the same problem)",
    "n_problems": "held-out problems evaluated",
}
ACCURACY_PREFIXES = ("pass@", "maj@", "bon@", "wmaj@")
CURVE_STYLE = {"pass@N": "o-", "maj@N": "s-", "bon@N": "^-", "wmaj@N": "d--"}


def describe(metric: str) -> str:
    if metric in METRIC_HELP:
        return METRIC_HELP[metric]
    prefix = metric.split("@")[0] + "@"
    return METRIC_HELP.get(prefix, "")


def _order(metric: str) -> tuple[int, int]:
    """pass@1 and sample_accuracy first, then the @k families by k, then the rest as METRIC_HELP lists them."""
    headline = ("pass@1", "sample_accuracy")
    if metric in headline:
        return (0, headline.index(metric))
    family, _, k = metric.partition("@")
    if f"{family}@" in ACCURACY_PREFIXES and k.isdigit():
        return (1 + ACCURACY_PREFIXES.index(f"{family}@"), int(k))
    names = list(METRIC_HELP)
    return (10, names.index(metric) if metric in names else len(names))


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def curve_series(curve: Mapping[str, list[float]]) -> list[str]:
    """The curve's series in CURVE_STYLE's order (JSON round trips sort them), unknown ones last."""
    return [name for name in CURVE_STYLE if name in curve] + sorted(set(curve) - set(CURVE_STYLE) - {"n"})


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def accuracy_keys(results: Mapping[str, Mapping[str, float]]) -> list[str]:
    keys = {k for metrics in results.values() for k in metrics if k.startswith(ACCURACY_PREFIXES) or k == "sample_accuracy"}
    return sorted(keys, key=_order)


def render_report(
    results: Mapping[str, Mapping[str, float]],
    curve: Mapping[str, list[float]] | None = None,
    images: Mapping[str, str] | None = None,
    title: str = "",
    facts: Mapping[str, str] | None = None,
) -> str:
    """Markdown: the last result's metrics, its scaling table, and a by-stage table if several."""
    label, metrics = list(results.items())[-1]
    parts = [f"# Evaluation: {title or label}"]
    if facts:
        parts.append("\n".join(f"- **{k}**: {v}" for k, v in facts.items()))
    parts.append(
        "## Metrics\n\n"
        + markdown_table(["metric", "value", "meaning"], [[k, metrics[k], describe(k)] for k in sorted(metrics, key=_order)])
    )
    if curve:
        series = curve_series(curve)
        rows = [[int(n), *(curve[name][i] for name in series)] for i, n in enumerate(curve["n"])]
        parts.append("## Test-time scaling (accuracy against N samples)\n\n" + markdown_table(["N", *series], rows))
    if len(results) > 1:
        keys = accuracy_keys(results) + [
            k for k in ("probe_accuracy", "forgetting", "mean_length", "ece") if any(k in m for m in results.values())
        ]
        rows = [[key, *(m.get(key) for m in results.values())] for key in keys]
        parts.append("## Accuracy by stage\n\n" + markdown_table(["metric", *results], rows))
    for caption, path in (images or {}).items():
        parts.append(f"![{caption}]({path})")
    return "\n\n".join(parts) + "\n"


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- plots


def plot_scaling_curve(
    curve: Mapping[str, list[float]], bands: Mapping[str, list[tuple[float, float]]] | None = None, title: str = "test-time scaling"
):
    """Accuracy against N per series; with `bands` (intervals.scaling_bands), each series' interval shaded in its colour."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in curve_series(curve):
        (line,) = ax.plot(curve["n"], curve[name], CURVE_STYLE.get(name, "o-"), label=name)
        if bands and name in bands:
            lows, highs = zip(*bands[name], strict=True)
            ax.fill_between(curve["n"], lows, highs, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set_xticks(curve["n"], [str(int(n)) for n in curve["n"]])
    ax.set_ylim(-0.02, 1.02)  # lines at 0 or 1 stay visible
    ax.set_xlabel("N samples per problem")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(title)
    # The legend says what the shading is, so the figure reads alone (in MLflow, without the report).
    ax.legend(fontsize=8, title=f"shaded: {intervals.METHOD}" if bands else None, title_fontsize=7)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_reliability(bins: list[CalibrationBin], ece: float, title: str = "reliability of self-consistency"):
    """Accuracy of the majority answer per confidence bin against the diagonal, and how many problems each bin holds."""
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    lows, widths = [b.low for b in bins], [b.high - b.low for b in bins]
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="calibrated")
    top.bar(lows, [b.accuracy for b in bins], widths, align="edge", edgecolor="black", alpha=0.6, label="accuracy in bin")
    # The mean confidence, not the bin's centre, is what ECE compares accuracy with.
    top.plot([b.confidence for b in bins], [b.accuracy for b in bins], "o", color="tab:red", label="(mean confidence, accuracy)")
    top.set_ylim(0, 1.05)  # markers at accuracy 1 stay whole
    top.set_ylabel("majority answer right")
    top.set_title(f"{title}\nECE = {ece:.3f} ({sum(b.count for b in bins)} problems)", fontsize=10)
    top.legend(fontsize=7, loc="upper left")
    bottom.bar(lows, [b.count for b in bins], widths, align="edge", edgecolor="black", color="tab:gray")
    bottom.set_xlim(-0.02, 1.02)  # and those at confidence 0 or 1
    bottom.set_xlabel("confidence: share of samples giving the majority answer")
    bottom.set_ylabel("problems")
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_accuracy_by_stage(results: Mapping[str, Mapping[str, float]]):
    """Grouped bars: every accuracy metric (pass@, maj@, bon@, wmaj@) of every result."""
    plt = pyplot()
    keys = accuracy_keys(results)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / max(1, len(keys))
    for i, key in enumerate(keys):
        xs = [j + i * width for j in range(len(results))]
        ax.bar(xs, [m.get(key, 0.0) for m in results.values()], width, label=key)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(results))], list(results))
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out accuracy")
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def write_stage_report(
    results: Mapping[str, Mapping[str, float]], out_dir: str | Path, curve=None, title: str = "", facts=None, rows: list[dict] | None = None
) -> Path:
    """report.md in out_dir, with its figures beside it: tts_curve.png (given a curve), accuracy_by_stage.png
    (given several results), reliability.png (given predictions.jsonl's rows, which also band the curve)."""
    out = Path(out_dir)
    images = {}
    if curve:
        bands = intervals.scaling_bands(rows, curve["n"]) if rows else None
        save_figure(plot_scaling_curve(curve, bands), out / "tts_curve.png")
        images["test-time scaling"] = "tts_curve.png"
    if rows:
        confidences, outcomes = calibration_pairs(rows)
        ece = expected_calibration_error(confidences, outcomes)
        save_figure(plot_reliability(calibration_bins(confidences, outcomes), ece), out / "reliability.png")
        images["reliability diagram"] = "reliability.png"
    if len(results) > 1:
        save_figure(plot_accuracy_by_stage(results), out / "accuracy_by_stage.png")
        images["accuracy by stage"] = "accuracy_by_stage.png"
    return write_text(out / "report.md", render_report(results, curve, images, title, facts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Combine evaluations (metrics.json files) into one markdown report.")
    parser.add_argument(
        "--result", action="append", required=True, metavar="LABEL=METRICS_JSON", help="in stage order; the last one is the headline"
    )
    parser.add_argument("--curve", help="tts_curve.json of the headline model")
    parser.add_argument("--predictions", help="predictions.jsonl of the headline model: the reliability diagram and the curve's bands")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    results = {}
    for item in args.result:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            print(f"error: --result {item!r}: expected LABEL=PATH to an existing metrics.json", file=sys.stderr)
            return 2
        results[label] = json.loads(Path(path).read_text())
    curve = json.loads(Path(args.curve).read_text()) if args.curve else None
    rows = read_records(args.predictions) if args.predictions else None
    print(write_stage_report(results, args.out, curve, rows=rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
