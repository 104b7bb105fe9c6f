"""The evaluation report: readable markdown tables and plots, from hand-built metrics."""

import pytest

from components import eval_report

BASE = {"pass@1": 0.1, "maj@4": 0.2, "probe_accuracy": 0.9, "mean_length": 40.0}
SFT = {"pass@1": 0.3, "sample_accuracy": 0.25, "maj@4": 0.4, "bon@4": 0.45, "probe_accuracy": 0.8, "forgetting": 0.1, "ece": 0.12}
# As read back from tts_curve.json: keys sorted, not in reading order.
CURVE = {"bon@N": [0.25, 0.35, 0.45], "maj@N": [0.25, 0.3, 0.4], "n": [1.0, 2.0, 4.0], "pass@N": [0.25, 0.4, 0.5]}


def test_report_has_metrics_scaling_and_by_stage_tables(tmp_path):
    path = eval_report.write_stage_report({"base": BASE, "sft": SFT}, tmp_path, CURVE, title="r1 v3")
    text = path.read_text()
    assert text.startswith("# Evaluation: r1 v3")
    assert "| pass@1 | 0.300 | greedy decoding, one answer per problem |" in text
    assert "| bon@4 | 0.450 | best-of-N" in text
    assert "| N | pass@N | maj@N | bon@N |" in text and "| 4 | 0.500 | 0.400 | 0.450 |" in text
    assert "| metric | base | sft |" in text and "| maj@4 | 0.200 | 0.400 |" in text
    assert "| forgetting | - | 0.100 |" in text
    assert "![test-time scaling](tts_curve.png)" in text and "![accuracy by stage](accuracy_by_stage.png)" in text
    assert (tmp_path / "tts_curve.png").stat().st_size > 1000
    assert (tmp_path / "accuracy_by_stage.png").stat().st_size > 1000


def test_metrics_are_listed_headline_first_then_by_family_and_k():
    metrics = ["ece", "maj@8", "pass@8", "maj@2", "pass@1", "sample_accuracy", "bon@2", "pass@2"]
    assert sorted(metrics, key=eval_report._order) == ["pass@1", "sample_accuracy", "pass@2", "pass@8", "maj@2", "maj@8", "bon@2", "ece"]


def test_one_result_has_no_by_stage_table():
    text = eval_report.render_report({"sft": SFT})
    assert "Accuracy by stage" not in text and "Test-time scaling" not in text


def test_cli_combines_stage_metrics(tmp_path, capsys):
    import json

    for name, metrics in (("base", BASE), ("sft", SFT)):
        (tmp_path / f"{name}.json").write_text(json.dumps(metrics))
    out = tmp_path / "report"
    assert (
        eval_report.main(["--result", f"base={tmp_path / 'base.json'}", "--result", f"sft={tmp_path / 'sft.json'}", "--out", str(out)]) == 0
    )
    assert "| metric | base | sft |" in (out / "report.md").read_text()
    assert eval_report.main(["--result", "nolabel", "--out", str(out)]) == 2
    assert "expected LABEL=PATH" in capsys.readouterr().err


# ---------------------------------------------------------------- figures from per-problem rows

BOX = "<think>\nx\n</think>\nThe answer is \\boxed{{{}}}."


def _scored(problems: int = 30):
    """Metrics, rows and curve of hand-built problems whose 4 samples agree more where they are right."""
    from components.metrics import scaling_curve, score_problems

    samples = [[BOX.format(7 if j < i % 5 else j + i) for j in range(4)] for i in range(problems)]
    rewards = [[float(j) for j in range(4)] for _ in range(problems)]
    metrics, rows = score_problems([BOX.format(7)] * problems, samples, ["7"] * problems, ks=[1, 4], rewards=rewards)
    return metrics, rows, scaling_curve(rows, 4)


