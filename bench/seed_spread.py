"""The spread of the recipe's claims over training seeds: the local recipe run whole, once per seed offset.

    python bench/seed_spread.py [--offsets 0 1 2] [--repo .] [--out bench/results/seed_spread.json] [--keep]
    python bench/seed_spread.py --profile r1_shape    # another profile: bench/results/seed_spread_r1_shape.json
    python bench/seed_spread.py --offsets 1 2 --offset0-from bench/results/demo.json
    python bench/seed_spread.py --with-base        # the base's seed too: bench/results/seed_spread_base.json

1. `git clone` the repository into a temporary folder and install it there (`make install`);
2. for each offset k: a copy of params.yaml whose every post-training `seed` (SFT, reward model,
   GRPO, rejection sampling, DPO, distillation, evaluation sampling: every `seed` key outside
   `data`, `validation` and `base`) is shifted by k, run through the whole flow with its own
   reports folder. The task, its held-out split and the pretrained tiny base stay the same (the
   base is trained once and served from the stage cache to the other runs): what varies is
   exactly what a user re-running the recipe with other seeds would vary;
3. each run's reports/claims.json is read back; per claim: the effect at each seed, their mean
   and sample standard deviation, and in how many seeds it holds;
4. the runs' claims pooled (components.claims.pool): each held-out problem's score averaged over
   the seeds, the problems resampled, so an effect smaller than one run's interval can show.
   `--repool` pools a kept clone's runs again.

`--profile` runs another params.yaml profile (its seeds shifted the same way; `make demo PROFILE=`).
`--with-base` shifts the base's seed as well: each run pretrains its own base (~6 min more a run
on 2 cores), while the task and its splits stay put, so the runs still pool per problem. It
measures how much the claims move with the pretrained model, which the post-training seeds
alone do not.

`--offset0-from` takes offset 0 from a committed fresh-clone run of bench/demo_bench.py (its
claims, unshifted seeds) instead of training it again: the spread then costs two recipes, not
three (and it is pooled too when its claims carry their per-problem scores). It is honest only when that run's commit trains what the clone does and ran on the same
CPU kind; the result names the run's commit and CPU flags so a reader can check.

Results: the JSON (bench/demo_table.py puts the spread under the README's claims table, and
r1_shape's pooled claims in its data-shapes table) and a .md beside it. One seed offset costs a
whole recipe without its base (~24 min for r1_shape on an AMD EPYC).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: flows is importable

from components import claims as claims_module  # noqa: E402
from components.modeling import cpu_model, math_settings  # noqa: E402
from components.versioning import git_commit  # noqa: E402
from flows.params import load_params  # noqa: E402

FIXED = ("data", "validation", "base", "profiles", "profile")  # the task and the pretrained model: the same in every run
FIXED_BUT_BASE = tuple(section for section in FIXED if section != "base")  # --with-base: each run pretrains its own base


def seed_paths(node, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every path to a `seed` key in a params mapping."""
    if not isinstance(node, dict):
        return []
    found = [(*prefix, "seed")] if isinstance(node.get("seed"), int) else []
    for key, child in node.items():
        found += seed_paths(child, (*prefix, key))
    return found


def shifted_params(
    document: dict, effective: dict, offset: int, reports_dir: str, profile: str = "local", fixed: tuple[str, ...] = FIXED
) -> tuple[dict, list[str]]:
    """A copy of the params with every seed of `profile` outside the `fixed` sections shifted by `offset`; the paths changed.

    `effective` is the validated params of `profile` (defaults included): a stage whose seed
    params.yaml leaves at its default is shifted too, written into the copy. The shifted seeds and
    the reports folder go into the top level and, for another profile than local, into that
    profile's overrides as well, where they win over anything the profile sets."""
    shifted = json.loads(json.dumps(document))  # a deep copy of plain YAML data
    targets = [shifted]
    if profile != "local":
        if profile not in (shifted.get("profiles") or {}):
            raise ValueError(f"params.yaml has no profile {profile!r} (profiles: {', '.join(shifted.get('profiles') or {}) or 'none'})")
        targets.append(shifted["profiles"][profile])
    changed = []
    for section, node in effective.items():
        if section in fixed:
            continue
        for path in seed_paths(node, (section,)):
            value = effective
            for key in path:
                value = value[key]
            for target in targets:
                parent = target
                for key in path[:-1]:
                    parent = parent.setdefault(key, {})
                parent["seed"] = value + offset
            changed.append(".".join(path))
    for target in targets:
        target.setdefault("paths", {})["reports_dir"] = reports_dir
    return shifted, changed


