"""The flow run's Prefect artifacts: the stage table with its total, the gate's decision in markdown."""

from components.promotion import AliasDecision
from flows import run_artifacts
from flows.report import RunSummary, StageRow


def test_the_stage_table_has_a_row_per_stage_and_the_total():
    usage = {"device": "cpu", "device_seconds": 36.0, "wall_seconds": 36.0, "tokens_trained": 900, "tokens_generated": 100}
    usage["peak_rss_gib"] = 2.5
    summary = RunSummary(stages={"sft": StageRow(metrics={"eval.pass@1": 0.3456789}, wall_seconds=36.0, usage=[usage])})
    summary.price({"cpu": 1.0}, "USD")
    sft, total = run_artifacts.stage_table(summary)
    assert sft == {
        "stage": "sft",
        "pass@1": 0.3457,
        "free-text pass@1": None,
        "probe": None,
        "mean reward": None,
        "seconds": 36.0,
        "peak GiB": 2.5,
        "tokens": 1000,
        "cost": 0.01,
        "cached": False,
    }
    assert total == {"stage": "total", "seconds": 36.0, "peak GiB": 2.5, "tokens": 1000, "cost": 0.01}


def test_a_refused_promotion_reads_as_refused_with_its_interval_and_every_reason():
    gate = {
        "promoted": False,
        "method": "paired bootstrap",
        "metric": "pass@1",
        "challenger_value": 0.0,
        "champion_value": 0.1667,
        "difference": -0.1667,
        "ci_low": -0.3333,
        "ci_high": -0.0417,
        "confidence": 0.95,
        "reasons": ["pass@1 0.0000 vs champion 0.1667: lower bound -0.3333 <= 0.0"],
        "guard_failures": ["probe_accuracy dropped 0.2"],
    }
    decision = AliasDecision("2", False, gate["reasons"][0], "1", "1", gate)
    text = run_artifacts.gate_markdown("r1 tiny/math", decision)
    assert text.startswith("# Promotion gate: r1 tiny/math v2\n") and "**refused**" in text
    assert "champion before: v1; after: v1" in text and "95% interval [-0.3333, -0.0417]" in text
    assert "- pass@1 0.0000 vs champion 0.1667: lower bound -0.3333 <= 0.0" in text and "- probe_accuracy dropped 0.2" in text
    assert run_artifacts.gate_key("r1 tiny/Math_v2") == "promotion-gate-r1-tiny-math-v2"


def test_the_first_champion_has_no_interval_to_show():
    decision = AliasDecision("1", True, "no champion yet", None, "1", {"reasons": ["no champion yet"]})
    text = run_artifacts.gate_markdown("m", decision)
    assert "promoted to **champion**" in text and "champion before: none; after: v1" in text and "interval" not in text


def test_outside_a_flow_run_nothing_is_published(capsys):
    run_artifacts.publish_gate("m", AliasDecision("1", True, "first", None, "1", {"reasons": ["first"]}))
    assert capsys.readouterr().out == ""
