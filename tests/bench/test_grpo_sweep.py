"""bench/grpo_sweep.py: `--rl-limit` trains on a copy of the first N RL prompts, never on the file itself."""

from components.artifacts import read_records, write_records
from tests.bench import load_script


def test_rl_limit_writes_the_first_prompts_beside_the_runs_and_leaves_the_data_alone(tmp_path):
    bench = load_script("grpo_sweep")
    rows = [{"prompt": [{"role": "user", "content": f"q{i}"}], "answer": str(i)} for i in range(10)]
    rl = write_records(tmp_path / "data" / "rl.jsonl", rows)

    subset = bench.rl_prompts(rl, 3, tmp_path / "sweep")

    assert subset.parent == tmp_path / "sweep"
    assert [r["answer"] for r in read_records(subset)] == ["0", "1", "2"]
    assert read_records(rl) == rows
    assert bench.rl_prompts(rl, None, tmp_path / "sweep") == rl


def test_every_committed_runs_file_still_validates_against_the_stage_configs():
    """The runs behind tuning.md stay re-runnable: a renamed GRPO or evaluate field fails here, not in a 5-minute sweep."""
    import json
    from pathlib import Path

    from components import evaluate, grpo

    files = sorted((Path(__file__).resolve().parents[2] / "bench" / "grpo_runs").glob("*.json"))
    assert files, "bench/grpo_runs/ holds the sweeps' runs files"
    for path in files:
        for name, spec in json.loads(path.read_text()).items():
            assert set(spec) <= {"grpo", "eval", "model"}, f"{path.name}: run {name!r} has unknown keys {sorted(spec)}"
            if spec.get("grpo") is not None:
                grpo.Config(**spec["grpo"])
            evaluate.Config(**spec.get("eval", {}))
