"""Evaluation report: a readable markdown page and the plots of the evaluate stage.

- `plot_scaling_curve`: accuracy against N samples (pass@N, maj@N, bon@N, wmaj@N);
- `plot_accuracy_by_stage`: grouped bars of the accuracy metrics of several evaluated models;
- `render_report`: the metrics table (with what each metric means), the test-time-scaling
  table, an accuracy-by-stage table when given several results, and links to the plots.

Combine the evaluations of several stages into one report:

    python -m components.eval_report --result base=artifacts/evaluate-base/<key>/metrics.json \\
        --result sft=artifacts/evaluate-sft/<key>/metrics.json --out reports/eval
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

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
    "probe_accuracy": "bare-arithmetic probe (base capability)",
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


def plot_scaling_curve(curve: Mapping[str, list[float]], title: str = "test-time scaling"):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in curve_series(curve):
        ax.plot(curve["n"], curve[name], CURVE_STYLE.get(name, "o-"), label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(curve["n"], [str(int(n)) for n in curve["n"]])
    ax.set_ylim(-0.02, 1.02)  # lines at 0 or 1 stay visible
    ax.set_xlabel("N samples per problem")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
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


def write_stage_report(results: Mapping[str, Mapping[str, float]], out_dir: str | Path, curve=None, title: str = "", facts=None) -> Path:
    """report.md + accuracy_by_stage.png (and tts_curve.png when a curve is given) in out_dir."""
    out = Path(out_dir)
    images = {}
    if curve:
        save_figure(plot_scaling_curve(curve), out / "tts_curve.png")
        images["test-time scaling"] = "tts_curve.png"
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
    print(write_stage_report(results, args.out, curve))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
