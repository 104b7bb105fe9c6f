"""The summary table the demo prints: its test-time columns follow what the evaluation ran."""

from flows.report import RunSummary, StageRow, format_summary


def test_the_summary_shows_the_test_time_metrics_at_the_largest_k_evaluated():
    metrics = {"eval.pass@1": 0.35, "eval.free_text_pass@1": 0.4, "eval.maj@1": 0.35, "eval.maj@2": 0.217, "eval.pass@2": 0.333}
    usage = [{"peak_rss_gib": 6.04}, {"peak_rss_gib": 3.2}]  # the stage and its evaluation
    table = format_summary({"stages": {"sft": {"metrics": metrics, "wall_seconds": 977.0, "usage": usage}}})
    header, _, row = table.splitlines()[:3]
    assert header.split() == [
        "stage",
        "pass@1",
        "free-text",
        "maj@2",
        "pass@2",
        "bon@2",
        "probe",
        "length",
        "reward",
        "seconds",
        "share",
        "peak-GiB",
        "tokens",
        "cost",
        "cached",
    ]
    assert row.split()[:5] == ["sft", "0.350", "0.400", "0.217", "0.333"]
    assert "  6.0  " in row, "the stage's memory peak is the higher of its own and its evaluation's"


def test_each_stage_is_priced_by_its_device_and_the_total_counts_what_this_run_spent():

    cpu = {
        "device": "cpu",
        "device_count": 1,
        "wall_seconds": 3600.0,
        "device_seconds": 3600.0,
        "tokens_trained": 1500,
        "tokens_generated": 0,
    }
    gpus = {"device": "NVIDIA H200", "device_count": 8, "wall_seconds": 900.0, "device_seconds": 7200.0, "tokens_generated": 2_000_000}
    summary = RunSummary(
        stages={
            "sft": StageRow(wall_seconds=3600.0, usage=[cpu], cached=True),
            "grpo": StageRow(wall_seconds=900.0, usage=[gpus]),
        }
    )
    summary.price({"cpu": 0.1, "cuda": 2.0, "NVIDIA H200": 4.0}, "USD")
    summary.pipeline_wall_seconds = 5000.0
    assert summary.stages["sft"].cost == 0.1  # one CPU-hour
    assert summary.stages["grpo"].cost == 8.0, "two device-hours at the H200's own price, not the generic cuda one"
    assert summary.totals["cost"] == 8.1 and summary.totals["spent"] == 8.0, "a cached stage cost nothing this run"
    assert summary.totals["device_seconds"] == 10800.0

    lines = format_summary(summary.as_dict()).splitlines()
    sft, grpo, total = (_cells(lines[0], line) for line in lines[2:5])
    assert (sft["tokens"], sft["cost"], grpo["tokens"], grpo["cost"]) == ("1.5k", "0.1000", "2.0M", "8.00")
    assert (sft["share"], grpo["share"]) == ("72%", "18%"), "each stage's share of the run's time"
    assert total["stage"] == "total" and total["cost"] == "8.10" and total["tokens"] == "2.0M"
    assert any(line.startswith("cost: 8.1000 USD of device time in all, 8.0000 spent by this run") for line in lines)


def _cells(header: str, line: str) -> dict[str, str]:
    """A table row by column title (cells may be empty: columns are found by the header's offsets)."""
    import re

    starts = [(m.start(), m.group()) for m in re.finditer(r"\S+", header)]
    ends = [start for start, _ in starts[1:]] + [None]
    return {title: line[start:end].strip() for (start, title), end in zip(starts, ends, strict=True)}


def test_a_stages_warning_is_printed_under_the_table():
    summary = RunSummary(stages={"base": StageRow(wall_seconds=60.0)}, warnings=["base: base did not learn the arithmetic"])
    lines = format_summary(summary.as_dict()).splitlines()
    assert "WARNING base: base did not learn the arithmetic" in lines
    assert not any(line.startswith("WARNING") for line in format_summary(RunSummary().as_dict()).splitlines())
