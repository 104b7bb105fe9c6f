"""Render `reports/summary.json` as the table the demo prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from components import accounting


class StageRow(BaseModel):
    """One stage's line of the summary: its metrics (and its evaluation's, as `eval.*`), time, cache hit, cost."""

    metrics: dict[str, float] = Field(default_factory=dict)
    wall_seconds: float = 0.0
    cached: bool = False
    outputs: dict[str, str] = Field(default_factory=dict)
    usage: list[dict[str, Any]] = Field(default_factory=list, description="components.accounting.Usage of the stage and its evaluation")
    cost: float | None = Field(None, description="the usage at params' cost.price_per_device_hour")

    def priced(self, prices: dict[str, float]) -> None:
        self.cost = sum(accounting.price(usage, prices) for usage in self.usage)


class RunSummary(BaseModel):
    """What one pipeline run did: `reports/summary.json`, the flow's return value, the MLflow summary."""

    stages: dict[str, StageRow] = Field(default_factory=dict, description="label -> row, in the order they ran")
    lineage: dict[str, str] = Field(default_factory=dict)
    registered: dict[str, dict[str, str]] = Field(default_factory=dict, description="label -> name, version, parent_model")
    mlflow_run_id: str | None = None
    model: dict[str, Any] | None = Field(None, description="the final model's registered name, version, path, stage")
    alias: dict[str, Any] | None = Field(None, description="the gate's decision (components.promotion.AliasDecision)")
    warnings: list[str] = Field(default_factory=list, description="what a stage flagged about its model (e.g. a base that did not learn)")
    pipeline_wall_seconds: float | None = None
    totals: dict[str, Any] | None = Field(None, description="usage and cost summed over the stages; `spent`: the ones not cached")
    claims_inputs: dict[str, Any] | None = Field(
        None, description="the files reports/claims.md was built from (components.claims.RunFiles)"
    )

    def as_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)

    def price(self, prices: dict[str, float], currency: str) -> None:
        """Each row's cost, and the run's totals: of every stage, and of those it computed (not cached)."""
        for row in self.stages.values():
            row.priced(prices)
        rows = self.stages.values()
        usages = [u for row in rows for u in row.usage]
        self.totals = accounting.total(usages) | {
            "cost": sum(row.cost or 0.0 for row in rows),
            "spent": sum(row.cost or 0.0 for row in rows if not row.cached),
            "currency": currency,
        }


def tokens(usages: list[dict]) -> int:
    """Tokens trained plus generated, over a stage's usages (components.accounting)."""
    return sum(u.get("tokens_trained", 0) + u.get("tokens_generated", 0) for u in usages)


def columns(stages: dict) -> list[tuple[str, str]]:
    """The summary table's columns: the test-time metrics at the largest k the evaluation ran."""
    names = [name.removeprefix("eval.") for row in stages.values() for name in row.get("metrics", {})]
    ks = [int(name[4:]) for name in names if name.startswith("maj@")]
    k = max(ks, default=8)
    return [
        ("stage", "stage"),
        ("eval.pass@1", "pass@1"),
        ("eval.free_text_pass@1", "free-text"),
        (f"eval.maj@{k}", f"maj@{k}"),
        (f"eval.pass@{k}", f"pass@{k}"),
        (f"eval.bon@{k}", f"bon@{k}"),
        ("eval.probe_accuracy", "probe"),
        ("eval.mean_length", "length"),
        ("eval.mean_reward", "reward"),
        ("wall_seconds", "seconds"),
        ("share", "share"),
        ("peak_rss_gib", "peak-GiB"),
        ("tokens", "tokens"),
        ("cost", "cost"),
        ("cached", "cached"),
    ]


def _cell(value, key: str = "") -> str:
    if key == "tokens" and value:
        return _count(value)
    if key == "share" and value is not None:
        return f"{value:.0%}"
    if key == "peak_rss_gib" and value is not None:
        return f"{value:.1f}"
    if key == "cost" and value is not None:
        return f"{value:.4f}" if value < 1 else f"{value:.2f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return "-" if value is None else str(value)


def format_summary(summary: dict) -> str:
    rows, table = [], columns(summary.get("stages", {}))
    for stage, row in summary.get("stages", {}).items():
        used = tokens(row.get("usage", []))
        facts = {"wall_seconds": row.get("wall_seconds"), "cached": row.get("cached"), "tokens": used, "cost": row.get("cost")}
        facts["peak_rss_gib"] = accounting.peak(row.get("usage", []))  # a cached stage's, like its seconds: when it ran
        if summary.get("pipeline_wall_seconds"):  # the stage's share of the whole run's time
            facts["share"] = (row.get("wall_seconds") or 0.0) / summary["pipeline_wall_seconds"]
        values = {"stage": stage, **facts, **row.get("metrics", {})}
        rows.append([_cell(values.get(key), key) for key, _ in table])
    totals = summary.get("totals")
    if totals:
        facts = {
            "stage": "total",
            "wall_seconds": totals["wall_seconds"],
            "cost": totals["cost"],
            "peak_rss_gib": totals.get("peak_rss_gib"),
        }
        facts["tokens"] = totals["tokens_trained"] + totals["tokens_generated"]
        rows.append([_cell(facts.get(key), key) if key in facts else "" for key, _ in table])
    headers = [title for _, title in table]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    model, alias = summary.get("model"), summary.get("alias")
    if model:
        new = "newly registered" if model.get("newly_registered") else "already registered: nothing new"
        lines.append(f"\nmodel: {model['name']} v{model['version']} ({new})")
    if alias:
        verdict = "champion" if alias["promoted"] else "challenger only"
        lines.append(f"alias: {verdict}: {alias['reason']}")
    lines += [f"WARNING {warning}" for warning in summary.get("warnings", [])]
    report = summary.get("stages", {}).get("validate", {}).get("outputs", {}).get("report")
    if report:
        lines.append(f"validation report: {report}")
    lineage = summary.get("lineage", {})
    if lineage:
        lines.append(
            f"data: {lineage.get('data_md5', '?')} ({lineage.get('data_versioned_by', '?')}); validation: {lineage.get('validation_status', '?')}"
        )
    if "pipeline_wall_seconds" in summary:
        lines.append(f"pipeline: {summary['pipeline_wall_seconds']:.0f} s")
    if totals:
        lines.append(
            f"cost: {totals['cost']:.4f} {totals['currency']} of device time in all, {totals['spent']:.4f} spent by this run "
            f"(the rest was cached); {_count(totals['tokens_trained'])} tokens trained, {_count(totals['tokens_generated'])} generated, "
            f"{totals['samples_generated']} samples generated ({totals['samples_kept']} kept by rejection sampling and distillation)"
        )
    return "\n".join(lines)


def _count(n: float) -> str:
    """1234567 -> 1.2M: token counts read at a glance."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.1f}{suffix}"
    return str(int(n))


def main(argv: list[str] | None = None) -> int:
    path = Path((argv or sys.argv[1:] or ["reports/summary.json"])[0])
    if not path.is_file():
        print(f"error: no summary at {path}: run the pipeline first (make demo)", file=sys.stderr)
        return 2
    print(format_summary(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
