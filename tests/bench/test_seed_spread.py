"""bench/seed_spread.py: which seeds a seed offset shifts, and how the claims' spread is summarised."""

import json
from pathlib import Path

import pytest
import yaml

from flows.params import load_params
from tests.bench import load_script
from tests.conftest import REPO


def test_every_post_training_seed_is_shifted_and_the_task_and_base_are_not(tmp_path):
    bench = load_script("seed_spread")
    document = yaml.safe_load((REPO / "params.yaml").read_text())
    effective = load_params(REPO / "params.yaml", "local").model_dump(mode="json")
    shifted, changed = bench.shifted_params(document, effective, 3, "reports/seed3")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(shifted))
    before, after = load_params(REPO / "params.yaml", "local"), load_params(tmp_path / "params.yaml", "local")

    assert {"sft.seed", "grpo.seed", "distill.student_sft.seed", "evaluate.seed"} <= set(changed)
    assert after.distill.student_sft.seed == before.distill.student_sft.seed + 3  # a seed params.yaml leaves at its default
    assert after.sft.seed == before.sft.seed + 3 and after.alignment.dpo.seed == before.alignment.dpo.seed + 3
    assert after.data == before.data and after.base == before.base  # the same task, split and pretrained base
    assert after.paths.reports_dir == "reports/seed3" and after.paths.artifacts_dir == before.paths.artifacts_dir
    assert document["sft"]["seed"] == before.sft.seed  # the original is untouched


def test_another_profile_keeps_its_own_settings_and_gets_its_seeds_and_reports_shifted(tmp_path):
    bench = load_script("seed_spread")
    document = yaml.safe_load((REPO / "params.yaml").read_text())
    document["profiles"]["r1_shape"]["sft"] = {"seed": 40}  # a profile that sets a seed of its own: the shift must win
    effective = load_params_from(document, tmp_path, "r1_shape")
    shifted, changed = bench.shifted_params(document, effective, 2, "reports/seed2", "r1_shape")
    (tmp_path / "shifted.yaml").write_text(yaml.safe_dump(shifted))
    after = load_params(tmp_path / "shifted.yaml", "r1_shape")

    assert after.data.n_sft == effective["data"]["n_sft"] == 300, "the profile's own data shape stays"
    assert after.sft.seed == 42 and after.grpo.seed == effective["grpo"]["seed"] + 2 and "grpo.seed" in changed
    assert after.data.seed == effective["data"]["seed"] and after.base == load_params_from(document, tmp_path, "r1_shape", model=True).base
    assert after.paths.reports_dir == "reports/seed2"
    with pytest.raises(ValueError, match="params.yaml has no profile 'nope'"):
        bench.shifted_params(document, effective, 1, "reports/seed1", "nope")


def load_params_from(document: dict, folder, profile: str, model: bool = False):
    path = folder / "original.yaml"
    path.write_text(yaml.safe_dump(document))
    loaded = load_params(path, profile)
    return loaded if model else loaded.model_dump(mode="json")


def test_the_spread_gives_each_claims_effects_sd_and_how_often_it_held():
    bench = load_script("seed_spread")
    runs = {
        0: [{"claim": "a", "effect": 0.10, "holds": True}, {"claim": "b", "effect": None, "holds": None}],
        1: [{"claim": "a", "effect": 0.00, "holds": False}, {"claim": "b", "effect": None, "holds": None}],
        2: [{"claim": "a", "effect": 0.05, "holds": True}, {"claim": "b", "effect": None, "holds": None}],
    }
    spread = bench.spread(runs)
    assert spread["a"]["effects"] == [0.10, 0.00, 0.05] and spread["a"]["seeds"] == [0, 1, 2]
    assert abs(spread["a"]["mean"] - 0.05) < 1e-12 and abs(spread["a"]["sd"] - 0.05) < 1e-12
    assert spread["a"]["holds_in"] == 2 and spread["a"]["runs"] == 3
    assert spread["b"]["mean"] is None and spread["b"]["sd"] is None and spread["b"]["holds_in"] == 0
    report = bench.markdown({"commit": "abc", "offsets": [0, 1, 2], "spread": spread, "pipeline_seconds": {"0": 1.0}})
    assert "| a | +0.100, +0.000, +0.050 | +0.050 | 0.050 | 2 of 3 |" in report


def test_offset_0_can_be_a_committed_demo_run_named_in_the_report(tmp_path):
    bench = load_script("seed_spread")
    demo = tmp_path / "demo.json"
    claims = [{"claim": "a", "effect": 0.1, "holds": True}]
    demo.write_text(
        json.dumps({"claims": {"claims": claims}, "pipeline_seconds": 12.0, "commit": "abc1234", "math": {"cpu_flags": "amx_bf16"}})
    )
    reused = bench.reused_run(demo, [1, 2])
    assert reused["claims"] == claims and reused["seconds"] == 12.0
    assert "commit abc1234" in reused["source"] and "amx_bf16" in reused["source"], "a reader can check it trains what the clone does"
    with pytest.raises(SystemExit, match="leave 0 out of --offsets"):
        bench.reused_run(demo, [0, 1])
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"claims": {"claims": claims}}))
    with pytest.raises(SystemExit, match=r"other.json: not a bench/demo_bench.py result \(it has no 'pipeline_seconds'\)"):
        bench.reused_run(other, [1])
    report = bench.markdown(
        {
            "commit": "def",
            "offsets": [0, 1],
            "spread": bench.spread({0: claims}),
            "pipeline_seconds": {"0": 12.0},
            "offset0_from": reused["source"],
        }
    )
    assert "Offset 0 is the committed run demo.json (commit abc1234" in report


