"""Plain-text batches in length-sorted passes (base pretraining, replay): the same loss and update as one padded batch."""

import pytest
import torch

from components.modeling import build_model, train_tokenizer
from components.plain_text import collate, length_sorted_passes, mean_token_loss, tokenize_with_loss_mask

TEXTS = [
    "Q: Tom has 12 apples and buys 30 more. How many now?\nA: 12+30=42. The answer is 42.",
    "7+8=15\n23-9=14\n",
    "4*6=24\n",
    "Q: A box holds 9 pens; 3 boxes?\nA: 9*3=27. The answer is 27.",
    "81-17=64\n5+5=10\n12*3=36\n",
    "2+2=4\n",
    "Q: 40 birds, 13 fly away. Left?\nA: 40-13=27. The answer is 27.",
]


@pytest.fixture(scope="module")
def model_and_rows():
    tokenizer = train_tokenizer(TEXTS * 20, 300)
    model = build_model(tokenizer, 32, 2, 2, 1, 64, 128, seed=0)
    return model, tokenizer, tokenize_with_loss_mask(tokenizer, TEXTS, 128)


def gradients(model, rows, pad_id, micro_batches):
    model.zero_grad(set_to_none=True)
    batches = length_sorted_passes(rows, pad_id, micro_batches)
    assert len(batches) == min(micro_batches, len(rows))
    loss = mean_token_loss(model, batches)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("micro_batches", [2, 3, 7])
def test_length_sorted_slices_give_the_one_pass_gradient_and_loss(model_and_rows, micro_batches):
    model, tokenizer, rows = model_and_rows
    lengths = {len(ids) for ids, _ in rows}
    assert len(lengths) > 3  # the rows differ in length, so the passes really pad less
    one_loss, one = gradients(model, rows, tokenizer.pad_token_id, 1)
    split_loss, split = gradients(model, rows, tokenizer.pad_token_id, micro_batches)
    assert split_loss == pytest.approx(one_loss, rel=1e-5)
    for whole, parts in zip(one, split, strict=True):
        torch.testing.assert_close(parts, whole, rtol=1e-4, atol=1e-6)


def test_the_one_pass_loss_is_the_mean_over_label_tokens(model_and_rows):
    """What the curve logs: HF's own mean token loss of the padded batch."""
    model, tokenizer, rows = model_and_rows
    input_ids, labels = collate(rows, tokenizer.pad_token_id)
    with torch.no_grad():
        expected = model(input_ids=input_ids, labels=labels).loss.item()
    loss, _ = gradients(model, rows, tokenizer.pad_token_id, 3)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_the_weight_decay_setting_reaches_the_optimizer(model_and_rows):
    """base.weight_decay: AdamW's decoupled decay shrinks the weights, so a larger one leaves a smaller norm."""
    import copy

    from components.plain_text import pretrain

    model, tokenizer, _ = model_and_rows
    norms = {}
    for decay in (0.0, 0.5):
        trained = copy.deepcopy(model)
        settings = {"steps": 10, "batch_size": 4, "micro_batches": 1, "learning_rate": 1e-2, "warmup_steps": 0, "seed": 0}
        pretrain(trained, tokenizer, TEXTS, max_length=128, weight_decay=decay, desc="test", **settings)
        norms[decay] = sum(p.detach().norm() ** 2 for p in trained.parameters()).item()
    assert norms[0.5] < norms[0.0] * 0.99


def test_a_check_that_only_reads_the_model_leaves_pretraining_unchanged_and_true_stops_it(model_and_rows):
    """The base answers its validation sums part-way (base.probe_every): the same weights as without, bit for bit."""
    import copy

    from components.generation import generate
    from components.plain_text import pretrain

    model, tokenizer, _ = model_and_rows
    settings = {"steps": 20, "batch_size": 4, "micro_batches": 2, "learning_rate": 1e-2, "warmup_steps": 2, "seed": 3}
    plain, checked = copy.deepcopy(model), copy.deepcopy(model)
    plain_curve = pretrain(plain, tokenizer, TEXTS, max_length=128, desc="test", **settings)
    seen = []

    def check(step):
        seen.append(step)
        generate(checked, tokenizer, ["7+8="], 4, desc="test")  # what the base's check does: generate, in eval mode
        return False

    checked_curve = pretrain(checked, tokenizer, TEXTS, max_length=128, desc="test", check_every=5, check=check, **settings)
    assert seen == [5, 10, 15], "every 5 steps, not after the last (the base probes the finished model itself)"
    assert checked_curve == plain_curve
    for a, b in zip(plain.parameters(), checked.parameters(), strict=True):
        assert torch.equal(a, b)

    stopped = copy.deepcopy(model)
    curve = pretrain(stopped, tokenizer, TEXTS, max_length=128, desc="test", check_every=5, check=lambda step: step >= 10, **settings)
    assert len(curve) == 1, "stopped at step 10: one loss (every 10 steps) logged"
    assert not stopped.training, "left in eval mode, as a finished pretraining is"
