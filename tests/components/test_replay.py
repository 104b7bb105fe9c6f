"""Plain-text rows with the loss on the answers, and their replay in SFT and DPO (components.plain_text, components.replay)."""

import pytest

from components import alignment, supervised
from components.plain_text import loss_chars
from components.replay import ReplayBatches, load_replay
from components.stages import StageInputError


class CharTokenizer:
    """One token per character: enough to check masks and batches without a trained tokenizer."""

    pad_token_id, eos_token_id = 0, 1

    def __call__(self, texts, add_special_tokens, return_offsets_mapping, truncation, max_length):
        ids = [[2 + ord(c) % 90 for c in t][:max_length] for t in texts]
        return {"input_ids": ids, "offset_mapping": [[(i, i + 1) for i in range(len(t))][:max_length] for t in texts]}


def test_only_the_results_of_drills_and_the_answer_of_a_worked_problem_carry_loss():
    text = "22-9=13\n13+86=99"
    assert "".join(c for c, on in zip(text, loss_chars(text), strict=True) if on) == "13\n99"
    worked = "Q: Kim has 2 apples.\nA: 2+1=3"
    assert "".join(c for c, on in zip(worked, loss_chars(worked), strict=True) if on) == "2+1=3"


def test_replay_batches_are_fixed_by_seed_and_step_whatever_came_before():
    texts = [f"{a}+{a}={2 * a}" for a in range(50)]
    one, other = ReplayBatches(CharTokenizer(), texts, 4, 64, seed=3), ReplayBatches(CharTokenizer(), texts, 4, 64, seed=3)
    one.batch(0), one.batch(1)

    def rows(batch):
        return sorted(tuple(row[row != 0].tolist()) for ids, _ in batch for row in ids)

    assert rows(one.batch(7)) == rows(other.batch(7)), "a resumed run must replay the rows the first run would have"
    assert rows(one.batch(7)) != rows(one.batch(8))
    slices = one.batch(2)
    assert sum(ids.shape[0] for ids, _ in slices) == 4
    assert all((labels[ids == 0] == -100).all() for ids, labels in slices), "padding carries no loss"


def test_an_empty_replay_set_is_refused():
    with pytest.raises(ValueError, match="replay dataset is empty"):
        ReplayBatches(CharTokenizer(), [], 4, 64, seed=0)


REPLAYING_CONFIGS = [supervised.SFTConfig, alignment.DPOSettings]


@pytest.mark.parametrize("config", REPLAYING_CONFIGS)
def test_replay_weight_without_a_replay_dataset_and_the_reverse_are_refused_by_name(config):
    with pytest.raises(StageInputError, match="replay_weight is 0.5 but no replay dataset"):
        load_replay(config(replay_weight=0.5), CharTokenizer(), None)
    with pytest.raises(StageInputError, match=r"replay dataset was given \(data/pretrain.jsonl\) but replay_weight is 0"):
        load_replay(config(), CharTokenizer(), "data/pretrain.jsonl")
    assert load_replay(config(), CharTokenizer(), None) is None


@pytest.mark.parametrize("config", REPLAYING_CONFIGS)
def test_the_replay_knobs_never_reach_trl(config):
    kwargs = config(replay_weight=0.5, replay_batch_size=8).trl_kwargs()
    assert "replay_weight" not in kwargs and "replay_batch_size" not in kwargs


@pytest.mark.parametrize("config", REPLAYING_CONFIGS)
def test_a_negative_replay_weight_is_refused(config):
    with pytest.raises(ValueError, match="replay_weight"):
        config(replay_weight=-1)
