"""The README's performance table, from the benchmark results committed in bench/results/.

    python bench/perf_table.py            # print it
    python bench/perf_table.py --write    # replace the block between the markers in README.md

Ratios, not absolute claims: every CPU figure is one run of bench/overhead.py, bench/mfu.py and
bench/generation.py on the machine each result file names. The GPU table comes from one run of
bench/gpu_run.sh (bench/results/gpu_throughput.json) and one of bench/gpu_sft_sweep.sh
(bench/results/gpu_sft_sweep/*/gpu_throughput.json) on a lent device machine; the SmolLM2 GPU table from the
runs of bench/gpu_smol.sh (bench/results/gpu_smol/**/gpu_smol.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
BEGIN, END = "<!-- BEGIN perf table: python bench/perf_table.py --write -->", "<!-- END perf table -->"
GPU_BEGIN, GPU_END = "<!-- BEGIN gpu table: python bench/perf_table.py --write -->", "<!-- END gpu table -->"
SMOL_BEGIN, SMOL_END = "<!-- BEGIN smol gpu table: python bench/perf_table.py --write -->", "<!-- END smol gpu table -->"


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
    demo = _load("demo")
    rows += [whole_recipe_row(demo), recipe_time_row(demo)]
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
    if "sampling_sweep" in generation:
        rows.append(sampling_sweep_row(generation["sampling_sweep"]))
    peaks = mfu["peak_flops"]
    machine = overhead.get("machine", {})
    rows.append(
        f"\nMachine: {machine.get('cores', '?')} cores ({machine.get('cpu', '?')}), torch {machine.get('torch', '?')}; torch threads: "
        f"{machine.get('torch_threads', '?')} for the overhead run, {mfu['threads']} for MFU, {generation['threads']} for generation; the matmul peak there: fp32 {peaks['float32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bfloat16'] / 1e9:.0f} "
        f"GFLOP/s. Commit {machine.get('commit', '?')}{_own_commit(mfu, machine, 'MFU')}"
        f"{_own_commit(generation.get('sampling_sweep', {}), machine, 'generation')}."
    )
    return "\n".join(rows)


def sampling_sweep_row(sweep: dict) -> str:
    """The evaluation's sampling at each batch size, as tokens/s relative to the sweep's first run (the stages' batch);
    a batch size timed twice shows the run-to-run noise the other ratios must clear."""
    runs, first = sweep["runs"], sweep["runs"][0]
    ratios = ", ".join(f"{run['batch_size']}: {run['tokens_per_second'] / first['tokens_per_second']:.2f}x" for run in runs[1:])
    return (
        f"| sampling as the evaluation samples (n={sweep['num_samples']}, T={sweep['temperature']}, {sweep['max_new_tokens']} new tokens, "
        f"{sweep['prompts']} validation prompts; {sweep['cpu']}, CPU flags {sweep['cpu_flags']}), tokens/s by batch size against "
        f"batch {first['batch_size']} ({first['tokens_per_second']:,} tokens/s), in run order | {ratios} | - | - |"
    )


def whole_recipe_row(demo: dict) -> str:
    """The same ratio on the committed whole local run (demo_bench.py): its flow's wall over its stages' walls.
    The flow's wall starts inside the flow, so the Prefect server's start-up is not in it (overhead.py's is)."""
    flow, stages = demo["pipeline_seconds"], sum(demo["stage_seconds"].values())
    ratio = flow / stages
    return (
        f"| orchestration: flow wall / sum of stage walls (whole local recipe, demo.json at {demo['commit']}: {flow:.0f} s / "
        f"{stages:.0f} s; the server's start not counted) | {ratio:.3f} | <= 1.03 | {'yes' if ratio <= 1.03 else 'no'} |"
    )


def recipe_time_row(demo: dict) -> str:
    """Issue 17's wall-time goal on the committed whole local run: the flow's wall, install excluded, with the final
    model's held-out pass@1 beside it (the goal holds only if the speed does not cost the model: >= 0.595)."""
    seconds, final = demo["pipeline_seconds"], demo["final_stage"]
    pass_at_1 = demo["held_out"][final]["pass@1"]
    met = seconds <= 600 and pass_at_1 >= 0.595
    return (
        f"| the whole local recipe, install excluded (demo.json at {demo['commit']}; final held-out pass@1 {pass_at_1:.3f}, "
        f"goal >= 0.595) | {seconds:.0f} s | <= 600 s | {'yes' if met else 'no'} |"
    )


def _own_commit(result: dict, machine: dict, what: str) -> str:
    """A result measured at another commit than the overhead run says which."""
    commit, theirs = result.get("commit") or "", machine.get("commit") or "?"
    shown = commit[:7] + ("-dirty" if commit.endswith("-dirty") else "")  # git_commit's full hash, shortened as the others
    return f" ({what}: commit {shown})" if commit and (shown != theirs) else ""


def sft_row(run: dict, what: str) -> str:
    sft, c = run["sft"], run["sft"]["settings"]
    setup = f"micro-batch {c['per_device_train_batch_size']} x accumulation {c['gradient_accumulation_steps']}, "
    setup += f"gradient checkpointing {'on' if c['gradient_checkpointing'] else 'off'}"
    return (
        f"| SFT, {what}: {setup} | {sft['tokens_per_second']:,.0f} tokens/s, {sft['step_seconds']['median']:.2f} s/step median "
        f"({sft['step_seconds']['min']:.2f}-{sft['step_seconds']['max']:.2f}), "
        f"MFU {sft['mfu']:.1%}, peak {sft['peak_memory_allocated_gib']:.1f} GiB |"
    )


def gpu_table() -> str:
    """The device run's figures: one row per measured part, the SFT sweep's variants beside the cluster profile's setting."""
    run = _load("gpu_throughput")
    sweep = sorted((RESULTS / "gpu_sft_sweep").glob("*/gpu_throughput.json"))
    variants = [json.loads(path.read_text()) for path in sweep]
    variants.sort(key=lambda v: (v["sft"]["settings"]["per_device_train_batch_size"], not v["sft"]["settings"]["gradient_checkpointing"]))
    peak, model, gen, zero2, grpo = run["matmul_peak"], run["model"], run["generation"], run["zero2_sft"], run["grpo"]
    rows = ["| what | measured |", "|---|---|"]
    rows.append(
        f"| bf16 `torch.mm` {peak['size']}x{peak['size']}, same run (the MFU denominator) | {peak['flops_per_second'] / 1e12:.0f} TFLOP/s |"
    )
    rows.append(sft_row(run, "cluster profile"))
    rows += [sft_row(v, "sweep") for v in variants]
    rows.append(
        f"| SFT under DeepSpeed {zero2['deepspeed_version']} ZeRO-2 (`{zero2['config']}`, one rank), cluster profile | "
        f"{zero2['tokens_per_second']:,.0f} tokens/s ({zero2['tokens_per_second'] / run['sft']['tokens_per_second']:.2f}x plain), "
        f"peak {zero2['peak_memory_allocated_gib']:.1f} GiB |"
    )
    rows.append(
        f"| generation (`components.generation`, HF, bf16, {gen['max_new_tokens']} new tokens): batch {gen['batched']['batch_size']} "
        f"/ one prompt at a time | {gen['batched']['tokens_per_second']:,.0f} / {gen['one_at_a_time']['tokens_per_second']:,.0f} "
        f"tokens/s = {gen['speedup']:.1f}x |"
    )
    c = grpo["settings"]
    rows.append(
        f"| GRPO step, HF generate: {c['per_device_train_batch_size']} completions of up to {c['max_completion_length']} tokens | "
        f"{grpo['step_seconds']['median']:.1f} s/step, {grpo['generation_share']:.0%} of it generating, "
        f"{grpo['completion_tokens_per_generation_second']:,.0f} completion tokens/s, peak {grpo['peak_memory_allocated_gib']:.1f} GiB |"
    )
    vllm = run["vllm"]
    rows.append(
        f"| GRPO step, vLLM colocate | {'measured: see the JSON' if vllm['installed'] else 'not measured: ' + vllm['why_not_measured']} |"
    )
    versions = run["versions"]
    rows.append(
        f"\nDevice: {run['device']['name']} ({run['device']['memory_gib']:.0f} GiB), torch {versions['torch']} (CUDA {versions['cuda']}), "
        f"transformers {versions['transformers']}, TRL {versions['trl']}; {run['date'][:10]}. Model: {model['shape_of']}, "
        f"{model['parameters'] / 1e6:.0f}M parameters, random weights (no hub here), synthetic math data "
        f"({run['sft']['mean_sequence_tokens']:.0f} tokens per SFT sequence)."
    )
    return "\n".join(rows)


def smol_gpu_table() -> str:
    """One row per run of bench/gpu_smol.sh (bench/results/gpu_smol/**/gpu_smol.json): held-out pass@1 and the paired intervals."""
    runs = sorted((json.loads(p.read_text()) for p in (RESULTS / "gpu_smol").rglob("gpu_smol.json")), key=lambda r: r.get("seed_offset", 0))
    rows = [
        "| seed offset | shipped | SFT | SFT + GRPO | SFT - shipped [95% CI] | GRPO - SFT [95% CI] | GRPO s/step | generating | run s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        passed = {label: run[f"eval_{label}"]["metrics"]["pass@1"] for label in ("shipped", "sft", "grpo")}
        shown = {c["measure"]: f"{c['effect']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]" for c in run["comparisons"]}
        rows.append(
            f"| {run.get('seed_offset', 0)} | {passed['shipped']:.3f} | {passed['sft']:.3f} | {passed['grpo']:.3f} | "
            f"{shown['pass@1: sft - shipped']} | {shown['pass@1: grpo - sft']} | {run['grpo']['step_seconds']['median']:.2f} | "
            f"{run['grpo']['generation_share']:.0%} | {run['wall_seconds']:.0f} |"
        )
    first = runs[0]
    n_eval, steps = first["eval_grpo"]["metrics"]["n_problems"], first["grpo"]["steps_done"]
    rows.append(
        f"\n{len(runs)} runs of `bash bench/gpu_smol.sh` on {first['device']['name']} ({first['date'][:10]}), "
        f"{n_eval:.0f} held-out problems each, GRPO {steps} steps of "
        f"{first['settings']['grpo']['per_device_train_batch_size'] * first['settings']['grpo']['gradient_accumulation_steps']} completions."
    )
    return "\n".join(rows)


def replace_block(text: str, begin: str, end: str, body: str) -> str:
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + "\n" + body + "\n" + text[stop:]


def rendered_readme(readme: str) -> str:
    readme = replace_block(replace_block(readme, BEGIN, END, table()), GPU_BEGIN, GPU_END, gpu_table())
    return replace_block(readme, SMOL_BEGIN, SMOL_END, smol_gpu_table())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite README.md's block")
    args = parser.parse_args(argv)
    if not args.write:
        print(table(), gpu_table(), smol_gpu_table(), sep="\n\n")
        return 0
    path = REPO / "README.md"
    try:
        path.write_text(rendered_readme(path.read_text()))
    except ValueError:
        print(f"error: {path} lacks one of the blocks {BEGIN!r}, {GPU_BEGIN!r}, {SMOL_BEGIN!r} (each with its END)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
