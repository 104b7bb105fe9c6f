"""The README's SmolLM2 table, from the artifacts of one `make smol` run.

    python bench/smol_table.py [--artifacts artifacts] [--summary reports/summary.json] [--peak-kb FILE] [--out bench/results/smol.json]
    python bench/smol_table.py --readme     # README.md's table from the committed bench/results/smol.json

Reads each stage's `result.json` and each evaluation's `metrics.json` / `predictions.jsonl` under
the run's artifacts folder (the newest output of each label), so a run that was stopped part-way
still gives the rows it reached. Adds paired-bootstrap 95% intervals of the pass@1 differences
the issue's goals name (recipe vs shipped model, GRPO vs SFT), over the same held-out problems, and
of the forgetting probe (final vs shipped, over the same probe questions: what the recipe cost),
each stage's memory peak (its own: components.accounting resets the high-water mark per stage),
and, once the run finished, its wall time and the gate's decision from the summary.
Prints the markdown table and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from components.gate import resample_means

ROWS = ("base", "sft", "grpo", "sft_round2", "alignment", "distill", "student_sft")
UNEVALUATED = ("reward_model", "rejection_sampling")  # stages whose output is not a policy: time and memory only
TRAINED_BY = {"student_sft": "distill"}  # the SFT-only student is trained inside the distill stage
METRICS = ("pass@1", "free_text_pass@1", "maj@2", "pass@2", "bon@2", "format_rate", "mean_length", "probe_accuracy")
LABELS = {  # the README's names of the table's rows
    "base": "SmolLM2-135M-Instruct as shipped",
    "sft": "sft (cold start)",
    "grpo": "grpo",
    "sft_round2": "sft_round2 (rejection-sampled)",
    "alignment": "alignment (DPO; final)",
    "distill": "distill (smaller student, on-policy)",
    "student_sft": "student_sft (same student, SFT only)",
}
README_BEGIN, README_END = "<!-- BEGIN smol table: python bench/smol_table.py --readme -->", "<!-- END smol table -->"
PAIRS = {
    "final_vs_shipped": ("alignment", "base"),
    "sft_vs_shipped": ("sft", "base"),
    "grpo_vs_sft": ("grpo", "sft"),
    "round2_vs_grpo": ("sft_round2", "grpo"),
}


def newest(folder: Path, name: str) -> Path | None:
    found = sorted(folder.glob(f"*/{name}"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def row(artifacts: Path, label: str) -> dict | None:
    metrics_file = newest(artifacts / f"evaluate-{label}", "metrics.json")
    if metrics_file is None:
        return None
    trained = newest(artifacts / TRAINED_BY.get(label, label), "result.json")
    evaluated = json.loads((metrics_file.parent / "result.json").read_text())
    training = json.loads(trained.read_text()) if trained and label not in TRAINED_BY else {}
    metrics = json.loads(metrics_file.read_text())
    correct = [r["greedy_correct"] for r in map(json.loads, (metrics_file.parent / "predictions.jsonl").open())]
    probes = metrics_file.parent / "probe_predictions.jsonl"
    probe_correct = [r["correct"] for r in map(json.loads, probes.open())] if probes.exists() else []
    return {
        **{name: metrics.get(name) for name in METRICS},
        "train_seconds": None if label in TRAINED_BY else training.get("wall_seconds", 0.0),  # None: trained inside another stage
        "eval_seconds": evaluated["wall_seconds"],
        "train_peak_gib": peak_gib(training),
        "eval_peak_gib": peak_gib(evaluated),
        "greedy_correct": correct,
        "probe_correct": probe_correct,
    }


def peak_gib(result: dict) -> float | None:
    return result.get("info", {}).get("usage", {}).get("peak_rss_gib")


def unevaluated(artifacts: Path, stage: str) -> dict | None:
    found = newest(artifacts / stage, "result.json")
    if found is None:
        return None
    result = json.loads(found.read_text())
    return {"seconds": result["wall_seconds"], "peak_gib": peak_gib(result)}


def machine() -> str:
    """The CPU's model, cores and the flags that pick oneDNN's kernels (bf16 runs ~2x faster with AMX)."""
    from components.modeling import cpuinfo, math_settings

    return f"{cpuinfo('model name') or platform.machine()}, {os.cpu_count()} cores, {math_settings()['cpu_flags']}"


def run_facts(summary_file: Path) -> dict:
    """The finished run's wall time and the gate's decision (empty before the run ends)."""
    if not summary_file.exists():
        return {}
    summary = json.loads(summary_file.read_text())
    alias = summary.get("alias") or {}
    return {
        "pipeline_wall_seconds": summary.get("pipeline_wall_seconds"),
        "promoted": alias.get("promoted"),
        "gate_reason": alias.get("reason"),
    }


def paired_interval(a: list[bool], b: list[bool], seed: int = 0) -> dict:
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    low, high = np.quantile(resample_means(diffs, 10_000, np.random.default_rng(seed)), [0.025, 0.975])
    return {"difference": float(diffs.mean()), "ci95": [float(low), float(high)], "problems": len(diffs)}


def markdown(rows: dict[str, dict]) -> str:
    lines = [
        "| stage | pass@1 | free-text pass@1 | maj@2 | pass@2 | bon@2 | format | probe | length | train s | eval s | peak GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        cells = [f"{r[m]:.3f}" if r.get(m) is not None else "-" for m in (*METRICS[:6], "probe_accuracy")]
        peaks = [p for p in (r.get("train_peak_gib"), r.get("eval_peak_gib")) if p is not None]
        trained = "-" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}"
        peak = f"{max(peaks):.1f}" if peaks else "-"
        lines.append(f"| {label} | {' | '.join(cells)} | {r['mean_length']:.0f} | {trained} | {r['eval_seconds']:.0f} | {peak} |")
    return "\n".join(lines)


def readme_with_table(readme: str, result: dict) -> str:
    """README.md with its SmolLM2 block replaced by the table of `result` (a smol.json)."""
    table = markdown({LABELS[label]: row for label, row in result["stages"].items()})
    start, stop = readme.index(README_BEGIN) + len(README_BEGIN), readme.index(README_END)
    return readme[:start] + "\n" + table + "\n" + readme[stop:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--summary", default="reports/summary.json", help="the run's summary (wall time, the gate)")
    parser.add_argument("--peak-kb", help="a file holding the run's peak RSS in KiB (e.g. from /usr/bin/time -v)")
    parser.add_argument("--out", default="bench/results/smol.json")
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's table from --out (nothing is measured)")
    args = parser.parse_args()
    if args.readme:
        readme = Path(__file__).resolve().parent.parent / "README.md"
        readme.write_text(readme_with_table(readme.read_text(), json.loads(Path(args.out).read_text())))
        return
    artifacts = Path(args.artifacts)
    rows = {label: r for label in ROWS if (r := row(artifacts, label)) is not None}
    intervals = {
        name: paired_interval(rows[a]["greedy_correct"], rows[b]["greedy_correct"])
        for name, (a, b) in PAIRS.items()
        if a in rows and b in rows
    }
    final, shipped = (rows.get(label, {}).get("probe_correct") for label in PAIRS["final_vs_shipped"])
    probe = {"final_vs_shipped": paired_interval(final, shipped)} if final and shipped else {}
    peak = int(Path(args.peak_kb).read_text()) / 2**20 if args.peak_kb else None
    result = {
        "machine": machine(),
        "stages": {label: {k: v for k, v in r.items() if k not in ("greedy_correct", "probe_correct")} for label, r in rows.items()},
        "paired_pass_at_1": intervals,
        "paired_probe": probe,
        "unevaluated_stages": {stage: r for stage in UNEVALUATED if (r := unevaluated(artifacts, stage)) is not None},
        "peak_rss_gib": peak,
        "complete": list(rows) == list(ROWS),
    } | run_facts(Path(args.summary))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(rows))
    for name, interval in intervals.items():
        low, high = interval["ci95"]
        print(f"{name}: {interval['difference']:+.3f} pass@1, 95% CI [{low:+.3f}, {high:+.3f}] over {interval['problems']} problems")
    for name, interval in probe.items():
        low, high = interval["ci95"]
        print(f"probe {name}: {interval['difference']:+.3f}, 95% CI [{low:+.3f}, {high:+.3f}] over {interval['problems']} probes")
    for stage, r in result["unevaluated_stages"].items():
        print(f"{stage}: {r['seconds']:.0f} s, peak {r['peak_gib'] or 0:.1f} GiB")
    if peak:
        print(f"peak RSS {peak:.2f} GiB")
    if result.get("pipeline_wall_seconds"):
        print(f"whole run {result['pipeline_wall_seconds']:.0f} s; promoted: {result['promoted']} ({result['gate_reason']})")


if __name__ == "__main__":
    main()
