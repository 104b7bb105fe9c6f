"""The README's local-profile tables are the committed fresh-clone run's, not typed by hand."""

import json
from pathlib import Path

from tests.bench import load_script
from tests.conftest import REPO


def test_the_readmes_stage_and_claims_tables_are_the_committed_runs():
    table = load_script("demo_table")
    results = json.loads((REPO / "bench" / "results" / "demo.json").read_text())
    readme = (REPO / "README.md").read_text()
    assert table.rendered_readme(readme, results) == readme, "README.md's tables are stale: run python bench/demo_table.py --write"


def test_the_committed_claims_are_the_flows_own_and_each_has_a_verdict():
    results = json.loads((REPO / "bench" / "results" / "demo.json").read_text())
    claims = results["claims"]["claims"]
    assert len(claims) >= 9 and all(c["holds"] in (True, False) for c in claims), "every claim measured in the committed run"
    forgetting = next(c for c in claims if c["measure"].startswith("probe accuracy"))
    assert forgetting["low"] is not None and forgetting["high"] is not None, "forgetting is a row, with its interval"
    assert (REPO / "bench" / "results" / "claims.md").read_text().count("\n| ") == 1 + len(claims)


def test_the_data_shapes_table_sets_each_claim_beside_the_same_claim_of_the_other_run():
    table = load_script("demo_table")
    results = json.loads((REPO / "bench" / "results" / "demo.json").read_text())
    other = json.loads(json.dumps(results))
    other["claims"]["claims"] = [row for row in other["claims"]["claims"] if not row["claim"].startswith("GRPO")]
    first = other["claims"]["claims"][0]
    first |= {"effect": 0.123, "low": 0.01, "high": 0.2, "holds": True}
    other.pop("demo_seconds")

    rendered = table.shapes_table(results, other, {})  # no seed spread: the two single runs

    assert "| local: 3000 reference solutions, 800 RL prompts | r1_shape: 300 reference solutions, 800 RL prompts |" in rendered
    assert f"| {first['claim']} |" in rendered and "+0.123 [+0.010, +0.200] **holds** |" in rendered
    grpo = next(line for line in rendered.splitlines() if line.startswith("| GRPO"))
    assert grpo.endswith("| not measured |")  # a claim the other run lacks is said so, not left blank
    assert "the flow run in a clone (not a fresh install)" in rendered and "One run each" in rendered


def test_a_profile_runs_claims_land_beside_its_json_and_leave_the_local_runs_alone():
    bench = load_script("demo_bench")
    assert bench.claims_name(Path("bench/results/demo.json")) == "claims.md"
    assert bench.claims_name(Path("bench/results/demo_r1_shape.json")) == "claims_r1_shape.md"


def test_a_seed_spread_of_r1_shape_adds_a_pooled_column_with_how_often_each_run_alone_held():
    table = load_script("demo_table")
    results = json.loads((REPO / "bench" / "results" / "demo.json").read_text())
    other = json.loads((REPO / "bench" / "results" / "demo_r1_shape.json").read_text())
    first = results["claims"]["claims"][0]["claim"]
    seeds = {
        "commit": "abc1234",
        "cpu": "AMD EPYC",
        "offsets": [0, 1, 2],
        "pipeline_seconds": {"0": 2100.0, "1": 1800.0, "2": 1790.0},
        "pooled_offsets": [0, 1, 2],
        "spread": {first: {"holds_in": 1, "runs": 3}},
        "pooled": [
            {"claim": first, "measure": "pass@1: grpo - sft", "effect": 0.05, "low": 0.01, "high": 0.09, "holds": True},
            {
                "claim": "the stages after",
                "measure": "pass@1: final (alignment) - sft",
                "left": 0.4,
                "effect": 0.2,
                "low": 0.1,
                "high": 0.3,
                "holds": True,
            },
        ],
    }

    rendered = table.shapes_table(results, other, seeds)

    lines = rendered.splitlines()
    assert lines[0].endswith("| r1_shape, 3 seeds pooled |") and lines[1] == "|---|---|---|---|"
    assert lines[2].startswith(f"| {first} |") and lines[2].endswith("| +0.050 [+0.010, +0.090] **holds** (alone: holds in 1 of 3) |")
    assert all(line.count("|") == 5 for line in lines[2:] if line.startswith("| ")), "every claim has the four cells"
    assert "seed_spread.py --profile r1_shape` at commit abc1234 on AMD EPYC" in rendered and "2100, 1800, 1790 s each" in rendered
    assert "no seed spread of r1_shape yet" not in rendered and "Their final models solve 0.400 of the held-out set" in rendered
    assert "no seed spread of r1_shape yet" in table.shapes_table(results, other, {}), "without a spread the table says so"


def test_a_pooled_spread_is_one_table_of_each_claims_effect_per_seed_and_pooled(tmp_path):
    table = load_script("demo_table")
    results = json.loads((REPO / "bench" / "results" / "demo.json").read_text())
    claims = results["claims"]["claims"]
    bon = next(row["claim"] for row in claims if row["claim"].startswith("best-of-"))
    runs = {
        str(k): [{"claim": row["claim"], "effect": 0.01 * k, "holds": k == 2, "note": row["note"]} for row in claims] for k in (0, 1, 2)
    }
    seeds = {
        "commit": "abc1234",
        "cpu": "AMD EPYC",
        "cpu_flags": "avx2",
        "offsets": [0, 1, 2],
        "offset0_from": f"demo.json (commit {results['commit']}, CPU flags avx2)",
        "runs": runs,
        "spread": load_script("seed_spread").spread({int(k): rows for k, rows in runs.items()}),
        "pooled_offsets": [0, 1, 2],
        "pooled": [row | {"effect": 0.042, "low": 0.011, "high": 0.07, "holds": True} for row in claims],
    }
    table.SEED_SPREAD = tmp_path / "seed_spread.json"
    table.SEED_SPREAD.write_text(json.dumps(seeds))

    rendered = table.claims_table(results)

    assert "| claim | effect at seed offsets [0, 1, 2] | one run holds it | 3 seeds pooled: effect [95%] |" in rendered
    assert f"| {bon} | +0.000, +0.010, +0.020 | 1 of 3 | +0.042 [+0.011, +0.070] **holds** |" in rendered
    assert "Spread over seeds" not in rendered, "the effects per seed are in the table, not listed again under it"
    assert "The spread is not the run above's commit" not in rendered, "offset 0 is the run above"


def test_a_spread_without_pooled_claims_lists_each_claims_effects_under_the_table(tmp_path):
    table = load_script("demo_table")
    results = json.loads((REPO / "bench" / "results" / "demo.json").read_text())
    first = results["claims"]["claims"][0]["claim"]
    runs = {0: [{"claim": first, "effect": 0.02, "holds": False}], 1: [{"claim": first, "effect": -0.01, "holds": False}]}
    seeds = {"commit": "abc1234", "offsets": [0, 1], "spread": load_script("seed_spread").spread(runs), "pooled": []}
    table.SEED_SPREAD = tmp_path / "seed_spread.json"
    table.SEED_SPREAD.write_text(json.dumps(seeds))

    rendered = table.claims_table(results)

    assert f"- {first}: effects +0.020, -0.010 over seed offsets [0, 1]" in rendered and "seeds pooled" not in rendered
    assert f"The spread is not the run above's commit ({results['commit']})" in rendered
