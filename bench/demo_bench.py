"""Benchmark the walking skeleton's targets from a fresh clone, side by side in one run.

    python bench/demo_bench.py [--repo .] [--out bench/results/demo.json] [--keep]

1. `git clone` the repository into a temporary folder (nothing installed, no caches of ours);
2. `make demo` there: install + the whole pipeline; wall time and the peak RSS of the largest
   process (the pipeline), plus the pipeline's own wall time from reports/summary.json;
3. `make demo` again: the no-op re-run, served from cache;
4. the held-out pass@1 of the base model and of the SFT model, from the summary.

Results are written as JSON; targets: demo <= 600 s, pipeline <= 360 s, peak <= 4 GiB,
no-op <= 30 s, SFT pass@1 > base pass@1. Timings on a shared 2-core machine are noisy.
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

TARGETS = {"demo_seconds": 600, "pipeline_seconds": 360, "peak_rss_gib": 4.0, "noop_seconds": 30}


def timed(command: list[str], cwd: Path, log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}); see {log}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".")
    parser.add_argument("--out", default="bench/results/demo.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="demo-bench-"))
    clone = workdir / "repo"
    subprocess.run(["git", "clone", "-q", str(Path(args.repo).resolve()), str(clone)], check=True)
    demo_seconds = timed(["make", "demo"], clone, workdir / "demo.log")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads((clone / "reports" / "summary.json").read_text())
    noop_seconds = timed(["make", "demo"], clone, workdir / "noop.log")
    noop = json.loads((clone / "reports" / "summary.json").read_text())

    stages = summary["stages"]
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "demo_seconds": round(demo_seconds, 1),
        "pipeline_seconds": round(summary["pipeline_wall_seconds"], 1),
        "stage_seconds": {name: round(row["wall_seconds"], 1) for name, row in stages.items()},
        "peak_rss_gib": round(peak_kib / 2**20, 2),
        "noop_seconds": round(noop_seconds, 1),
        "noop_pipeline_seconds": round(noop["pipeline_wall_seconds"], 1),
        "noop_all_cached": all(row["cached"] for name, row in noop["stages"].items() if name != "data"),
        "noop_registered_new": noop["model"]["newly_registered"],
        "base_pass@1": stages["base"]["metrics"]["eval.pass@1"],
        "sft_pass@1": stages["sft"]["metrics"]["eval.pass@1"],
        "sft_maj@8": stages["sft"]["metrics"].get("eval.maj@8"),
        "sft_pass@8": stages["sft"]["metrics"].get("eval.pass@8"),
    }
    results["targets"] = {
        "demo <= 600 s": results["demo_seconds"] <= TARGETS["demo_seconds"],
        "pipeline <= 360 s": results["pipeline_seconds"] <= TARGETS["pipeline_seconds"],
        "peak <= 4 GiB": results["peak_rss_gib"] <= TARGETS["peak_rss_gib"],
        "no-op re-run <= 30 s": results["noop_seconds"] <= TARGETS["noop_seconds"],
        "SFT lifts pass@1 over base": results["sft_pass@1"] > results["base_pass@1"],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
