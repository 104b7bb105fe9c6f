"""claims.md: each claim's interval, verdict and reasons, from hand-built run files."""

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from components import claims
from components.artifacts import write_records

N = 200


def predictions(path, greedy: list[bool], samples: list[list[str]] | None = None) -> str:
    """An evaluation's predictions.jsonl: greedy correctness and sampled answers (the reference is "1")."""
    samples = samples or [["1"] * 8 if correct else ["2"] * 8 for correct in greedy]
    rows = [
        {"greedy_correct": correct, "sample_answers": answers, "sample_correct": [a == "1" for a in answers]}
        for correct, answers in zip(greedy, samples, strict=True)
    ]
    return str(write_records(path, rows))


def probes(path, correct: list[bool]) -> str:
    return str(write_records(path, [{"prompt": f"{i}+1=", "answer": str(i + 1), "correct": c} for i, c in enumerate(correct)]))


def run_files(tmp_path, **evaluations) -> claims.RunFiles:
    paths = {}
    for label, greedy in evaluations.items():
        paths[label] = {"predictions": predictions(tmp_path / f"{label}.jsonl", greedy)}
    return claims.RunFiles(evaluations=paths, final="alignment")


def share(k: int) -> list[bool]:
    return [i < k for i in range(N)]


def test_a_clear_paired_gain_holds_and_no_gain_does_not(tmp_path):
    run = run_files(tmp_path, sft=share(60), grpo=share(100), alignment=share(100))
    grpo = claims.grpo_over_sft(run)
    assert grpo.effect == pytest.approx(0.2) and grpo.low > 0.1 and grpo.high <= 0.3 and grpo.holds is True
    assert grpo.units == N
    same = claims.grpo_over_sft(run_files(tmp_path, sft=share(60), grpo=share(60), alignment=share(60)))
    assert same.effect == 0.0 and same.low <= 0.0 and same.holds is False


def test_a_switched_off_stage_is_not_measured_and_says_why(tmp_path):
    run = run_files(tmp_path, sft=share(60), alignment=share(80))
    row = claims.grpo_over_sft(run)
    assert row.holds is None and "switched off" in row.note
    assert "not measured" in claims.markdown(claims.ClaimsReport([row]))


def test_majority_vote_is_judged_against_greedy_on_the_same_problems(tmp_path):
    # greedy right on 50; the vote of 8 samples right on 100 (a wrong greedy answer the samples outvote)
    samples = [["1"] * 5 + ["2"] * 3 if i < 100 else ["2"] * 8 for i in range(N)]
    path = predictions(tmp_path / "final.jsonl", share(50), samples)
    run = claims.RunFiles(evaluations={"alignment": {"predictions": path}}, final="alignment")
    row = claims.majority_over_greedy(run)
    assert row.left == pytest.approx(0.5) and row.right == pytest.approx(0.25)
    assert row.holds is True and "goal of +0.05 met" in row.note


def test_the_reward_model_row_resamples_pairs_and_reports_each_kind(tmp_path):
    pairs = [{"kind": "format", "margin": 1.0, "correct": True}] * 40 + [{"kind": "wrong_step", "margin": -1.0, "correct": False}] * 40
    run = claims.RunFiles(evaluations={}, final="alignment", reward_pairs=str(write_records(tmp_path / "pairs.jsonl", pairs)))
    row = claims.reward_model_separates(run)
    assert row.effect == pytest.approx(0.5) and row.low < 0.5 < row.high and row.holds is False
    assert "format 1.00" in row.note and "wrong_step 0.00" in row.note and "goal not met" in row.note


def test_the_policys_own_pairs_are_noted_apart_from_the_headline_accuracy(tmp_path):
    pairs = [{"kind": "format", "margin": 1.0, "correct": True}] * 40 + [{"kind": "on_policy", "margin": -1.0, "correct": False}] * 3
    pairs += [{"kind": "on_policy", "margin": 1.0, "correct": True}]
    run = claims.RunFiles(evaluations={}, final="alignment", reward_pairs=str(write_records(tmp_path / "pairs.jsonl", pairs)))
    row = claims.reward_model_separates(run)
    assert row.effect == pytest.approx(1.0) and row.units == 40
    assert "on_policy" not in row.note.split(";")[0] and "own right vs wrong answers: 0.25 of 4" in row.note


