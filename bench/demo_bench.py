"""Benchmark the whole R1 recipe from a fresh clone: its time and the paper's table in miniature.

    python bench/demo_bench.py [--repo .] [--out bench/results/demo.json] [--keep] [--profile local]

1. `git clone` the repository into a temporary folder (nothing installed, no caches of ours);
2. `make demo` there: install + the whole pipeline; wall time and the peak RSS of the largest
   process (the pipeline), plus the pipeline's own wall time from reports/summary.json;
3. `make demo` again: the no-op re-run, served from cache;
4. every stage's held-out metrics, from the summary, and the recipe's claims as the flow
   measured them (the clone's reports/claims.json, with 95% intervals; also copied to
   bench/results/claims.md; for `--out .../demo_X.json`, claims_X.md beside it).

Results are written as JSON (the README's tables come from it: bench/demo_table.py); time
targets: the recipe (pipeline) <= 20 min, peak <= 4 GiB, no-op re-run <= 60 s. Timings on a
shared 2-core machine are noisy; the metrics are deterministic for the seeds of params.yaml at
its fixed thread count (execution.torch_threads; the summary's lineage records it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: components is importable

from components.modeling import cpu_model  # noqa: E402

TARGETS = {"pipeline_seconds": 1200, "peak_rss_gib": 4.0, "noop_seconds": 60}
EVALUATED = ("base", "sft", "grpo", "sft_control", "sft_round2", "alignment", "distill", "student_sft")


def timed(command: list[str], cwd: Path, log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}); see {log}")
    return elapsed


def held_out(row: dict) -> dict:
    """The summary columns the issue asks for: pass@1, maj@k, length, reward, seconds."""
    metrics = row["metrics"]
    keep = ("pass@1", "maj@8", "pass@8", "bon@8", "sample_accuracy", "mean_length", "mean_reward", "probe_accuracy", "forgetting")
    return {k: round(metrics[f"eval.{k}"], 3) for k in keep if f"eval.{k}" in metrics} | {"seconds": round(row["wall_seconds"], 1)}


def targets(results: dict) -> dict[str, bool]:
    return {
        "recipe (pipeline) <= 20 min": results["pipeline_seconds"] <= TARGETS["pipeline_seconds"],
        "peak <= 4 GiB": results["peak_rss_gib"] <= TARGETS["peak_rss_gib"],
        "no-op re-run <= 60 s": results["noop_seconds"] <= TARGETS["noop_seconds"],
    }


def claims_name(out: Path) -> str:
    """claims.md beside demo.json, claims_r1_shape.md beside demo_r1_shape.json: another run's claims do not overwrite these."""
    return out.stem.replace("demo", "claims", 1) + ".md"


def run_results(clone: Path) -> dict:
    """What one pipeline run in `clone` measured, from its reports/: stage seconds, held-out metrics, claims, lineage."""
    summary = json.loads((clone / "reports" / "summary.json").read_text())
    stages = summary["stages"]
    return {
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(), "platform": platform.platform()},
        "profile": summary["lineage"].get("profile", "local"),
        "pipeline_seconds": round(summary["pipeline_wall_seconds"], 1),
        "stage_seconds": {name: round(row["wall_seconds"], 1) for name, row in stages.items()},
        "final_stage": summary["model"]["stage"],
        "held_out": {name: held_out(stages[name]) for name in EVALUATED if name in stages},
        "commit": summary["lineage"].get("git_commit", "?")[:7],
        "math": {k.removeprefix("math."): v for k, v in summary["lineage"].items() if k.startswith("math.")},
        "claims": json.loads((clone / "reports" / "claims.json").read_text()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".")
    parser.add_argument("--out", default="bench/results/demo.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    parser.add_argument("--profile", default="local", help="the params.yaml profile `make demo` runs (PROFILE=)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="demo-bench-"))
    clone = workdir / "repo"
    subprocess.run(["git", "clone", "-q", str(Path(args.repo).resolve()), str(clone)], check=True)
    demo = ["make", "demo", f"PROFILE={args.profile}"]
    demo_seconds = timed(demo, clone, workdir / "demo.log")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    results = run_results(clone)
    noop_seconds = timed(demo, clone, workdir / "noop.log")
    noop = json.loads((clone / "reports" / "summary.json").read_text())
    results |= {
        "demo_seconds": round(demo_seconds, 1),
        "peak_rss_gib": round(peak_kib / 2**20, 2),
        "noop_seconds": round(noop_seconds, 1),
        "noop_pipeline_seconds": round(noop["pipeline_wall_seconds"], 1),
        "noop_all_cached": all(row["cached"] for name, row in noop["stages"].items() if name != "data"),
        "noop_registered_new": noop["model"]["newly_registered"],
    }
    results["targets"] = targets(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clone / "reports" / "claims.md", out.parent / claims_name(out))
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
