"""Scoring (prompt, response) pairs with a trained reward model, shared below the stages.

The reward model stage trains the scorer and reports its held-out pairwise accuracy with this
class; best-of-N evaluation, GRPO's optional `reward_model` reward and rejection sampling's
ranking load the saved model with it too, so they all get the scorer that was measured.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.modeling import load_tokenizer


class RewardScorer:
    """Scores (prompt, response) pairs with a trained reward model; higher is better."""

    def __init__(self, model_dir: str, batch_size: int = 64):
        import torch
        from transformers import AutoModelForSequenceClassification

        self.tokenizer = load_tokenizer(model_dir)
        self.tokenizer.padding_side = "right"
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.batch_size = batch_size

    def texts(self, prompts: Sequence[list[dict] | str], responses: Sequence[str]) -> list[str]:
        """Chat-render each exchange exactly as the reward model saw its training pairs."""
        rendered = []
        for prompt, response in zip(prompts, responses, strict=True):
            turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
            rendered.append(self.tokenizer.apply_chat_template(turns + [{"role": "assistant", "content": response}], tokenize=False))
        return rendered

    def score(self, prompts: Sequence[list[dict] | str], responses: Sequence[str]) -> list[float]:
        import torch

        texts = self.texts(prompts, responses)
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                scores.extend(self.model(**batch).logits.squeeze(-1).tolist())
        return scores
