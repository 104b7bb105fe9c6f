"""The README's local-profile tables, from the committed fresh-clone run in bench/results/demo.json.

    python bench/demo_table.py            # print them
    python bench/demo_table.py --write    # replace the blocks between the markers in README.md

Three blocks: every stage's held-out metrics and seconds, the recipe's claims (the flow's own
reports/claims.json of that run, with their 95% intervals; under them each claim over the runs of
bench/seed_spread.py --with-base, per seed and pooled), and each claim beside the same claim
in R1's data shape (the `r1_shape` profile's run, bench/results/demo_r1_shape.json). Nothing in them
is typed by hand: `python bench/demo_bench.py [--profile r1_shape]` measures a fresh clone's
`make demo` and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: components is importable

from components.claims import Claim, ClaimsReport, markdown  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "demo.json"
SEED_SPREAD = REPO / "bench" / "results" / "seed_spread_base.json"  # every seed but the task's: the base's too
R1_SHAPE = REPO / "bench" / "results" / "demo_r1_shape.json"
R1_SHAPE_SPREAD = REPO / "bench" / "results" / "seed_spread_r1_shape.json"
STAGES = "stages"
CLAIMS = "claims"
SHAPES = "data shapes"
LABELS = {
    "sft": "sft (cold start)",
    "sft_control": "sft_control (round 2's control: original data)",
    "sft_round2": "sft_round2 (rejection-sampled data)",
    "alignment": "alignment (DPO, final)",
    "distill": "distill (a student with fewer layers)",
    "student_sft": "student_sft (same student, SFT only)",
}
COLUMNS = (("pass@1", "pass@1"), ("maj@8", "maj@8"), ("pass@8", "pass@8"), ("bon@8", "bon@8"), ("probe_accuracy", "probe"))


def markers(block: str) -> tuple[str, str]:
    return f"<!-- BEGIN {block} table: python bench/demo_table.py --write -->", f"<!-- END {block} table -->"


def stages_table(results: dict) -> str:
    rows = ["| stage | " + " | ".join(title for _, title in COLUMNS) + " | length | seconds |", "|---" * (len(COLUMNS) + 3) + "|"]
    for name, metrics in results["held_out"].items():
        cells = [f"{metrics[key]:.3f}" if key in metrics else "-" for key, _ in COLUMNS]
        rows.append(f"| {LABELS.get(name, name)} | {' | '.join(cells)} | {metrics.get('mean_length', 0):.1f} | {metrics['seconds']:.0f} |")
    rows.append("")
    rows.append(
        f"Whole pipeline: {results['pipeline_seconds']:.0f} s ({results['demo_seconds']:.0f} s for `make demo` with install); "
        f"peak memory {results['peak_rss_gib']:.1f} GiB; the no-op re-run {results['noop_seconds']:.0f} s "
        f"(all cached: {'yes' if results['noop_all_cached'] else 'no'}). Machine: {results['machine']['cpus']} CPUs"
        f"{' (' + results['machine']['cpu'] + ')' if 'cpu' in results['machine'] else ''}, {results['machine']['platform']}; torch threads {results.get('math', {}).get('torch_threads', '?')}. "
        f"Commit {results.get('commit', '?')}."
    )
    if "verifier" in results.get("stage_seconds", {}):
        rows[-1] += (
            f" bon@8 of the final model and the students is ranked by the verifier (the reward model trained again from the final"
            f" policy, {results['stage_seconds']['verifier']:.0f} s), of the others by the reward model cut from the SFT model."
        )
    return "\n".join(rows)


def claims_table(results: dict) -> str:
    """The committed run's claims; under them, each claim over the runs of bench/seed_spread.py, pooled where it pooled them."""
    report = results["claims"]
    claims = [Claim(**row) for row in report["claims"]]
    seeds = json.loads(SEED_SPREAD.read_text()) if SEED_SPREAD.is_file() else {}
    if not seeds:
        return markdown(ClaimsReport(claims=claims, method=report["method"])).rstrip("\n")
    if not seeds.get("pooled"):  # a spread whose runs kept no per-problem scores: each claim's effects, listed
        table = markdown(ClaimsReport(claims=claims, seed_spread=seeds["spread"], method=report["method"])).rstrip("\n")
        return table + "\n\n" + spread_footnote(results, seeds)
    table = markdown(ClaimsReport(claims=claims, method=report["method"])).rstrip("\n")
    return table + "\n\n" + pooled_table(seeds) + "\n\n" + spread_footnote(results, seeds)


def spread_footnote(results: dict, seeds: dict) -> str:
    host = f" on {seeds['cpu']} ({seeds['cpu_flags']})" if seeds.get("cpu") else ""
    varied = seeds.get("varied", "the post-training seeds")
    note = (
        f"The spread: `python bench/seed_spread.py{' --with-base' if 'base.seed' in seeds.get('shifted_seeds', []) else ''}` at commit"
        f" {seeds['commit']}{host},"
        f" whole local runs, each offset shifting {varied} (bench/results/{SEED_SPREAD.stem}.md)."
    )
    if seeds.get("offset0_from"):
        note += f" Offset 0 was the demo run {seeds['offset0_from']}."
    if f"commit {results['commit']}" not in (seeds.get("offset0_from") or ""):
        note += (
            f" The spread is not the run above's commit ({results['commit']}): it was measured on commit"
            f" {seeds['commit']}'s recipe (`git log` between the two shows what differs)."
        )
    return note