def test_forgetting_holds_within_five_points_and_reports_the_cost(tmp_path):
    base = probes(tmp_path / "base.jsonl", share(180))
    final = probes(tmp_path / "final.jsonl", share(100))
    run = claims.RunFiles(evaluations={"base": {"probe_predictions": base}, "alignment": {"probe_predictions": final}}, final="alignment")
    row = claims.forgetting(run)
    assert row.effect == pytest.approx(-0.4) and row.holds is False and "cost 0.400 (base 0.900 -> final 0.500)" in row.note
    kept = claims.forgetting(
        claims.RunFiles(evaluations={"base": {"probe_predictions": base}, "alignment": {"probe_predictions": base}}, final="alignment")
    )
    assert kept.holds is True, "no drop at all is within the 5 points allowed"
    better = claims.forgetting(
        claims.RunFiles(evaluations={"base": {"probe_predictions": final}, "alignment": {"probe_predictions": base}}, final="alignment")
    )
    assert better.holds is True and "gained 0.400" in better.note, "a rise is said as a gain, not a negative cost"
    no_probe = claims.forgetting(claims.RunFiles(evaluations={"base": {}, "alignment": {}}, final="alignment"))
    assert no_probe.holds is None and "no probe set" in no_probe.note
    nothing = probes(tmp_path / "zero.jsonl", share(0))
    vacuous = claims.forgetting(
        claims.RunFiles(
            evaluations={"base": {"probe_predictions": nothing}, "alignment": {"probe_predictions": nothing}}, final="alignment"
        )
    )
    assert vacuous.holds is None and "the base solves none of the probe" in vacuous.note, "0 -> 0 is not kept ability"


def test_forgetting_on_a_chat_probe_is_named_for_general_knowledge(tmp_path):
    rows = [{"prompt": [{"role": "user", "content": f"Question {i}?"}], "answer": "Paris", "correct": i < 150} for i in range(200)]
    base = str(write_records(tmp_path / "base.jsonl", rows))
    final = probes(tmp_path / "final.jsonl", share(120))
    row = claims.forgetting(
        claims.RunFiles(evaluations={"base": {"probe_predictions": base}, "alignment": {"probe_predictions": final}}, final="alignment")
    )
    assert row.claim.startswith("the recipe keeps the base's general knowledge") and row.effect == pytest.approx(-0.15)
    assert claims.forgetting(claims.RunFiles(evaluations={"base": {}, "alignment": {}}, final="alignment")).claim.startswith(
        "the recipe keeps the base's arithmetic"
    )


def test_round2_is_compared_with_its_control_when_there_is_one(tmp_path):
    run = run_files(tmp_path, grpo=share(60), sft_round2=share(120), sft_control=share(110), alignment=share(120))
    run.round2_start, run.steps = "grpo", {"sft_round2": 300}
    row = claims.rejection_sampling_over_control(run)
    assert row.measure.endswith("sft_control") and row.effect == pytest.approx(0.05) and "controlled" in row.note
    del run.evaluations["sft_control"]
    uncontrolled = claims.rejection_sampling_over_control(run)
    assert uncontrolled.effect == pytest.approx(0.3) and uncontrolled.note.startswith("uncontrolled")


