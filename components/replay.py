"""Pretraining replay against forgetting: a trainer that adds the LM loss on the base's own text to every step.

InstructGPT's PPO-ptx remedy, for any TRL trainer: with `replay_weight` > 0 and a plain-text
`replay` dataset (the base's pretraining corpus), each training step adds `replay_weight` x the
language-model loss on `replay_batch_size` rows of it (the answers only, see components.plain_text).
The SFT stages use it while the model learns the chat format, the DPO pass while it learns the
preferences: both cost the tiny model its bare arithmetic without it.

Rows are fixed by (seed, step), so a resumed run replays exactly what the uninterrupted one would.
Single-process only: DDP/DeepSpeed expect one forward per backward, and the replay is a second one.
"""

from __future__ import annotations

import functools

from pydantic import BaseModel, Field

from components.dataset_frames import read_dataset
from components.plain_text import length_sorted_passes, mean_token_loss, tokenize_with_loss_mask
from components.stages import StageInputError

# Each replayed batch runs in two length-sorted passes: the same loss, a third less padding (components.plain_text).
REPLAY_PASSES = 2
# A trainer config that mixes in ReplaySettings lists these in its OWN_FIELDS: TRL has no such fields.
REPLAY_FIELDS = frozenset({"replay_weight", "replay_batch_size"})


class ReplaySettings(BaseModel):
    """The replay knobs, mixed into a stage's trainer config."""

    replay_weight: float = Field(
        0.0, ge=0, le=100, description="weight of the LM loss on replayed pretraining text added to every step (0: no replay)"
    )
    replay_batch_size: int = Field(32, ge=1, description="pretraining rows replayed per step (replay_weight > 0)")


class ReplayBatches:
    """Random batches of plain-text rows, the same ones for a (seed, step) whatever ran before: a resumed run replays as the first did."""

    def __init__(self, tokenizer, texts: list[str], batch_size: int, max_length: int, seed: int):
        if not texts:
            raise ValueError("no replay texts: the replay dataset is empty")
        self.rows = tokenize_with_loss_mask(tokenizer, texts, max_length)
        self.batch_size, self.seed, self.pad_id = batch_size, seed, tokenizer.pad_token_id

    def batch(self, step: int) -> list:
        """Step `step`'s rows, as length-sorted (input_ids, labels) slices for `mean_token_loss`."""
        import torch

        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        picks = torch.randint(len(self.rows), (self.batch_size,), generator=generator).tolist()
        return length_sorted_passes([self.rows[i] for i in picks], self.pad_id, REPLAY_PASSES)


def load_replay(cfg, tokenizer, replay_path: str | None) -> ReplayBatches | None:
    """`cfg`'s replayed pretraining rows, or None without replay; a weight without a dataset (or the reverse) is refused."""
    if not cfg.replay_weight:
        if replay_path:
            raise StageInputError(
                f"a replay dataset was given ({replay_path}) but replay_weight is 0: set replay_weight, or drop the input"
            )
        return None
    if not replay_path:
        raise StageInputError(f"replay_weight is {cfg.replay_weight} but no replay dataset was given (the pretraining corpus, --replay)")
    texts = [record["text"] for record in read_dataset(replay_path, "pretrain")]
    return ReplayBatches(tokenizer, texts, cfg.replay_batch_size, cfg.max_length, cfg.seed)


def trainer_with_replay(trainer_class, cfg, tokenizer, replay_path: str | None) -> tuple[type, dict]:
    """`trainer_class` and no extra arguments without replay; its replaying subclass and the replay's arguments with it."""
    replay = load_replay(cfg, tokenizer, replay_path)
    if replay is None:
        return trainer_class, {}
    return replaying(trainer_class), {"replay": replay, "replay_weight": cfg.replay_weight}


@functools.cache
def replaying(trainer_class: type) -> type:
    """`trainer_class` whose training loss adds `replay_weight` x the LM loss on a replayed batch."""

    class Replaying(trainer_class):
        def __init__(self, *args, replay: ReplayBatches, replay_weight: float, **kwargs):
            super().__init__(*args, **kwargs)
            if self.accelerator.num_processes > 1:
                raise StageInputError(
                    f"replay_weight is {replay_weight} on {self.accelerator.num_processes} processes: pretraining replay runs on one "
                    "process only; set replay_weight to 0 for a distributed run"
                )
            self.replay, self.replay_weight = replay, replay_weight
            self._replay_at = (-1, 0)  # (global step, micro-step within it) of the last replayed batch

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            result = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            if not model.training:
                return result
            replay_loss = mean_token_loss(model, self._next_batch())
            self._metrics["train"]["replay_loss"].append(replay_loss.item())
            extra = self.replay_weight * replay_loss / self._ga_divisor(num_items_in_batch)
            return (result[0] + extra, result[1]) if return_outputs else result + extra

        def _next_batch(self):
            # one batch per micro-step, fixed by the optimizer step and the micro-step's place in it:
            # a resumed run replays the same rows, whatever the accumulation did before
            step, micro = self._replay_at
            micro = micro + 1 if step == self.state.global_step else 0
            self._replay_at = (self.state.global_step, micro)
            return self.replay.batch(self.state.global_step * self.args.gradient_accumulation_steps + micro)

        def _ga_divisor(self, num_items_in_batch) -> int:
            # The trainer divides the returned loss by the accumulation steps unless the trainer's own loss
            # is already scaled for them (transformers' rule); the replay term must follow the same scale.
            scaled = self.loss_is_scaled_for_ga
            if scaled is None:
                scaled = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or self.compute_loss_func is not None
            return self.current_gradient_accumulation_steps if scaled else 1

    Replaying.__name__ = Replaying.__qualname__ = f"Replay{trainer_class.__name__}"
    return Replaying
