#!/usr/bin/env bash
# On the device machine's GPU, in one call (bench/gpu_throughput.py): the bf16 matmul peak, SFT tokens/s and MFU,
# batched vs one-at-a-time generation, SFT under DeepSpeed ZeRO-2 (infra/deepspeed/zero2.json) and GRPO step time.
#
# That machine has Python 3.12, torch 2.11 (CUDA) and accelerate but reaches no package index, so
# what the two stages import and its image lacks travels as wheels in .whl/ (git-ignored; ~18 MB
# of the 64 MiB a call carries; torch stays the image's). Prepare them here once, in the
# repository root:
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#     trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 fsspec==2026.9.0 \
#     pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 \
#     math-verify==0.9.0 latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2 \
#     transformers==5.24.0 hjson==3.1.0
#   .venv/bin/pip wheel --no-deps deepspeed==0.19.8 -w .whl    # PyPI has only its sdist: build the (pure Python) wheel here
#
# Why each (the import closure of components.sft and components.grpo against the image's list in
# the device notes, KINDS.md "Python packages already there"):
#   trl                          both stages' trainers; absent from the image
#   datasets, dill, multiprocess the stages build a datasets.Dataset; datasets needs the other two
#   fsspec                       datasets 5.2 requires fsspec<=2026.9.0; the image's version is not known
#   pydantic (+ core, annotated-types, typing-inspection, typing-extensions>=4.16)
#                                every stage config; absent from the image
#   math-verify, latex2sympy2_extended, antlr4-python3-runtime
#                                the GRPO `accuracy` reward (4.13.2: the newest antlr4 runtime it accepts, and a wheel)
#   transformers                 the image has 5.17; the project pins and tests 5.24 (TRL's fused LM head path)
#   deepspeed, hjson             the ZeRO-2 part (the cluster profile's trainer config); hjson is its one need the image lacks
# Already in the image and used as they are: torch, accelerate, tokenizers, safetensors, huggingface-hub,
# numpy, pandas, pyarrow, xxhash, pyyaml, jinja2, regex, psutil, tqdm, sympy, peft. Its pip list is
# printed below: datasets needs pyarrow>=24, transformers 5.24 regex>=2025.10.22 (not checked ahead).
#
# vLLM is not carried: its wheel and CUDA libraries are far over the 64 MiB a call carries; the JSON says so.
#
# With the device tool: command `bash bench/gpu_run.sh`, carry [".whl"], timeout_s 540; the JSON,
# the .md and the log come back from $OUT. Extra arguments go to the script (e.g. --grpo-steps 3).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -m pip list 2>/dev/null | grep -iE '^(torch|transformers|trl|accelerate|datasets|tokenizers|pyarrow|huggingface.hub|regex|fsspec|pydantic) ' || true

python3 bench/gpu_throughput.py --device cuda --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_throughput.log"
