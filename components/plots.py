"""Plots: matplotlib figures for MLflow runs and the evaluation report.

`pyplot` is the one place matplotlib is set up (imported lazily, on the file-only Agg
backend); `plot_curves` draws a stage's training curves, one panel per group of same-scale
curves, and `plot_accuracy_by_stage` the pipeline summary's evaluated stages as eval_report's
grouped bars. The evaluation's own figures (test-time scaling, reliability) are eval_report's.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatch
from typing import Any


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


# Curves that share a y-scale share a panel: a stage's curves are in units as different as nats
# (KL), tokens (completion length) and reward points, and one axis would flatten all but the
# largest. First matching rule wins; a curve no rule names gets a panel of its own.
CURVE_GROUPS = (
    ("reward - accuracy", ("reward_accuracy_gap",)),  # a difference of shares: not reward's scale
    ("loss", ("*loss",)),  # train, pretrain, distilled and baseline losses: compared on one axis
    ("reward", ("reward", "reward_*")),  # GRPO's total reward and each reward function's mean
    ("DPO implicit reward", ("rewards_chosen", "rewards_rejected", "rewards_margins")),
)


def curve_group(name: str) -> str:
    return next((group for group, patterns in CURVE_GROUPS if any(fnmatch(name, p) for p in patterns)), name)


def group_curves(curves: Mapping[str, list[float]]) -> dict[str, dict[str, list[float]]]:
    """{panel label: {curve name: values}}, panels in the order their first curve comes; empty curves dropped."""
    panels: dict[str, dict[str, list[float]]] = {}
    for name, values in curves.items():
        if len(values):
            panels.setdefault(curve_group(name), {})[name] = values
    return panels


def plot_curves(curves: Mapping[str, list[float]], title: str):
    """One panel per group of same-scale curves (CURVE_GROUPS), each with its own y-axis, on a shared logging-step axis."""
    plt = pyplot()
    panels = group_curves(curves) or {"no logged values": {}}
    ncols = 1 if len(panels) <= 3 else 2  # past three panels a single column gets too tall to read
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 1.2 + 2.2 * nrows), sharex=True, squeeze=False)
    for ax, (label, members) in zip(axes.flat, panels.items(), strict=False):
        for name, values in members.items():
            ax.plot(range(len(values)), values, label=name)
        ax.set_ylabel(next(iter(members)) if len(members) == 1 else label)  # a lone curve keeps its MLflow metric's name
        ax.grid(alpha=0.3)
        if len(members) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.remove()
    for col in range(ncols):  # the bottom panel of each column carries the shared x label
        bottom = next(axes[row, col] for row in reversed(range(nrows)) if row * ncols + col < len(panels))
        bottom.set_xlabel("logging step")
        bottom.xaxis.set_tick_params(labelbottom=True)
    fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_accuracy_by_stage(stages: Mapping[str, Any]):
    """The summary's evaluated stages as eval_report's grouped bars of held-out accuracy."""
    from components.eval_report import plot_accuracy_by_stage as grouped_bars  # lazily: eval_report imports this module

    evaluated = {
        name: {k.removeprefix("eval."): v for k, v in row["metrics"].items() if k.startswith("eval.")}
        for name, row in stages.items()
        if "eval.pass@1" in row.get("metrics", {})
    }
    return grouped_bars(evaluated)


def plot_pretraining_tries(tries: list[Mapping[str, Any]], min_val_probe: float, abandon_below: float, abandon_step: int):
    """The base's pretrainings: each try's share of validation sums answered by step, the floors it was judged by.

    An abandoned try ends in a cross where it was stopped; `abandon_step` is where the
    `abandon_below` floor starts to apply. The kept base is whichever finished over
    `min_val_probe` first (components.base)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for tried in (t for t in tries if t.get("val_probe_curve")):  # a result from before the checks has none to draw
        steps, shares = zip(*tried["val_probe_curve"], strict=True)
        abandoned = "abandoned_at_step" in tried
        label = f"seed {tried['seed']}" + (f" (abandoned at {tried['abandoned_at_step']})" if abandoned else "")
        (line,) = ax.plot(steps, shares, marker=".", linestyle="--" if abandoned else "-", label=label)
        if abandoned:
            ax.plot(steps[-1:], shares[-1:], marker="x", markersize=10, color=line.get_color())
    ax.axhline(min_val_probe, color="grey", linewidth=0.8, label=f"base.min_val_probe {min_val_probe}")
    if abandon_below > 0:
        ax.plot([abandon_step], [abandon_below], marker="v", color="black", linestyle="none", label=f"abandoned under {abandon_below}")
    ax.set_xlabel("pretraining step")
    ax.set_ylabel("validation sums answered")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("base: pretraining tries")
    fig.tight_layout()
    plt.close(fig)
    return fig
