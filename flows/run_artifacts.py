"""What a flow run shows on its Artifacts tab in the Prefect UI: the stage table and the gate's decision.

Training progress is the trainers' own (components.live_callback); these are written by the flow:
- `post-training-stages`: a table of every stage's headline metrics, time, tokens and cost, with
  the total (written when the run ends, or stops at validation);
- `promotion-gate-<model>`: the gate's verdict on the new version, with every reason, the
  interval of the difference and the champion before and after.
A Prefect API that does not take an artifact costs the run nothing but a log line.
"""

from __future__ import annotations

import re

from components import accounting
from flows.report import RunSummary, tokens

TABLE_KEY = "post-training-stages"
COLUMNS = {  # table column -> the summary row's metric
    "pass@1": "eval.pass@1",
    "free-text pass@1": "eval.free_text_pass@1",
    "probe": "eval.probe_accuracy",
    "mean reward": "eval.mean_reward",
}


def gate_key(model_name: str) -> str:
    """Artifact keys hold lowercase letters, digits and dashes only."""
    return "promotion-gate-" + re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")


def stage_table(summary: RunSummary) -> list[dict]:
    """One row per stage, and a total row when the summary has been priced."""
    rows = []
    for name, row in summary.stages.items():
        cells = {"stage": name, **{title: _round(row.metrics.get(metric)) for title, metric in COLUMNS.items()}}
        cells |= {"seconds": round(row.wall_seconds, 1), "peak GiB": _round(accounting.peak(row.usage)), "tokens": tokens(row.usage)}
        cells |= {"cost": _round(row.cost), "cached": row.cached}
        rows.append(cells)
    if summary.totals:
        totals = summary.totals
        used = totals["tokens_trained"] + totals["tokens_generated"]
        rows.append(
            {"stage": "total", "seconds": round(totals["wall_seconds"], 1), "peak GiB": _round(totals.get("peak_rss_gib")), "tokens": used}
            | {"cost": _round(totals["cost"])}
        )
    return rows


def publish_stage_table(summary: RunSummary, currency: str) -> None:
    description = f"Every stage of this run: held-out metrics, time, tokens trained + generated, cost in {currency} of device time."
    _publish("table", TABLE_KEY, stage_table(summary), description)


def gate_markdown(model_name: str, decision) -> str:
    """The gate's decision (components.promotion.AliasDecision) as the markdown the UI renders."""
    gate = decision.gate
    verdict = "promoted to **champion**" if decision.promoted else "**refused**: stays challenger"
    lines = [
        f"# Promotion gate: {model_name} v{decision.version}",
        "",
        f"Version {decision.version} was {verdict}.",
        "",
        f"- champion before: {_version(decision.champion_before)}; after: {_version(decision.champion_after)}",
    ]
    if gate.get("metric"):
        lines.append(f"- method: {gate.get('method')} on `{gate['metric']}`")
    if gate.get("difference") is not None:
        ci = f"[{gate['ci_low']:+.4f}, {gate['ci_high']:+.4f}]" if gate.get("ci_low") is not None else "n/a"
        lines.append(
            f"- challenger {gate['challenger_value']:.4f} vs champion {gate['champion_value']:.4f}: "
            f"difference {gate['difference']:+.4f}, {gate.get('confidence') or 0:.0%} interval {ci}"
        )
    lines += ["", "## Reasons", "", *(f"- {reason}" for reason in gate.get("reasons", [decision.reason]))]
    if gate.get("guard_failures"):
        lines += ["", "## Guards that failed", "", *(f"- {failure}" for failure in gate["guard_failures"])]
    return "\n".join(lines) + "\n"


def publish_gate(model_name: str, decision) -> None:
    verdict = "promoted" if decision.promoted else "refused"
    _publish("markdown", gate_key(model_name), gate_markdown(model_name, decision), f"{model_name} v{decision.version}: {verdict}")


def _publish(kind: str, key: str, content, description: str) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:  # called outside a flow run (a unit test, a notebook): nowhere to attach it
        return
    try:
        if kind == "table":
            create_table_artifact(content, key=key, description=description)
        else:
            create_markdown_artifact(content, key=key, description=description)
    except Exception as error:
        print(f"[artifacts] {key} not published: {type(error).__name__}: {error}")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _version(version: str | None) -> str:
    return f"v{version}" if version else "none"
