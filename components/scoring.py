"""Scoring (prompt, response) pairs with a trained reward model, shared below the stages.

The reward model stage trains the scorer and reports its held-out pairwise accuracy with this
class; best-of-N evaluation, GRPO's optional `reward_model` reward and rejection sampling's
ranking load the saved model with it too, so they all get the scorer that was measured.

A reward model scores in one of two ways (`reward_model.scorer`, kept in the saved config as
`reward_scorer`): `head`, TRL's one-output head read at the last token; or `log_likelihood`, the
sum of a causal LM's log-probabilities of the exchange's tokens, trained with the same
Bradley-Terry loss (the implicit reward of SimPO/DPO without a reference). Both are read as a
model's `.logits` of shape (batch, 1), so the trainer and this scorer handle them alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from components.modeling import load_model, load_tokenizer

SCORERS = ("head", "log_likelihood")
ON_POLICY = "on_policy"  # held_out_pairs.jsonl's kind for the starting model's own wrong answers (not in the headline accuracy)


def sequence_log_likelihood(_module, args, kwargs, output):
    """A forward hook: the model's `.logits` become each sequence's summed token log-probabilities, (batch, 1).

    Every token counts, the prompt's too: two answers to one prompt share the prompt's terms
    (causal attention), so they cancel in every comparison the scorer is used for."""
    input_ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
    mask = kwargs.get("attention_mask")
    logits = output.logits[:, :-1].float()  # a gather and a logsumexp: no second (batch, length, vocab) tensor of log-probs
    next_token = logits.gather(-1, input_ids[:, 1:, None]).squeeze(-1) - logits.logsumexp(-1)
    if mask is not None:
        next_token = next_token * mask[:, 1:]
    output.logits = next_token.sum(-1, keepdim=True)
    return output


def use_scorer(model, scorer: str) -> None:
    """Make `model` (the outermost module: a LoRA wrapper's, if any) score as `scorer` says, and record it in its config."""
    if scorer not in SCORERS:
        raise ValueError(f"reward_model.scorer: {scorer!r} is not one of {', '.join(SCORERS)}")
    model.config.reward_scorer = scorer
    if scorer == "log_likelihood":
        model.register_forward_hook(sequence_log_likelihood, with_kwargs=True)


def saved_scorer(model_dir: str | Path) -> str:
    """How the reward model saved in `model_dir` scores, read off its config.json (no weights are loaded)."""
    config = Path(model_dir) / "config.json"
    return json.loads(config.read_text()).get("reward_scorer", "head") if config.is_file() else "head"


class RewardScorer:
    """Scores (prompt, response) pairs with a trained reward model; higher is better."""

    def __init__(self, model_dir: str, batch_size: int = 64):
        import torch
        from transformers import AutoModelForSequenceClassification

        self.tokenizer = load_tokenizer(model_dir)
        self.tokenizer.padding_side = "right"
        self.kind = saved_scorer(model_dir)  # one of SCORERS
        if self.kind == "log_likelihood":  # a causal LM: the shared loader, and its clear error for a bad folder
            self.model = load_model(model_dir).eval()
        else:
            self.model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
        use_scorer(self.model, self.kind)
        self.batch_size = batch_size

    def texts(self, prompts: Sequence[list[dict] | str], responses: Sequence[str]) -> list[str]:
        """Chat-render each exchange exactly as the reward model saw its training pairs."""
        rendered = []
        for prompt, response in zip(prompts, responses, strict=True):
            turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
            rendered.append(self.tokenizer.apply_chat_template(turns + [{"role": "assistant", "content": response}], tokenize=False))
        return rendered

    def score(self, prompts: Sequence[list[dict] | str], responses: Sequence[str]) -> list[float]:
        return self.score_texts(self.texts(prompts, responses))

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        """Scores of exchanges already rendered with the chat template (what a served reward model is sent)."""
        import torch

        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                scores.extend(self.model(**batch).logits.squeeze(-1).tolist())
        return scores
