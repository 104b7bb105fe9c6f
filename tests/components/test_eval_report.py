"""The evaluation report: readable markdown tables and plots, from hand-built metrics."""

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