def spread(runs: dict[int, list[dict]]) -> dict[str, dict]:
    """Per claim: the effect at each offset, mean, sample sd, and how many runs it held in."""
    by_claim: dict[str, dict] = {}
    for offset, claims in sorted(runs.items()):
        for claim in claims:
            row = by_claim.setdefault(claim["claim"], {"seeds": [], "effects": [], "holds": []})
            row["seeds"].append(offset)
            row["effects"].append(claim["effect"])
            row["holds"].append(claim["holds"])
    for row in by_claim.values():
        measured = [e for e in row["effects"] if e is not None]
        row["mean"] = statistics.mean(measured) if measured else None
        row["sd"] = statistics.stdev(measured) if len(measured) > 1 else None
        row["holds_in"] = sum(h is True for h in row["holds"])
        row["runs"] = len(row["holds"])
    return by_claim


def run_report(summary: Path) -> claims_module.ClaimsReport:
    """One run's claims with their per-problem scores: its claims.json, or, where that predates the scores, measured
    again from the files its summary.json names (relative to the clone: CLONE/reports/seedK/summary.json here)."""
    written = json.loads(summary.with_name("claims.json").read_text())
    if all("units_id" in row for row in written["claims"]):  # written since claims.json keeps each unit's scores
        return claims_module.ClaimsReport.from_dict(written)
    return claims_module.build(claims_module.from_summary(json.loads(summary.read_text())).under(summary.parents[2]))


def pooled(summaries: dict, reused: dict | None = None) -> tuple[list[dict], list[int]]:
    """The claims pooled over the runs (components.claims.pool): each held-out problem's score averaged over the
    seeds, bootstrapped over problems; and the offsets pooled. `summaries` maps offset -> the summary.json of a
    run here; a reused offset 0 joins when its committed claims carry their scores. Nothing with fewer than two runs."""
    reports = {int(offset): run_report(Path(path)) for offset, path in summaries.items()}
    if reused and all("units_id" in row for row in reused["report"]["claims"]):
        reports[0] = claims_module.ClaimsReport.from_dict(reused["report"])
    if len(reports) < 2:
        return [], []
    offsets = sorted(reports)
    rows = claims_module.pool([reports[offset] for offset in offsets]).as_dict()["claims"]
    return [without_scores(row) for row in rows], offsets


def without_scores(row: dict) -> dict:
    """A claim row without its per-unit scores and their fingerprint: each run's claims.json keeps those; the result stays readable."""
    return {key: value for key, value in row.items() if key not in ("scores", "units_id")}


def pooled_markdown(rows: list[dict], runs: int) -> list[str]:
    """The pooled claims as claims.md lays a run's out (components.claims.markdown)."""
    report = claims_module.ClaimsReport(claims=[claims_module.Claim(**row) for row in rows], method=claims_module.pooled_method(runs))
    title = f"## Pooled over the {runs} runs: each held-out problem's score averaged over the seeds, problems resampled"
    return ["", title, "", *claims_module.markdown(report).rstrip("\n").splitlines()]


def markdown(result: dict) -> str:
    lines = [
        f"# The claims over {len(result['offsets'])} seed offsets, profile {result.get('profile', 'local')} (commit {result['commit']})",
        "",
        f"Each offset shifts {result.get('varied', 'the post-training seeds')}.",
        "",
        "| claim | effect per seed offset | mean | sd | holds in |",
        "|---|---|---|---|---|",
    ]
    for name, row in result["spread"].items():
        effects = ", ".join("-" if e is None else f"{e:+.3f}" for e in row["effects"])
        mean = "-" if row["mean"] is None else f"{row['mean']:+.3f}"
        sd = "-" if row["sd"] is None else f"{row['sd']:.3f}"
        lines.append(f"| {name} | {effects} | {mean} | {sd} | {row['holds_in']} of {row['runs']} |")
    seconds = ", ".join(f"{s:.0f}" for s in result["pipeline_seconds"].values())
    trains = "each run trains its own base" if "base.seed" in result.get("shifted_seeds", []) else "the first run here trains the base"
    lines += ["", f"Seed offsets {result['offsets']}; pipeline seconds per run: {seconds} ({trains})."]
    if result.get("cpu"):
        lines.append(f"Ran on {result['cpu']} (CPU flags {result['cpu_flags']}).")
    if result.get("offset0_from"):
        lines.append(f"Offset 0 is the committed run {result['offset0_from']}, not run again.")
    lines += levels(result["runs"]) if result.get("runs") else []
    if result.get("pooled"):
        lines += pooled_markdown(result["pooled"], len(result["pooled_offsets"]))
    return "\n".join(lines) + "\n"


LEVELS = (  # (column, the claim's measure starts with, its side): the models' own scores, read from the claims that compare them
    ("base probe", "probe accuracy", "right"),
    ("cold-start SFT", "pass@1: grpo - sft", "right"),
    ("final", "pass@1: final", "left"),
    ("distilled student", "pass@1: distill", "left"),
    ("direct student", "pass@1: distill", "right"),
)


