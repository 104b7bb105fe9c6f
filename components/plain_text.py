"""Plain-text language-model rows, the loss on the answers only: what the base pretrains on, and what SFT and DPO replay.

The local profile's pretraining corpus is plain text (worked problems and arithmetic drills, no
chat format). Base pretraining learns from it; the SFT and DPO stages can mix a batch of it into
every step (components.replay), so the model keeps the bare arithmetic it learned.
"""

from __future__ import annotations

import math


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
