"""Plain-text language-model rows, the loss on the answers only: what the base pretrains on, and what SFT and DPO replay.

The local profile's pretraining corpus is plain text (worked problems and arithmetic drills, no
chat format). Base pretraining learns from it; the SFT and DPO stages can mix a batch of it into
every step (components.replay), so the model keeps the bare arithmetic it learned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from components import accounting


def loss_chars(text: str) -> list[bool]:
    """Which characters carry loss: a worked problem's answer part, or each drill line's result.

    The question's numbers are random, so predicting them only adds noise: a tiny model
    trained on whole lines stalls, trained on the answers it learns to read and to carry.
    """
    marker = text.find("\nA: ")
    if marker >= 0:
        start = marker + len("\nA: ")
        return [i >= start for i in range(len(text))]
    flags, inside = [], False
    for char in text:
        if char == "=":
            flags.append(False)
            inside = True
        elif char == "\n":
            flags.append(inside)
            inside = False
        else:
            flags.append(inside)
    return flags


def tokenize_with_loss_mask(tokenizer, texts: list[str], max_length: int) -> list[tuple[list[int], list[bool]]]:
    """Token ids per text (end-of-text appended), and a label mask that is on only for the characters worth predicting."""
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=max_length - 1)
    rows = []
    for text, ids, offsets in zip(texts, encoded["input_ids"], encoded["offset_mapping"], strict=True):
        predictable = loss_chars(text)
        mask = [predictable[start] if start < len(text) else False for start, _ in offsets]
        rows.append((ids + [tokenizer.eos_token_id], mask + [True]))
    return rows


def collate(rows: list[tuple[list[int], list[bool]]], pad_id: int):
    """Right-padded input ids and labels (-100 where the mask is off, and on the padding)."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (ids, mask) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(ids)] = torch.tensor([t if m else -100 for t, m in zip(ids, mask, strict=True)])
    return input_ids, labels


def length_sorted_passes(rows: list[tuple[list[int], list[bool]]], pad_id: int, passes: int) -> list:
    """The rows sorted by length and collated in `passes` slices, each padded only to its own longest row.

    A random batch of plain-text rows (10 to 114 tokens) is half padding when padded as one: in
    three sorted slices it is a fifth. `mean_token_loss` over the slices is the one-batch loss."""
    rows = sorted(rows, key=lambda row: len(row[0]))
    size = math.ceil(len(rows) / passes)
    return [collate(rows[start : start + size], pad_id) for start in range(0, len(rows), size)]


def mean_token_loss(model, batches: list):
    """The LM loss averaged over every label token of `batches` together, as if they were one padded batch.

    Each slice's loss is summed over its tokens and divided by the total, so the gradients add up
    to the one-batch gradient (up to float rounding). Padding sits after each row's end and
    attention is causal, so no real token sees it, however a slice is padded."""
    import torch

    label_tokens = sum(int((labels[:, 1:] != -100).sum()) for _, labels in batches)  # the model shifts labels by one
    total = torch.tensor(float(max(label_tokens, 1)))
    device = model.device
    return sum(
        model(input_ids=input_ids.to(device), labels=labels.to(device), num_items_in_batch=total.to(device)).loss
        for input_ids, labels in batches
    )


def pretrain(
    model,
    tokenizer,
    texts: list[str],
    *,
    steps: int,
    batch_size: int,
    micro_batches: int,
    learning_rate: float,
    warmup_steps: int,
    seed: int,
    max_length: int,
    weight_decay: float = 0.01,
    desc: str = "pretraining base",
    check_every: int = 0,
    check: Callable[[int], bool] | None = None,
) -> list[float]:
    """Plain torch loop over random batches of `texts` (AdamW, warm-up then cosine to a tenth); the loss every 10 steps.
    The base stage pretrains with it; distillation heals a student cut from the base with it.

    With `check`, every `check_every` steps `check(steps_done)` looks at the model part-way (the
    base answers its validation sums); True stops the pretraining there. The batches are drawn
    from their own generator, so a check that only reads the model leaves the run unchanged."""
    import torch
    from tqdm.auto import tqdm

    rows = tokenize_with_loss_mask(tokenizer, texts, max_length)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay, betas=(0.9, 0.95))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, steps, warmup_steps))
    model.train()
    curve, running, tokens, started = [], [], 0, time.perf_counter()
    progress = tqdm(range(steps), desc=desc, unit="step")
    for step in progress:
        picks = torch.randint(len(rows), (batch_size,), generator=generator).tolist()
        tokens += sum(len(rows[i][0]) for i in picks)  # the real tokens, not the padding
        loss = mean_token_loss(model, length_sorted_passes([rows[i] for i in picks], tokenizer.pad_token_id, micro_batches))
        loss.backward()
        running.append(loss.item())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % 10 == 0:
            curve.append(sum(running) / len(running))
            running.clear()
            progress.set_postfix(loss=f"{curve[-1]:.3f}")
        if check and check_every and (step + 1) % check_every == 0 and step + 1 < steps:
            stop = check(step + 1)
            model.train()  # the check may have generated, which leaves the model in eval mode
            if stop:
                break
    progress.close()
    model.eval()
    accounting.add(tokens_trained=tokens, train_seconds=time.perf_counter() - started)
    return curve


def lr_factor(step: int, steps: int, warmup_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