def test_the_report_is_written_as_markdown_and_json_from_a_summary(tmp_path):
    run = run_files(tmp_path, base=share(0), sft=share(60), grpo=share(70), sft_round2=share(90), alignment=share(90))
    summary = tmp_path / "summary.json"

    summary.write_text(json.dumps({"claims_inputs": asdict(run)}))
    assert claims.main([str(summary), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "claims.md").read_text()
    assert text.count("\n| ") == 1 + len(claims.build(run).claims), "a header and one row per claim"
    written = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert {c["claim"] for c in written["claims"]} == {c.claim for c in claims.build(run).claims}
    with pytest.raises(ValueError, match="claims_inputs"):
        claims.from_summary({})


def seeded_run(folder, k: int) -> claims.RunFiles:
    """Run k of one recipe: GRPO gains 20 problems and loses 12 over the SFT, different ones in each run."""
    folder.mkdir(exist_ok=True)
    sft = share(100)
    grpo = [(100 + 20 * k <= i < 120 + 20 * k) or (c and not 12 * k <= i < 12 * k + 12) for i, c in enumerate(sft)]
    return run_files(folder, sft=sft, grpo=grpo, alignment=grpo)


def pool_runs(runs: list[claims.RunFiles]) -> claims.ClaimsReport:
    return claims.pool([claims.build(run) for run in runs])


def test_pooling_runs_averages_each_problem_over_them_and_resolves_what_one_run_cannot(tmp_path):
    runs = [seeded_run(tmp_path / f"seed{k}", k) for k in range(3)]
    alone = [claims.grpo_over_sft(run) for run in runs]
    assert all(row.effect == pytest.approx(0.04) and row.holds is False for row in alone), "+20 -12 of 200: within one run's noise"

    report = pool_runs(runs)
    grpo = next(row for row in report.claims if row.measure == "pass@1: grpo - sft")
    assert grpo.effect == pytest.approx(0.04) and grpo.units == N, "a problem stays one unit, not three"
    assert grpo.holds is True and grpo.high - grpo.low < min(row.high - row.low for row in alone)
    assert grpo.note == "per run: +0.040, +0.040, +0.040" and "averaged over 3 runs" in report.method
    written = report.as_dict()
    assert written["claims"][0]["scores"][0] == grpo.scores[0] and grpo.units_id == claims.build(runs[0]).claims[0].units_id


def test_claims_json_carries_the_scores_so_runs_pool_from_it_alone(tmp_path):
    runs = [seeded_run(tmp_path / f"seed{k}", k) for k in range(3)]
    written = [json.loads(json.dumps(claims.build(run).as_dict())) for run in runs]  # as claims.json holds them
    assert written[0]["claims"][0]["units_id"] and written[0]["claims"][0]["scores"][1] == [1.0] * 100 + [0.0] * 100
    again = claims.pool([claims.ClaimsReport.from_dict(data) for data in written])
    assert [asdict(row) for row in again.claims] == [asdict(row) for row in pool_runs(runs).claims]


def test_pooling_refuses_runs_of_other_problems_runs_without_scores_and_a_single_run(tmp_path):
    first = claims.build(seeded_run(tmp_path / "a", 0))
    other = tmp_path / "b"
    other.mkdir()
    rows = [{"reference": str(i), "greedy_correct": True, "sample_answers": ["1"] * 8, "sample_correct": [True] * 8} for i in range(N)]
    path = str(write_records(other / "alignment.jsonl", rows))
    moved = claims.build(claims.RunFiles(evaluations={"sft": {"predictions": path}, "alignment": {"predictions": path}}, final="alignment"))
    with pytest.raises(ValueError, match="the stages after the cold-start SFT lift pass@1: the runs were measured on other problems"):
        claims.pool([first, moved])
    unmarked = replace(first, claims=[replace(row, units_id="") for row in first.claims])
    with pytest.raises(ValueError, match="carry no units fingerprint"):
        claims.pool([first, unmarked])
    with pytest.raises(ValueError, match="two runs or more, got 1"):
        claims.pool([first])
    with pytest.raises(ValueError, match="the runs list 9, 8 claims: written by other versions"):
        claims.pool([first, replace(first, claims=first.claims[:-1])])


def test_the_reward_models_accuracy_pools_per_pair_or_over_every_runs_own_pairs(tmp_path):
    def run(k: int, kinds: list[str]) -> claims.RunFiles:
        pairs = [{"kind": kind, "margin": 0.0, "correct": i % 3 != k} for i, kind in enumerate(kinds)]  # each run misses its own third
        pairs_file = str(write_records(tmp_path / f"pairs{k}.jsonl", pairs))
        return replace(run_files(tmp_path, alignment=share(100)), reward_pairs=pairs_file)

    def accuracy(report: claims.ClaimsReport) -> claims.Claim:
        return next(r for r in report.claims if r.measure.startswith("held-out pairwise"))

    same = accuracy(pool_runs([run(k, ["format"] * 60) for k in range(3)]))
    assert same.effect == pytest.approx(2 / 3) and same.units == 60 and same.right is None
    assert same.low == pytest.approx(2 / 3) == same.high, "every pair right in two runs of three: no spread left between pairs"

    own = accuracy(pool_runs([run(k, ["format"] * (60 - k) + ["wrong_step"] * k) for k in range(3)]))  # each run split its own
    assert own.effect == pytest.approx(2 / 3, abs=0.01) and own.units == 180 and own.low < own.effect < own.high
    assert "each run scored its own 60/60/60 units: resampled together" in own.note and own.holds is True


def test_a_run_read_from_elsewhere_resolves_its_relative_paths_and_the_cli_pools_into_a_folder_of_its_own(tmp_path, monkeypatch):

    monkeypatch.chdir(tmp_path)
    summaries = []
    for k in range(3):
        run = seeded_run(tmp_path / f"seed{k}", k)
        relative = claims.RunFiles(
            evaluations={label: {"predictions": str(Path(p["predictions"]).relative_to(tmp_path))} for label, p in run.evaluations.items()},
            final="alignment",
        )
        summary = tmp_path / f"seed{k}" / "summary.json"
        summary.write_text(json.dumps({"claims_inputs": asdict(relative)}))
        summaries.append(str(summary))
        assert relative.under("/elsewhere").evaluations["sft"]["predictions"] == f"/elsewhere/seed{k}/sft.jsonl"
    with pytest.raises(SystemExit):
        claims.main(summaries)  # several runs need --out: never over one run's own claims.md
    assert claims.main([*summaries, "--out", "pooled"]) == 0
    assert (tmp_path / "pooled" / "claims.md").read_text().startswith("# The recipe's claims, measured on 3 runs pooled")


def test_the_cli_pools_claims_json_files_too_and_names_a_file_that_is_neither(tmp_path):
    files = []
    for k in range(2):
        _, written = claims.write(claims.build(seeded_run(tmp_path / f"seed{k}", k)), tmp_path / f"seed{k}")
        files.append(str(written))
    assert claims.main([*files, "--out", str(tmp_path / "pooled")]) == 0
    assert json.loads((tmp_path / "pooled" / "claims.json").read_text())["claims"][0]["note"] == "per run: +0.040, +0.040"
    stray = tmp_path / "stray.json"
    stray.write_text("{}")
    with pytest.raises(ValueError, match=r"stray.json: neither a run's summary.json \(claims_inputs\) nor a claims.json"):
        claims.report_of(stray)


def test_a_runs_warnings_stand_above_its_claims(tmp_path):
    run = run_files(tmp_path, base=share(0), sft=share(60), grpo=share(70), sft_round2=share(90), alignment=share(90))
    summary = tmp_path / "summary.json"
    warning = "base: base did not learn the arithmetic its task needs: it completes 0.055 of 200 validation sums"
    summary.write_text(json.dumps({"claims_inputs": asdict(run), "warnings": [warning]}))
    assert claims.main([str(summary), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "claims.md").read_text()
    assert text.index(f"> **Warning**: {warning}") < text.index("| claim |"), "read before the rows it qualifies"
    claims.write(claims.build(run), tmp_path / "clean")
    assert "Warning" not in (tmp_path / "clean" / "claims.md").read_text()
