"""Batched generation with a progress bar: the one place stages sample from a model."""

from __future__ import annotations

from collections.abc import Sequence


def chat_prompts(tokenizer, conversations: Sequence[list[dict]]) -> list[str]:
    """Render conversational prompts with the chat template, ready for the assistant's turn."""
    return [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]


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
        encoded = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
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
        texts = tokenizer.batch_decode(generated[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        outputs.extend(texts[i : i + num_samples] for i in range(0, len(texts), num_samples))
    return outputs
