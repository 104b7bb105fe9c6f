"""bench/smol_table.py on hand-built artifacts: the README's SmolLM2 table and its paired intervals."""

import json
import subprocess
import sys

from tests.conftest import REPO


def fake_stage(root, label, seconds, correct=None, metrics=None):
    out = root / label / "0123456789abcdef"
    out.mkdir(parents=True)
    (out / "result.json").write_text(json.dumps({"wall_seconds": seconds}))
    if correct is not None:
        (out / "metrics.json").write_text(json.dumps({"pass@1": sum(correct) / len(correct), "mean_length": 40.0, **(metrics or {})}))
        (out / "predictions.jsonl").write_text("".join(json.dumps({"greedy_correct": c}) + "\n" for c in correct))


def test_a_partial_run_gives_its_rows_and_the_paired_interval_of_grpo_over_sft(tmp_path):
    artifacts = tmp_path / "artifacts"
    fake_stage(artifacts, "sft", 100)
    fake_stage(artifacts, "evaluate-sft", 20, [True] * 10 + [False] * 30)
    fake_stage(artifacts, "grpo", 300)
    fake_stage(artifacts, "evaluate-grpo", 20, [True] * 30 + [False] * 10, {"free_text_pass@1": 0.8})
    out = tmp_path / "smol.json"
    done = subprocess.run(
        [sys.executable, "bench/smol_table.py", "--artifacts", str(artifacts), "--out", str(out)], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| grpo | 0.750 | 0.800 |" in done.stdout and "| 300 | 20 |" in done.stdout
    result = json.loads(out.read_text())
    interval = result["paired_pass_at_1"]["grpo_vs_sft"]
    assert interval["difference"] == 0.5 and 0.3 < interval["ci95"][0] < 0.5 < interval["ci95"][1]
    assert list(result["stages"]) == ["sft", "grpo"] and result["complete"] is False