def test_a_kept_clones_runs_are_pooled_per_problem_and_repooled_into_the_result(tmp_path):
    from dataclasses import asdict

    from components import claims
    from components.artifacts import write_records

    bench = load_script("seed_spread")
    clone, summaries = tmp_path / "repo", {}
    for k in range(3):  # the SFT solves the first 100 of 200; GRPO gains 20 and loses 12 others in each run
        greedy = {"sft": [i < 100 for i in range(200)]}
        greedy["grpo"] = greedy["alignment"] = [
            (100 + 20 * k <= i < 120 + 20 * k) or (i < 100 and not 12 * k <= i < 12 * k + 12) for i in range(200)
        ]
        evaluations = {}
        for label, correct in greedy.items():
            rows = [
                {"reference": str(i), "greedy_correct": c, "sample_answers": ["1"] * 8, "sample_correct": [c] * 8}
                for i, c in enumerate(correct)
            ]
            write_records(clone / f"artifacts/{label}{k}/predictions.jsonl", rows)
            evaluations[label] = {"predictions": f"artifacts/{label}{k}/predictions.jsonl"}  # relative, as the flow writes them
        summary = clone / f"reports/seed{k}/summary.json"
        summary.parent.mkdir(parents=True)
        run = claims.RunFiles(evaluations=evaluations, final="alignment")
        summary.write_text(json.dumps({"claims_inputs": asdict(run)}))
        written = claims.build(run.under(clone)).as_dict()
        if k < 2:  # a claims.json from before the scores were kept: measured again from the summary's files
            written = {"method": written["method"], "claims": [bench.without_scores(row) for row in written["claims"]]}
        summary.with_name("claims.json").write_text(json.dumps(written))
        summaries[k] = str(summary)

    pooled, offsets = bench.pooled(summaries)
    rows = {row["measure"]: row for row in pooled}
    assert rows["pass@1: grpo - sft"]["effect"] == pytest.approx(0.04) and rows["pass@1: grpo - sft"]["holds"] is True
    assert offsets == [0, 1, 2] and "scores" not in rows["pass@1: grpo - sft"], "the result stays readable"
    assert bench.pooled({1: summaries[1]}) == ([], []), "one run here (offset 0 reused from an old run without scores)"
    reused = {"report": json.loads(Path(summaries[2]).with_name("claims.json").read_text())}
    assert bench.pooled({1: summaries[1]}, reused)[1] == [0, 1], "a reused run whose claims carry scores is pooled as offset 0"

    result = tmp_path / "spread.json"
    result.write_text(json.dumps({"commit": "abc", "offsets": [0, 1, 2], "spread": {}, "pipeline_seconds": {}, "summaries": summaries}))
    assert bench.main(["--repool", str(result)]) == 0
    assert json.loads(result.read_text())["pooled"]
    report = result.with_suffix(".md").read_text()
    assert (
        "## Pooled over the 3 runs" in report
        and "| GRPO lifts pass@1 over the cold-start SFT | pass@1: grpo - sft | 0.540 | 0.500 | +0.040 |" in report
    )


def test_with_base_the_bases_seed_is_shifted_too_and_the_task_stays(tmp_path):
    bench = load_script("seed_spread")
    document = yaml.safe_load((REPO / "params.yaml").read_text())
    effective = load_params(REPO / "params.yaml", "local").model_dump(mode="json")
    shifted, changed = bench.shifted_params(document, effective, 2, "reports/seed2", fixed=bench.FIXED_BUT_BASE)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(shifted))
    before, after = load_params(REPO / "params.yaml", "local"), load_params(tmp_path / "params.yaml", "local")

    assert "base.seed" in changed and after.base.seed == before.base.seed + 2 and after.sft.seed == before.sft.seed + 2
    assert after.data == before.data, "the task and its held-out split stay: the runs pool per problem"
    assert after.base.model_dump(exclude={"seed"}) == before.base.model_dump(exclude={"seed"})


def test_the_report_shows_what_each_runs_models_score_read_from_its_claims():
    bench = load_script("seed_spread")
    run = [
        {"measure": "pass@1: grpo - sft", "left": 0.2, "right": 0.25},
        {"measure": "pass@1: final (alignment) - sft", "left": 0.6, "right": 0.25},
        {"measure": "pass@1: distill - student_sft", "left": 0.3, "right": 0.4},
        {"measure": "probe accuracy: final (alignment) - base", "left": 0.7, "right": 0.11},
    ]
    lines = bench.levels({"0": run, "1": run[:2]})
    assert lines[-4].startswith("| seed offset | base probe | cold-start SFT | final |")
    assert lines[-2] == "| 0 | 0.110 | 0.250 | 0.600 | 0.300 | 0.400 |"
    assert lines[-1] == "| 1 | - | 0.250 | 0.600 | - | - |", "a claim the run lacks is a dash, not a guess"
