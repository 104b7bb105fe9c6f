"""bench/smol_table.py on hand-built artifacts: the README's SmolLM2 table and its paired intervals."""

import json
import subprocess
import sys

from tests.conftest import REPO


def fake_stage(root, label, seconds, correct=None, metrics=None, peak_gib=None, probe=None):
    out = root / label / "0123456789abcdef"
    out.mkdir(parents=True)
    (out / "result.json").write_text(json.dumps({"wall_seconds": seconds, "info": {"usage": {"peak_rss_gib": peak_gib}}}))
    if correct is not None:
        (out / "metrics.json").write_text(json.dumps({"pass@1": sum(correct) / len(correct), "mean_length": 40.0, **(metrics or {})}))
        (out / "predictions.jsonl").write_text("".join(json.dumps({"greedy_correct": c}) + "\n" for c in correct))
    if probe is not None:
        (out / "probe_predictions.jsonl").write_text("".join(json.dumps({"correct": c}) + "\n" for c in probe))


def test_a_partial_run_gives_its_rows_and_the_paired_interval_of_grpo_over_sft(tmp_path):
    artifacts = tmp_path / "artifacts"
    fake_stage(artifacts, "sft", 100)
    fake_stage(artifacts, "evaluate-sft", 20, [True] * 10 + [False] * 30)
    fake_stage(artifacts, "reward_model", 50, peak_gib=4.0)
    fake_stage(artifacts, "grpo", 300, peak_gib=9.25)
    fake_stage(artifacts, "evaluate-grpo", 20, [True] * 30 + [False] * 10, {"free_text_pass@1": 0.8}, peak_gib=3.0)
    out = tmp_path / "smol.json"
    command = [sys.executable, "bench/smol_table.py", "--artifacts", str(artifacts), "--out", str(out)]
    done = subprocess.run([*command, "--summary", str(tmp_path / "not-finished.json")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| grpo | 0.750 | 0.800 |" in done.stdout and "| 300 | 20 | 9.2 |" in done.stdout, (
        "the higher of training's and evaluation's peak"
    )
    assert "reward_model: 50 s, peak 4.0 GiB" in done.stdout
    result = json.loads(out.read_text())
    interval = result["paired_pass_at_1"]["grpo_vs_sft"]
    assert interval["difference"] == 0.5 and 0.3 < interval["ci95"][0] < 0.5 < interval["ci95"][1]
    assert list(result["stages"]) == ["sft", "grpo"] and result["complete"] is False
    assert "pipeline_wall_seconds" not in result, "the run has not finished: no wall time, no gate"


def test_a_finished_run_adds_its_wall_time_and_the_gates_decision(tmp_path):
    artifacts = tmp_path / "artifacts"
    fake_stage(artifacts, "base", 1)
    fake_stage(artifacts, "evaluate-base", 20, [False] * 40)
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"pipeline_wall_seconds": 3456.0, "alias": {"promoted": True, "reason": "lower bound 0.2 > 0"}}))
    out = tmp_path / "smol.json"
    command = [sys.executable, "bench/smol_table.py", "--artifacts", str(artifacts), "--out", str(out), "--summary", str(summary)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "whole run 3456 s; promoted: True (lower bound 0.2 > 0)" in done.stdout
    assert json.loads(out.read_text())["promoted"] is True


def test_the_forgetting_probe_gets_a_column_and_its_paired_interval_final_vs_shipped(tmp_path):
    artifacts = tmp_path / "artifacts"
    fake_stage(artifacts, "evaluate-base", 20, [False] * 40, {"probe_accuracy": 0.75}, probe=[True] * 30 + [False] * 10)
    fake_stage(artifacts, "evaluate-alignment", 20, [True] * 40, {"probe_accuracy": 0.5}, probe=[True] * 20 + [False] * 20)
    out = tmp_path / "smol.json"
    command = [sys.executable, "bench/smol_table.py", "--artifacts", str(artifacts), "--out", str(out)]
    done = subprocess.run([*command, "--summary", str(tmp_path / "none.json")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| base | 0.000 | - | - | - | - | - | 0.750 | 40 |" in done.stdout
    cost = json.loads(out.read_text())["paired_probe"]["final_vs_shipped"]
    assert cost["difference"] == -0.25 and cost["problems"] == 40 and cost["ci95"][0] < -0.25 < cost["ci95"][1] < 0
    assert "probe final_vs_shipped: -0.250" in done.stdout


def test_the_readmes_table_is_the_committed_runs():
    from tests.bench import load_script

    table = load_script("smol_table")
    readme = (REPO / "README.md").read_text()
    result = json.loads((REPO / "bench" / "results" / "smol.json").read_text())
    assert table.readme_with_table(readme, result) == readme, "README.md's SmolLM2 table is stale: run python bench/smol_table.py --readme"
