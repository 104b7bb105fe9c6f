"""Batched generation with a progress bar: the one place stages sample from a model.

Two engines behind one `generate`: Hugging Face `generate` (everywhere) and vLLM (on GPU nodes
whose image has it). `load_for_generation` picks one from a preference (`auto` | `vllm` |
`hf`) and says why, so every stage can log which engine produced its samples.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Literal

from components import accounting

Backend = Literal["auto", "vllm", "hf"]
Precision = Literal["float32", "bfloat16", "auto"]


def generation_dtype(preference: str) -> tuple[str, str]:
    """('float32' | 'bfloat16', why): bf16 weights where bf16 computes faster than fp32 here.

    `auto` takes bf16 on a GPU that supports it, or on a CPU whose bf16 matmul is measured faster
    than fp32 (components.modeling.bf16_is_fast); fp32 elsewhere. Asking for bf16 is honoured as asked."""
    import torch

    from components.modeling import bf16_is_fast

    if preference != "auto":
        return preference, f"generation_dtype: {preference} (configured)"
    fast, why = bf16_is_fast(on_cpu=not torch.cuda.is_available())
    return ("bfloat16" if fast else "float32"), f"auto: {why}"


def choose_backend(preference: str) -> tuple[str, str]:
    """('vllm' | 'hf', why). Asking for vLLM where it cannot run is an error, not a silent fallback."""
    import torch

    has_vllm = importlib.util.find_spec("vllm") is not None
    has_gpu = torch.cuda.is_available()
    if preference == "hf":
        return "hf", "generation_backend: hf (configured)"
    if has_vllm and has_gpu:
        return "vllm", "vLLM is installed and a GPU is present"
    if preference == "vllm":
        raise RuntimeError(f"generation_backend: vllm, but vllm installed={has_vllm}, GPU present={has_gpu}")
    return "hf", f"HF generate fallback (vllm installed={has_vllm}, GPU present={has_gpu})"


class VLLMModel:
    """A model served by vLLM in this process; `generate` hands it whole prompt lists."""

    def __init__(self, model_dir: str, seed: int = 0, gpu_memory_utilization: float = 0.85):
        from vllm import LLM

        self.llm = LLM(model=model_dir, seed=seed, gpu_memory_utilization=gpu_memory_utilization)

    def complete(self, prompts: Sequence[str], max_new_tokens: int, num_samples: int, temperature: float, top_p: float, seed: int):
        from vllm import SamplingParams

        sampling = SamplingParams(
            n=num_samples, temperature=temperature, top_p=top_p if temperature > 0 else 1.0, max_tokens=max_new_tokens, seed=seed
        )
        # vLLM schedules the whole list itself (continuous batching): no batches of ours.
        outputs = self.llm.generate(list(prompts), sampling, use_tqdm=True)
        completions = [completion for request in outputs for completion in request.outputs]
        accounting.add(tokens_generated=sum(len(c.token_ids) for c in completions), samples_generated=len(completions))
        return [[completion.text for completion in request.outputs] for request in outputs]


def load_for_generation(model_dir: str, preference: str = "auto", seed: int = 0, precision: str = "float32"):
    """(tokenizer, model or VLLMModel, backend, why) for `generate`; `why` also says the weights' dtype."""
    from components.modeling import load_model, load_tokenizer

    backend, why = choose_backend(preference)
    if backend == "vllm":
        return load_tokenizer(model_dir), VLLMModel(model_dir, seed=seed), backend, why
    dtype, dtype_why = generation_dtype(precision)
    model, device = on_fastest_device(load_model(model_dir, dtype=dtype))
    return load_tokenizer(model_dir), model, backend, f"{why}; {dtype} weights ({dtype_why}) on {device}"


def on_fastest_device(model):
    """(model, device name): on the GPU where there is one (a GPU node without vLLM), else where it is.

    HF generate runs where the weights are; without this a GPU pod's evaluation and rejection
    sampling would generate on its CPU."""
    import torch

    if torch.cuda.is_available():
        model = model.to("cuda")
    return model, str(model.device)


def chat_prompts(tokenizer, conversations: Sequence[list[dict]]) -> list[str]:
    """Render conversational prompts with the chat template, ready for the assistant's turn."""
    return [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]


def sample(model, tokenizer, prompts: Sequence[str], cfg, desc: str) -> list[list[str]]:
    """`cfg.num_samples` samples per prompt with a stage's sampling knobs (max_new_tokens, temperature, top_p, batch_size, seed)."""
    return generate(
        model,
        tokenizer,
        prompts,
        cfg.max_new_tokens,
        num_samples=cfg.num_samples,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        desc=f"{desc} n={cfg.num_samples}",
    )


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    num_samples: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
    desc: str = "generating",
) -> list[list[str]]:
    """Completions for each prompt: `num_samples` of them, greedy when temperature is 0."""
    if isinstance(model, VLLMModel):
        return model.complete(prompts, max_new_tokens, num_samples, temperature, top_p, seed)
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    sampling = temperature > 0
    model.eval()
    outputs: list[list[str]] = []
    # Keep the number of sequences per forward pass near batch_size whatever num_samples is.
    prompts_per_batch = max(1, batch_size // num_samples)
    for start in tqdm(range(0, len(prompts), prompts_per_batch), desc=desc, unit="batch", leave=False):
        chunk = list(prompts[start : start + prompts_per_batch])
        encoded = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            generated = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                do_sample=sampling,
                temperature=temperature if sampling else None,
                top_p=top_p if sampling else None,
                top_k=0 if sampling else None,
                num_return_sequences=num_samples,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        new_tokens = generated[:, encoded["input_ids"].shape[1] :]
        accounting.add(tokens_generated=int((new_tokens != tokenizer.pad_token_id).sum()), samples_generated=len(new_tokens))
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        outputs.extend(texts[i : i + num_samples] for i in range(0, len(texts), num_samples))
    return outputs
