"""Interval bands of the evaluation's curves: percentile bootstrap over the eval problems.

The problems are the unit of sampling (a new eval set would draw new problems; the model's
samples on each are part of that problem's score), so each band resamples per-problem scores
with the promotion gate's `resample_means`, the same bootstrap the gate trusts. A bootstrap and
not a Wilson interval: pass@N's per-problem scores are unbiased estimates in [0, 1], not 0/1
outcomes, so a binomial interval would not describe them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from components.gate import resample_means
from components.metrics import scaling_scores

CONFIDENCE = 0.95
RESAMPLES = 2000
METHOD = f"{CONFIDENCE:.0%} bootstrap CI over problems ({RESAMPLES} resamples)"  # what the figures and the report say


def bootstrap_interval(
    values: Sequence[float], confidence: float = CONFIDENCE, samples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (one per problem)."""
    if len(values) == 0:
        raise ValueError("bootstrap_interval: no values to resample")
    means = resample_means(np.asarray(values, dtype=float), samples, np.random.default_rng(seed))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def scaling_bands(rows: list[dict], sizes: Sequence[float], seed: int = 0) -> dict[str, list[tuple[float, float]]]:
    """{"pass@N": [(low, high) per N], ...}: the test-time-scaling curve's band, from predictions.jsonl's rows."""
    per_problem = scaling_scores(rows, [int(n) for n in sizes])
    return {name: [bootstrap_interval(column, seed=seed) for column in columns] for name, columns in per_problem.items()}
