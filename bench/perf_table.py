"""The README's performance table, from the benchmark results committed in bench/results/.

    python bench/perf_table.py            # print it
    python bench/perf_table.py --write    # replace the block between the markers in README.md

Ratios, not absolute claims: every figure is one run of bench/overhead.py, bench/mfu.py and
bench/generation.py on the machine each result file names.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
BEGIN, END = "<!-- BEGIN perf table: python bench/perf_table.py --write -->", "<!-- END perf table -->"


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def table() -> str:
    overhead, mfu, generation = _load("overhead"), _load("mfu"), _load("generation")
    rows = ["| what | measured | goal | met |", "|---|---|---|---|"]
    for stage, row in overhead["stages"].items():
        ratio = row["throughput_ratio"]
        rows.append(f"| {stage} training throughput, pipeline / plain TRL | {ratio:.3f} | >= 0.97 | {'yes' if ratio >= 0.97 else 'no'} |")
    ratio = overhead["orchestration_overhead"]
    rows.append(
        f"| orchestration: flow wall / sum of stage walls (shortened recipe, {overhead['flow_seconds']:.0f} s) | {ratio:.3f} | <= 1.03 | "
        f"{'yes' if ratio <= 1.03 else 'no'} |"
    )
    for stage, goal in (("base_pretraining", 0.5), ("sft", None)):
        row = mfu["stages"][stage]
        met = "-" if goal is None else ("yes" if row["mfu_vs_fp32_peak"] >= goal else "no")
        rows.append(
            f"| {stage} MFU (vs a torch.mm fp32 peak, same run) | {row['mfu_vs_fp32_peak']:.1%} | {'>= 50%' if goal else '-'} | {met} |"
        )
    speedup = generation["speedup"]
    rows.append(
        f"| generation, batch {generation['batched']['batch_size']} / one prompt at a time (same greedy answers: "
        f"{generation['same_answers']:.0%}) | {speedup:.1f}x | >= 5x | {'yes' if speedup >= 5 else 'no'} |"
    )
    peaks = mfu["peak_flops"]
    machine = overhead.get("machine", {})
    rows.append(
        f"\nMachine: {machine.get('cores', '?')} cores ({machine.get('cpu', '?')}), torch {machine.get('torch', '?')}; torch threads: "
        f"{machine.get('torch_threads', '?')} for the overhead run, {mfu['threads']} for MFU, {generation['threads']} for generation; the matmul peak there: fp32 {peaks['float32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bfloat16'] / 1e9:.0f} "
        f"GFLOP/s. Commit {machine.get('commit', '?')}."
    )
    return "\n".join(rows)


def rendered_readme(readme: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + table() + "\n" + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite README.md's block")
    args = parser.parse_args(argv)
    if not args.write:
        print(table())
        return 0
    path = REPO / "README.md"
    try:
        path.write_text(rendered_readme(path.read_text()))
    except ValueError:
        print(f"error: {path} has no block between {BEGIN!r} and {END!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
