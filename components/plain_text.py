"""Plain-text language-model rows, the loss on the answers only: what the base pretrains on, and what SFT and DPO replay.

The local profile's pretraining corpus is plain text (worked problems and arithmetic drills, no
chat format). Base pretraining learns from it; the SFT and DPO stages can mix a batch of it into
every step (components.replay), so the model keeps the bare arithmetic it learned.
"""

from __future__ import annotations


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
