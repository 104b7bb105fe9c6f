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
