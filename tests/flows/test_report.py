"""The summary table the demo prints: its test-time columns follow what the evaluation ran."""

from flows.report import format_summary


def test_the_summary_shows_the_test_time_metrics_at_the_largest_k_evaluated():
    metrics = {"eval.pass@1": 0.35, "eval.free_text_pass@1": 0.4, "eval.maj@1": 0.35, "eval.maj@2": 0.217, "eval.pass@2": 0.333}
    table = format_summary({"stages": {"sft": {"metrics": metrics, "wall_seconds": 977.0}}})
    header, _, row = table.splitlines()[:3]
    assert header.split() == ["stage", "pass@1", "free-text", "maj@2", "pass@2", "bon@2", "probe", "length", "reward", "seconds", "cached"]
    assert row.split()[:5] == ["sft", "0.350", "0.400", "0.217", "0.333"]
