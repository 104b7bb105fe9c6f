"""bench/base_screen.py: each seed pretrained to abandon_at of its schedule, its validation sums by step."""

import json

from tests.bench import load_script
from tests.conftest import tiny_overrides


def test_each_seed_is_pretrained_to_half_its_schedule_and_probed_on_validation(tmp_path):
    bench = load_script("base_screen")
    tiny = tiny_overrides()
    params = {"data": tiny["data"], "base": tiny["base"] | {"steps": 10, "probe_every": 2}}

    rows = list(bench.screen("drills", {"pretrain_worked_fraction": 0.2}, {"warmup_steps": 1}, [3, 4], params, tmp_path))

    assert [row["seed"] for row in rows] == [3, 4] and all(row["data"] == {"pretrain_worked_fraction": 0.2} for row in rows)
    assert all(row["base"] == {"warmup_steps": 1} and row["cpu"] and row["commit"] for row in rows), (
        "each row names its overrides and machine"
    )
    for row in rows:  # checks every 2 steps up to the first at or past half of 10, then stopped there
        assert [step for step, _ in row["val_sums_by_step"]] == [2, 4, 6]
        assert all(0.0 <= share <= 1.0 for _, share in row["val_sums_by_step"])
    texts = (tmp_path / "data" / "pretrain.jsonl").read_text()
    assert texts.count("\\nA: ") == round(tiny["data"]["n_pretrain"] * 0.2), "the run's own corpus: a fifth worked problems"
    json.dumps(rows)
