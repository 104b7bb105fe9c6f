"""bench/lora_precision.py at a tiny size, so the benchmark cannot rot: four configurations side by side."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_the_benchmark_compares_full_lora_fp32_bf16_in_one_run(tmp_path, smollm2_models):
    out = tmp_path / "lora_precision.json"
    command = [sys.executable, "bench/lora_precision.py", "--steps", "2", "--batch", "1", "--length", "48"]
    done = subprocess.run([*command, "--models-dir", str(smollm2_models), "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    assert list(results) == ["full_fp32", "full_bf16", "lora_fp32", "lora_bf16"]
    assert results["full_fp32"]["speed_vs_full_fp32"] == 1.0
    assert results["lora_fp32"]["trainable_parameters"] < results["full_fp32"]["trainable_parameters"] / 10
    assert all(r["tokens_per_second"] > 0 and r["peak_rss_gib"] > 0 and r["loss_mask"] == "completion_only" for r in results.values())
