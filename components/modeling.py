"""Tokenizers and models: build the tiny local ones from a config, or load real ones by path/id.

The local profile never touches a model hub: it trains a byte-level BPE tokenizer (digits
split one per token, a ChatML template with `{% generation %}` markers for assistant-only
loss) on the synthetic corpus and builds a small Llama-style model from a config. The
cluster profile loads a Hugging Face model id or a local/volume path with the same code
every stage uses (`load_model`), so that path is exercised by the local tests too.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PAD, EOS, IM_START = "<|endoftext|>", "<|im_end|>", "<|im_start|>"
SPECIAL_TOKENS = [PAD, IM_START, EOS]

# ChatML. The assistant turn ends at <|im_end|> with no trailing newline, so preference and
# RL formats score exactly the tokens SFT trained on.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelLoadError(RuntimeError):
    """A model or tokenizer could not be loaded from the given path or id."""


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """Train a byte-level BPE on `texts` and wrap it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    # Digits one per token: arithmetic generalizes far better than with merged numbers.
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=EOS, bos_token=None, unk_token=None)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"  # generation pads on the left; trainers set their own side
    return tokenizer


def build_model(tokenizer, hidden_size: int, layers: int, heads: int, kv_heads: int, intermediate: int, max_positions: int, seed: int):
    """A small Llama-style causal LM with tied embeddings, sized for the tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config)


def without_loading_kwargs(tokenizer):
    """Forget how the tokenizer was loaded, so that saving it writes the same files however the process started.

    transformers keeps `local_files_only` (true under HF_HUB_OFFLINE=1) in `init_kwargs` and writes it to
    tokenizer_config.json on every save: the same model would get two folder digests, and so two cache keys."""
    tokenizer.init_kwargs.pop("local_files_only", None)
    return tokenizer


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = without_loading_kwargs(AutoTokenizer.from_pretrained(name_or_path))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a tokenizer from {name_or_path!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ModelLoadError(f"{name_or_path!r}: the tokenizer has no chat template; the stages need one")
    return tokenizer


def available_cores() -> int:
    """The cores this process may really use: its CPU affinity, capped by a cgroup CPU quota (a pod's limit)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def configure_threads(threads: int | None = None) -> int:
    """torch's intra-op threads: `threads` when given, else the cores the process has (OMP_NUM_THREADS, when set, wins).

    torch otherwise counts the host's cores: in a pod limited to 2 of 64, or beside another job,
    oversubscribed threads ran 10x slower than one. A fixed count is what makes training
    reproducible across machines: the count sets how CPU reductions split their sums, so 1 and 2
    threads train bitwise different weights from the same seed, and a chaotic little training run
    turns that last bit into a different model (issue 16)."""
    import torch

    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(threads or available_cores())
    return torch.get_num_threads()


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")  # the ones that pick oneDNN's kernels


def cpuinfo(field: str) -> str | None:
    """The first `field` of /proc/cpuinfo (e.g. "model name", "flags"); None where there is none (macOS)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    """The CPU's model name: hosts of one machine kind differ (the 3-layer base pretrained in 485 s on an AMD EPYC, 284 s on an AMX Xeon)."""
    import platform

    return cpuinfo("model name") or platform.processor() or "unknown"


def matmul_rate(dtype_name: str, size: int = 512, repeats: int = 3) -> float:
    """FLOP/s of one `size` x `size` torch.mm in `dtype_name` on the CPU, the best of `repeats` after a warm-up."""
    import torch

    a = torch.randn(size, size, dtype=getattr(torch, dtype_name))
    torch.mm(a, a)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, a)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


BF16_DECISIONS: dict[bool, tuple[bool, str]] = {}  # on_cpu -> bf16_is_fast's answer: measured once per process, recorded in math_settings


def bf16_is_fast(on_cpu: bool = True) -> tuple[bool, str]:
    """(whether bf16 computes faster than fp32 here, why): what `bf16: auto` and `generation_dtype: auto` follow.

    On a GPU, whether it supports bf16. On a CPU it is measured, not read off the flags: an AMD
    EPYC with avx512_bf16 but no AMX ran torch's bf16 matmul at ~2.5 GFLOP/s against fp32's ~155
    (bench/mfu.py), and the SmolLM2 smoke trained in bf16 there took 16.5 minutes of CI; a Xeon
    with AMX ran it at several times fp32's rate. A 512-wide product in each dtype takes well
    under a second even on the slow path, once per process."""
    if on_cpu not in BF16_DECISIONS:
        BF16_DECISIONS[on_cpu] = _measure_bf16(on_cpu)
    return BF16_DECISIONS[on_cpu]


def _measure_bf16(on_cpu: bool) -> tuple[bool, str]:
    import torch

    if not on_cpu and torch.cuda.is_available():
        supported = torch.cuda.is_bf16_supported()
        return supported, "the GPU supports bf16" if supported else "the GPU has no bf16"
    bf16, fp32 = matmul_rate("bfloat16"), matmul_rate("float32")
    rates = f"torch.mm 512x512 measured here: bf16 {bf16 / 1e9:.0f} GFLOP/s, fp32 {fp32 / 1e9:.0f}"
    return bf16 > fp32, f"the CPU's bf16 is {'faster' if bf16 > fp32 else 'slower'} ({rates})"


def math_settings() -> dict[str, str]:
    """What decides a training's floating-point results beyond its seeds: recorded in every result and the lineage."""
    import torch

    flags = (cpuinfo("flags") or "").split()
    return {
        "torch": torch.__version__,
        "torch_threads": str(torch.get_num_threads()),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS", "unset"),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cpu_flags": ",".join(f for f in CPU_FLAGS if f in set(flags)) or "none of " + ",".join(CPU_FLAGS),
        "cuda": torch.version.cuda or "none",
    } | {  # what `bf16: auto` / `generation_dtype: auto` chose, where this process had to choose
        f"bf16_auto_{'cpu' if on_cpu else 'gpu'}": f"{'bf16' if fast else 'fp32'}: {why}" for on_cpu, (fast, why) in BF16_DECISIONS.items()
    }


def load_model(name_or_path: str, dtype: str = "float32"):
    """Load a causal LM by local path or hub id (offline unless HF_HUB_OFFLINE=0)."""
    import torch
    from transformers import AutoModelForCausalLM

    configure_threads()

    try:
        return AutoModelForCausalLM.from_pretrained(name_or_path, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a model from {name_or_path!r}: {exc}") from exc


def set_generation_defaults(model, tokenizer, max_new_tokens: int = 64) -> None:
    """A generation config that fits a small context (MLflow's signature inference generates)."""
    model.generation_config.max_new_tokens = max_new_tokens
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = None


def save_pretrained(model, tokenizer, out_dir: str | Path) -> Path:
    """Save model + tokenizer in HF format (safetensors)."""
    out_dir = Path(out_dir)
    set_generation_defaults(model, tokenizer)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