def levels(runs: dict) -> list[str]:
    """What each run's models score on the held-out set (the base: its probe), so a reader sees how far the runs' models
    differ, not only their comparisons."""
    lines = ["", "## What each run's models score (held-out pass@1; the base: probe accuracy)", ""]
    lines += ["| seed offset | " + " | ".join(column for column, _, _ in LEVELS) + " |", "|---" * (len(LEVELS) + 1) + "|"]
    for offset, claims in runs.items():
        cells = []
        for _, measure, side in LEVELS:
            row = next((claim for claim in claims if claim.get("measure", "").startswith(measure)), None)
            cells.append("-" if row is None or row.get(side) is None else f"{row[side]:.3f}")
        lines.append(f"| {offset} | " + " | ".join(cells) + " |")
    return lines


def reused_run(demo_json: Path, offsets: list[int]) -> dict:
    """Offset 0 as a bench/demo_bench.py result recorded it: its claims, seconds and where it came from."""
    if 0 in offsets:
        sys.exit("--offset0-from stands for offset 0: leave 0 out of --offsets")
    demo = json.loads(demo_json.read_text())
    try:
        return {
            "claims": demo["claims"]["claims"],
            "report": demo["claims"],  # with per-problem scores (demo runs since claims.json kept them): pooled too
            "seconds": demo["pipeline_seconds"],  # the flow's wall; a run here is timed as its whole `make demo`
            "source": f"{demo_json.name} (commit {demo['commit']}, CPU flags {demo['math']['cpu_flags']})",
        }
    except KeyError as missing:
        sys.exit(f"--offset0-from {demo_json}: not a bench/demo_bench.py result (it has no {missing})")


def run(command: list[str], cwd: Path, log: Path) -> None:
    with log.open("w") as handle:
        done = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}); see {log}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offsets", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repo", default=str(REPO))
    parser.add_argument("--profile", default="local", help="the params.yaml profile each run runs (make demo PROFILE=)")
    parser.add_argument("--out", help="default: bench/results/seed_spread.json (seed_spread_PROFILE.json for another profile)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    parser.add_argument("--offset0-from", type=Path, help="a demo_bench.py result whose claims stand for offset 0")
    parser.add_argument("--with-base", action="store_true", help="shift the base's seed too: each run pretrains its own base")
    parser.add_argument("--repool", type=Path, help="a result of a --keep run whose clone is still there: pool its runs again")
    args = parser.parse_args(argv)
    if args.repool:
        return repool(args.repool)
    reused = reused_run(args.offset0_from, args.offsets) if args.offset0_from else None
    suffix = ("" if args.profile == "local" else f"_{args.profile}") + ("_base" if args.with_base else "")
    out = Path(args.out or REPO / "bench" / "results" / f"seed_spread{suffix}.json")

    workdir = Path(tempfile.mkdtemp(prefix="seed-spread-"))
    clone = workdir / "repo"
    subprocess.run(["git", "clone", "-q", str(Path(args.repo).resolve()), str(clone)], check=True)
    print(f"[seed-spread] clone in {clone}; installing", flush=True)
    run(["make", "install"], clone, workdir / "install.log")
    document = yaml.safe_load((clone / "params.yaml").read_text())
    effective = load_params(clone / "params.yaml", args.profile).model_dump(mode="json")
    commit = git_commit(clone, short=True)
    claims, seconds, changed = {}, {}, []
    if reused:
        claims[0], seconds[0] = [without_scores(row) for row in reused["claims"]], reused["seconds"]
    for offset in args.offsets:
        reports = f"reports/seed{offset}"
        params, changed = shifted_params(document, effective, offset, reports, args.profile, FIXED_BUT_BASE if args.with_base else FIXED)
        params_file = clone / f"params-seed{offset}.yaml"
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        print(f"[seed-spread] offset {offset}: {len(changed)} seeds shifted; running the {args.profile} recipe", flush=True)
        started = time.perf_counter()
        run(["make", "demo", f"PARAMS={params_file.name}", f"PROFILE={args.profile}"], clone, workdir / f"seed{offset}.log")
        seconds[offset] = time.perf_counter() - started
        claims[offset] = [without_scores(row) for row in json.loads((clone / reports / "claims.json").read_text())["claims"]]
        print(f"[seed-spread] offset {offset}: {seconds[offset]:.0f} s", flush=True)
    result = {
        "commit": commit,
        "profile": args.profile,
        "varied": "the post-training seeds and the base's" if args.with_base else "the post-training seeds",
        "cpu": cpu_model(),
        "cpu_flags": math_settings()["cpu_flags"],  # the runs ran here: a reused offset 0 names its own in offset0_from
        "offsets": sorted(claims),
        "offset0_from": reused["source"] if reused else None,
        "shifted_seeds": changed,
        "pipeline_seconds": seconds,
        "runs": claims,
        "summaries": {offset: str(clone / f"reports/seed{offset}/summary.json") for offset in args.offsets},  # with --keep
        "spread": spread(claims),
    }
    result["pooled"], result["pooled_offsets"] = pooled(result["summaries"], reused)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def repool(result_file: Path) -> int:
    """Pool the runs of a kept clone again (a result written before pooling existed, or after components.claims changed)."""
    result = json.loads(result_file.read_text())
    result["pooled"], result["pooled_offsets"] = pooled(result.get("summaries") or {})  # the runs here only
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    result_file.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
