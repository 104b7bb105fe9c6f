#!/usr/bin/env bash
# What limits SFT's MFU on the device machine's GPU: the cluster profile's micro-batch of 8 (in
# bench/gpu_run.sh's run) against larger micro-batches, with and without gradient checkpointing.
# Same model (Qwen2.5-0.5B's shape, random weights), data and measuring as bench/gpu_throughput.py,
# SFT only. Wheels as in bench/gpu_run.sh. Device tool: command `bash bench/gpu_sft_sweep.sh`,
# carry [".whl"], timeout_s 300; each variant's JSON and .md come back from $OUT/<variant>/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results/gpu_sft_sweep}"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1

sweep() {
  local name=$1; shift
  python3 bench/gpu_throughput.py --device cuda --sft-steps 8 --parts "" --out "$OUT/$name" "$@" 2>&1 \
    | grep '\[gpu-throughput\]' || echo "variant $name failed"
}
sweep b32_ckpt --set sft.per_device_train_batch_size=32 --set sft.gradient_accumulation_steps=1
sweep b32_nockpt --set sft.per_device_train_batch_size=32 --set sft.gradient_accumulation_steps=1 --set sft.gradient_checkpointing=false
sweep b128_nockpt --set sft.per_device_train_batch_size=128 --set sft.gradient_accumulation_steps=1 --set sft.gradient_checkpointing=false