def test_scaling_curve_bands_lie_between_their_bounds_around_each_point():
    from components import intervals

    _, rows, curve = _scored()
    bands = intervals.scaling_bands(rows, curve["n"])
    fig = eval_report.plot_scaling_curve(curve, bands)
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["pass@N", "maj@N", "bon@N", "wmaj@N"] and len(ax.collections) == 4  # one band per series
    for (name, line), shade in zip(lines.items(), ax.collections, strict=True):
        vertices = shade.get_paths()[0].vertices
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
            at_x = vertices[vertices[:, 0] == x][:, 1]
            low, high = bands[name][list(curve["n"]).index(x)]
            assert at_x.min() == pytest.approx(low) and at_x.max() == pytest.approx(high)
            assert low <= y <= high, (name, x)
    assert "95% bootstrap CI over problems" in ax.get_legend().get_title().get_text()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("N samples per problem", "held-out accuracy")
    plain = eval_report.plot_scaling_curve(curve).axes[0]
    assert len(plain.collections) == 0 and plain.get_legend().get_title().get_text() == ""  # no rows: no band, no claim of one


def test_reliability_diagram_shows_each_bin_and_the_ece():
    from components.metrics import calibration_bins, calibration_pairs

    metrics, rows, _ = _scored()
    bins = calibration_bins(*calibration_pairs(rows))
    fig = eval_report.plot_reliability(bins, metrics["ece"])
    top, bottom = fig.axes
    assert f"ECE = {metrics['ece']:.3f} (30 problems)" in top.get_title()
    assert [p.get_height() for p in top.patches] == [b.accuracy for b in bins]
    assert [p.get_x() for p in top.patches] == [b.low for b in bins]
    assert [p.get_height() for p in bottom.patches] == [b.count for b in bins] and sum(b.count for b in bins) == 30
    diagonal, dots = top.get_lines()
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata()) == [0, 1]
    assert list(dots.get_xdata()) == [b.confidence for b in bins]
    assert bottom.get_xlabel().startswith("confidence") and (top.get_ylabel(), bottom.get_ylabel()) == ("majority answer right", "problems")


def test_report_links_exactly_the_figures_it_wrote(tmp_path):
    import re

    metrics, rows, curve = _scored()
    text = eval_report.write_stage_report({"base": BASE, "sft": metrics}, tmp_path, curve, rows=rows).read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert links == ["tts_curve.png", "reliability.png", "accuracy_by_stage.png"]
    assert all((tmp_path / link).stat().st_size > 1000 for link in links)  # relative to report.md, and there
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(links)
    without_rows = eval_report.render_report({"sft": metrics}, curve, {"test-time scaling": "tts_curve.png"})
    assert "reliability" not in without_rows


def test_cli_draws_the_reliability_diagram_from_predictions(tmp_path):
    import json

    from components.artifacts import write_records

    metrics, rows, curve = _scored()
    (tmp_path / "m.json").write_text(json.dumps(metrics))
    (tmp_path / "c.json").write_text(json.dumps(curve))
    predictions = write_records(tmp_path / "predictions.jsonl", rows)
    out = tmp_path / "report"
    args = ["--result", f"sft={tmp_path / 'm.json'}", "--curve", str(tmp_path / "c.json"), "--predictions", str(predictions)]
    assert eval_report.main([*args, "--out", str(out)]) == 0
    assert "![reliability diagram](reliability.png)" in (out / "report.md").read_text() and (out / "reliability.png").is_file()


def test_the_figures_reach_mlflow_with_the_evaluation(tmp_path):
    """Both ways an evaluation is logged: the evaluate-model flow's run and the pipeline's nested stage run."""
    import mlflow
    from components import evaluate, tracking
    from components.config import StageResult
    from mlflow import MlflowClient

    metrics, rows, curve = _scored()
    folder = tmp_path / "evaluation"
    eval_report.write_stage_report({"sft": metrics}, folder, curve, rows=rows)
    result = StageResult(stage="evaluate", outputs={}, metrics=metrics, wall_seconds=1.0)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.setup(uri, "figures", str(tmp_path / "artifacts"))
    client = MlflowClient(tracking_uri=uri)

    run_id = tracking.log_evaluation(result, evaluate.Config(), "evaluate sft", {}, curve, folder)
    logged = {a.path for a in client.list_artifacts(run_id, "report")}
    assert {"report/tts_curve.png", "report/reliability.png", "report/report.md"} <= logged
    with mlflow.start_run():
        stage_id = tracking.log_stage(result, evaluate.Config(), name="evaluate-sft", artifacts={"evaluation": str(folder)})
    assert {"evaluation/tts_curve.png", "evaluation/reliability.png"} <= {a.path for a in client.list_artifacts(stage_id, "evaluation")}
