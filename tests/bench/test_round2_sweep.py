"""bench/round2_sweep.py: each run samples, trains round 2 on what it kept and scores it on validation only."""

import json
from pathlib import Path

import pytest
import yaml

from tests.bench import load_script
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


def test_each_run_reports_its_sampling_and_the_round_2_models_validation_score(tmp_path, tiny_data, tiny_sft_model, monkeypatch, capsys):
    bench = load_script("round2_sweep")
    tiny = tiny_overrides()
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"rejection_sampling": tiny["rejection_sampling"], "sft_round2": tiny["sft_round2"]}))
    data_dir = str(Path(tiny_data["eval"]).parent)
    runs = '{"unchecked": {"check_steps": false}, "checked": {}}'
    argv = [
        "round2_sweep",
        "--policy",
        tiny_sft_model,
        "--data",
        data_dir,
        "--params",
        str(params),
        "--runs",
        runs,
        "--out",
        str(tmp_path / "out"),
        "--control",
    ]
    monkeypatch.setattr("sys.argv", argv)
    assert bench.main() == 0

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"')]
    assert [row["run"] for row in rows] == ["policy (round 2's start)", "control (original SFT data)", "unchecked", "checked"]
    assert 0 <= rows[1]["val_pass@1"] <= 1 and (tmp_path / "out" / "control" / "round2" / "model").is_dir()
    for row in rows[2:]:
        assert 0 <= row["val_pass@1"] <= 1 and 0 <= row["wrong_step_share"] <= 1
        assert (tmp_path / "out" / row["run"] / "round2" / "model").is_dir()
    assert rows[2]["wrong_step_share"] == 0  # unchecked: nothing was set aside for its steps
    sampled = json.loads((tmp_path / "out" / "checked" / "rs" / "stats.json").read_text())
    assert sampled["kept"] <= json.loads((tmp_path / "out" / "unchecked" / "rs" / "stats.json").read_text())["kept"]
