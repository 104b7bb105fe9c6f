"""bench/gpu_throughput.py: the GPU benchmark runs end to end at tiny size on CPU and records what it claims.

The numbers themselves are machine-dependent: these tests check that they exist, are consistent
with each other and come with the settings they were measured under, never how fast they are.
"""

from __future__ import annotations

import json

import pytest

from components import evaluate, grpo, sft
from components.config import load_section
from tests.bench import load_script, run_script
from tests.conftest import REPO


def load_bench():
    return load_script("gpu_throughput")


def test_summary_excludes_the_warmup_and_divides_generation_by_step_time():
    bench = load_bench()
    step = dict.fromkeys(bench.COUNTERS, 0) | {"generate_calls": 1, "sequences": 4, "prompt_tokens": 40, "completion_tokens": 60}
    steps = [step | {"seconds": 9.0, "generation_seconds": 8.0, "trl_tokens_seen": 100}] + [
        step | {"seconds": 2.0, "generation_seconds": 0.5, "trl_tokens_seen": 100} for _ in range(2)
    ]
    summary = bench.summarize(steps, "grpo")
    assert summary["timed_steps"] == 2 and summary["first_step_seconds"] == 9.0
    assert summary["tokens_per_second"] == pytest.approx(50.0)
    assert summary["generation_share"] == pytest.approx(0.25)
    assert summary["mean_completion_tokens"] == pytest.approx(15.0)


def test_wrapped_restores_the_trainer_method():
    bench = load_bench()

    class Trainer:
        def generate(self):
            return "original"

    original = Trainer.__dict__["generate"]
    with bench.wrapped(Trainer, "generate", lambda f: lambda self: f"wrapped {f(self)}"):
        assert Trainer().generate() == "wrapped original"
    assert Trainer.__dict__["generate"] is original
    with pytest.raises(RuntimeError, match="is gone"), bench.wrapped(Trainer, "missing", lambda f: f):
        pass


@pytest.mark.slow
def test_tiny_cpu_run_records_throughput_and_settings(tmp_path):
    done = run_script(
        "gpu_throughput", "--size", "tiny", "--device", "cpu", "--sft-steps", "3", "--grpo-steps", "3", "--out", str(tmp_path)
    )
    assert "[gpu-throughput] sft:" in done.stdout and "[gpu-throughput] grpo:" in done.stdout  # progress lines
    results = json.loads((tmp_path / "gpu_throughput.json").read_text())
    sft_run, grpo_run = results["sft"], results["grpo"]

    # ---- the measurements
    assert sft_run["tokens_per_second"] > 0 and sft_run["loss_tokens_per_second"] > 0
    assert grpo_run["tokens_per_second"] > 0
    assert 0 < grpo_run["generation_share"] < 1
    assert grpo_run["generate_calls_per_step"] == 1
    assert grpo_run["tokens_counted_by_probe_per_step"] == grpo_run["tokens_per_step"]  # the probe agrees with TRL's count
    assert sft_run["loss_tokens_per_second"] < sft_run["tokens_per_second"]  # loss on the answers only
    for stage in (sft_run, grpo_run):
        assert stage["steps_run"] == 3 and stage["timed_steps"] == 2 and stage["step_seconds"]["median"] > 0

    # ---- the settings they were measured under: the cluster profile, changed only where recorded
    assert results["device"]["type"] == "cpu" and results["size"] == "tiny"
    assert results["versions"]["trl"] and results["versions"]["transformers"] and results["versions"]["torch"]
    assert grpo_run["generation_backend"] == "hf" and grpo_run["generation_backend_reason"]
    for name, module, stage in (("sft", sft, sft_run), ("grpo", grpo, grpo_run)):
        cluster = load_section(REPO / "params.yaml", name, module.Config, "cluster").model_dump()
        assert stage["settings"] == cluster | results["overrides"][name]
    assert sft_run["settings"]["max_length"] == 1024 and sft_run["settings"]["gradient_accumulation_steps"] == 4
    assert sft_run["sequences_per_step"] == sft_run["settings"]["per_device_train_batch_size"] * 4
    assert grpo_run["completions_per_step"] == grpo_run["settings"]["per_device_train_batch_size"]
    model = results["model"]
    assert model["architecture"] == "Qwen2ForCausalLM" and model["tie_word_embeddings"]
    assert model["tokenizer_tokens"] <= model["vocab_size"] and model["parameters"] > 0
    assert sft_run["param_dtype"] == "float32" and sft_run["train_device"] == "cpu"
    # ---- MFU against the peak measured in the same run, generation batched vs one at a time, ZeRO-2
    peak = results["matmul_peak"]["flops_per_second"]
    assert peak > 0 and sft_run["flops_per_token"]["total"] > sft_run["flops_per_token"]["weights"] > 0
    assert sft_run["mfu"] == pytest.approx(sft_run["tokens_per_second"] * sft_run["flops_per_token"]["total"] / peak, rel=1e-3)
    generation = results["generation"]
    assert generation["batched"]["batch_size"] == load_section(REPO / "params.yaml", "evaluate", evaluate.Config, "cluster").batch_size
    assert generation["one_at_a_time"]["batch_size"] == 1 and generation["batched"]["tokens"] > 0
    assert generation["speedup"] == pytest.approx(
        generation["batched"]["tokens_per_second"] / generation["one_at_a_time"]["tokens_per_second"], rel=1e-3
    )
    zero2 = results["zero2_sft"]
    assert zero2["config"] == "infra/deepspeed/zero2.json" and zero2["wrote_model"] and zero2["tokens_per_second"] > 0
    assert zero2["settings"]["deepspeed"].endswith("zero2.json")
    assert results["vllm"]["installed"] or results["vllm"]["why_not_measured"]
    report = (tmp_path / "gpu_throughput.md").read_text()
    assert "generation share" in report and "random weights" in report
    assert "SFT MFU" in report and "ZeRO-2" in report and "one prompt at a time" in report