def pooled_table(seeds: dict) -> str:
    """Each claim over the spread's runs: its effect in each, how often one run held it, and the runs pooled per problem
    (bench/seed_spread.py, components.claims.pool)."""
    runs = len(seeds["pooled_offsets"])
    rows = [f"| claim | effect at seed offsets {seeds['offsets']} | one run holds it | {runs} seeds pooled: effect [95%] |"]
    rows.append("|---|---|---|---|")
    for row in seeds["pooled"]:
        spread_row = seeds["spread"].get(row["claim"], {"effects": [], "holds_in": 0, "runs": 0})
        effects = ", ".join("-" if effect is None else f"{effect:+.3f}" for effect in spread_row["effects"])
        rows.append(f"| {row['claim']} | {effects} | {spread_row['holds_in']} of {spread_row['runs']} | {_effect(row)} |")
    rows += [
        "",
        f"Pooled: the runs at seed offsets {seeds['pooled_offsets']}, each held-out problem's score averaged over them and the"
        " problems resampled (`components.claims.pool`), so an effect smaller than one run's interval can show; a problem stays"
        f" one unit, so the interval narrows only as far as the seeds' noise averages out (bench/results/{SEED_SPREAD.stem}.md).",
    ]
    return "\n".join(rows)


def pooled_cell(pooled: dict | None, spread_row: dict | None) -> str:
    """A pooled claim's effect and verdict, with how many of the runs held it alone."""
    alone = f" (alone: holds in {spread_row['holds_in']} of {spread_row['runs']})" if spread_row else ""
    return _effect(pooled) + alone


def _effect(row: dict | None) -> str:
    if row is None or row.get("effect") is None:
        return "not measured"
    verdict = "**holds**" if row["holds"] else "does not hold"
    return f"{row['effect']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] {verdict}"


def data_shape(profile: str) -> str:
    """The profile's references and RL prompts, as params.yaml sets them (a profile's `data` overrides the top level's)."""
    document = yaml.safe_load((REPO / "params.yaml").read_text())
    data = document["data"] | document.get("profiles", {}).get(profile, {}).get("data", {})
    return f"{profile}: {data['n_sft']} reference solutions, {data['n_rl']} RL prompts"


def shapes_table(results: dict, other: dict | None = None, seeds: dict | None = None) -> str:
    """Each claim of the run above beside the same claim in the r1_shape profile's run: the same held-out problems.

    Where bench/seed_spread.py --profile r1_shape has run (`seeds`), a third column pools its runs per problem."""
    other = other if other is not None else json.loads(R1_SHAPE.read_text())
    if seeds is None and R1_SHAPE_SPREAD.is_file():
        seeds = json.loads(R1_SHAPE_SPREAD.read_text())
    pooled = {row["claim"]: row for row in (seeds or {}).get("pooled", [])}
    theirs = {row["claim"]: row for row in other["claims"]["claims"]}
    head = f"| claim | {data_shape('local')} | {data_shape('r1_shape')} |"
    if pooled:
        head += f" r1_shape, {len(seeds['pooled_offsets'])} seeds pooled |"
    rows = [head, "|---" * (head.count("|") - 1) + "|"]
    for row in results["claims"]["claims"]:
        line = f"| {row['claim']} | {_effect(row)} | {_effect(theirs.get(row['claim']))} |"
        if pooled:
            line += f" {pooled_cell(pooled.get(row['claim']), seeds['spread'].get(row['claim']))} |"
        rows.append(line)
    final = {name: run["held_out"][run["final_stage"]]["pass@1"] for name, run in (("local", results), ("r1_shape", other))}
    how = "a fresh clone's `make demo PROFILE=r1_shape`" if "demo_seconds" in other else "the flow run in a clone (not a fresh install)"
    rows += [
        "",
        f"Final model's held-out pass@1: local {final['local']:.3f}, r1_shape {final['r1_shape']:.3f}. The local run is the one"
        f" above (commit {results['commit']}, {results['machine'].get('cpu', '?')}); the r1_shape run: {how}, commit"
        f" {other['commit']}, {other['machine'].get('cpu', '?')}, pipeline {other['pipeline_seconds']:.0f} s"
        " (bench/results/demo_r1_shape.json, claims_r1_shape.md). Another CPU kind trains other weights from the same"
        " seeds (the base included), so the columns differ by more than the data.",
    ]
    rows[-1] += pooled_note(seeds) if pooled else " One run each: no seed spread of r1_shape yet."
    return "\n".join(rows)


def pooled_note(seeds: dict) -> str:
    seconds = ", ".join(f"{value:.0f}" for value in seeds["pipeline_seconds"].values())
    final = next((row["left"] for row in seeds["pooled"] if row["measure"].startswith("pass@1: final")), None)
    finals = f" Their final models solve {final:.3f} of the held-out set on average." if final is not None else ""
    return (
        f" The pooled column: `python bench/seed_spread.py --profile r1_shape` at commit {seeds['commit']} on {seeds['cpu']},"
        f" fresh-clone runs at seed offsets {seeds['offsets']} ({seconds} s each, the first training the base), each held-out"
        f" problem's score averaged over the runs and the problems resampled (bench/results/seed_spread_r1_shape.md).{finals}"
    )


def rendered_readme(readme: str, results: dict) -> str:
    blocks = [(STAGES, stages_table), (CLAIMS, claims_table)] + ([(SHAPES, shapes_table)] if R1_SHAPE.is_file() else [])
    for block, render in blocks:
        begin, end = markers(block)
        start, stop = readme.index(begin) + len(begin), readme.index(end)
        readme = readme[:start] + "\n" + render(results) + "\n" + readme[stop:]
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite README.md's blocks")
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text())
    if not args.write:
        print(stages_table(results) + "\n\n" + claims_table(results) + ("\n\n" + shapes_table(results) if R1_SHAPE.is_file() else ""))
        return 0
    path = REPO / "README.md"
    try:
        path.write_text(rendered_readme(path.read_text(), results))
    except ValueError:
        print(f"error: {path} lacks a block between the markers {markers(STAGES)} or {markers(CLAIMS)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
