"""Plots: matplotlib figures for MLflow runs and the evaluation report.

`pyplot` is the one place matplotlib is set up (imported lazily, on the file-only Agg
backend); `plot_curves` draws a stage's training curves and `plot_accuracy_by_stage` the
pipeline summary's evaluated stages as eval_report's grouped bars.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


def plot_curves(curves: Mapping[str, list[float]], title: str):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        ax.plot(range(len(values)), values, label=name)
    ax.set_title(title)
    ax.set_xlabel("logging step")
    ax.legend()
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
