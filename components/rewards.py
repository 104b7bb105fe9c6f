"""Reward functions for reasoning RL, chosen by name in `params.yaml` (`grpo.rewards`).

Each is a plain function with TRL's reward signature, `f(completions, **columns) -> list[float]`:
`completions` are the sampled responses (strings, or chat messages whose last turn is the
response) and the dataset's other columns (here `answer`) arrive as keyword lists. Every
reward is bounded, so a weighted sum can be read against the verified accuracy.

    accuracy              1 if the final boxed answer is verified correct (math-verify), else 0
    sound_accuracy        accuracy, and only when every equation the reasoning writes holds: a right box
                          reached through slips that cancel earns 0 (a process check R1's rule reward lacks)
    format                1 for a non-empty reasoning block followed by one boxed final answer
    language_consistency  share of the words written in the target script (R1's language reward)
    reward_model          sigmoid of a trained reward model's score (needs a reward model)
    length                DAPO's soft overlong penalty: 0 when short enough, down to -1 at the limit
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import partial

from components.answers import THINK_CLOSE, THINK_OPEN, find_boxed, wrong_equations
from components.answers import score as response_is_correct

RewardFunction = Callable[..., list[float]]

# A reasoning block with some non-space content, then text holding exactly one non-empty box.
_FORMAT = re.compile(rf"^\s*{re.escape(THINK_OPEN)}(?P<reasoning>.*?){re.escape(THINK_CLOSE)}(?P<final>.*)$", re.DOTALL)
_WORD = re.compile(r"[^\W\d_]+")  # runs of letters, in any script
SCRIPTS = {"latin": ("LATIN",), "cyrillic": ("CYRILLIC",), "greek": ("GREEK",), "cjk": ("CJK", "HIRAGANA", "KATAKANA")}


def response_text(completion: str | list[dict]) -> str:
    """The response as text, whether TRL passes a string or chat messages."""
    if isinstance(completion, str):
        return completion
    return completion[-1]["content"] if completion else ""


def accuracy(completions: Sequence, answer: Sequence[str], **_) -> list[float]:
    return [float(response_is_correct(response_text(c), str(a))) for c, a in zip(completions, answer, strict=True)]


def sound_accuracy(completions: Sequence, answer: Sequence[str], **_) -> list[float]:
    texts = [response_text(c) for c in completions]
    return [float(response_is_correct(t, str(a)) and not wrong_equations(t)) for t, a in zip(texts, answer, strict=True)]


def format_reward(completions: Sequence, **_) -> list[float]:
    return [float(follows_format(response_text(c))) for c in completions]


def follows_format(text: str) -> bool:
    match = _FORMAT.match(text)
    if not match or not match["reasoning"].strip() or THINK_OPEN in match["final"]:
        return False
    boxes = find_boxed(match["final"])
    return len(boxes) == 1 and boxes[0] is not None and bool(boxes[0].strip())


def language_consistency(completions: Sequence, target_script: str = "latin", **_) -> list[float]:
    return [script_share(response_text(c), target_script) for c in completions]


def script_share(text: str, target_script: str = "latin") -> float:
    """Share of words written entirely in the target script; 1.0 when there are no words at all."""
    prefixes = SCRIPTS[target_script]
    words = _WORD.findall(text)
    if not words:
        return 1.0  # pure arithmetic mixes no language
    in_script = sum(all(unicodedata.name(ch, "").startswith(prefixes) for ch in word) for word in words)
    return in_script / len(words)


def overlong_penalty(completion_ids: Sequence[Sequence[int]], max_length: int, buffer: int, **_) -> list[float]:
    """DAPO's soft overlong punishment: linear from 0 at `max_length - buffer` to -1 at `max_length`."""
    start = max_length - buffer
    return [max(-1.0, min(0.0, (start - len(ids)) / buffer)) for ids in completion_ids]


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow: e^-x is only taken for x >= 0, e^x only for x < 0."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class RewardModelReward:
    """A trained reward model's score squashed to [0, 1] by `sigmoid`, loaded once and reused every step.

    A log-likelihood scorer's score (components/scoring.py) is a sum of about -460 for a whole
    exchange, the prompt's share included: only differences between answers to one prompt mean
    anything, so each is taken relative to the mean of its prompt's answers in the batch (GRPO's
    group) before the squash: above 0.5 for an answer likelier than its group's average."""

    __name__ = "reward_model"

    def __init__(self, model_dir: str, batch_size: int = 64):
        from components.scoring import RewardScorer

        self.scorer = RewardScorer(model_dir, batch_size=batch_size)
        self.per_prompt = self.scorer.kind == "log_likelihood"

    def __call__(self, prompts: Sequence, completions: Sequence, **_) -> list[float]:
        scores = self.scorer.score(prompts, [response_text(c) for c in completions])
        if self.per_prompt:
            scores = centered_per_prompt(prompts, scores)
        return [sigmoid(s) for s in scores]


def centered_per_prompt(prompts: Sequence, scores: Sequence[float]) -> list[float]:
    """Each score minus the mean score of the answers to the same prompt."""
    groups: dict[str, list[float]] = {}
    keys = [json.dumps(prompt, sort_keys=True) for prompt in prompts]
    for key, score in zip(keys, scores, strict=True):
        groups.setdefault(key, []).append(score)
    return [score - sum(groups[key]) / len(groups[key]) for key, score in zip(keys, scores, strict=True)]


class NamedReward:
    """A reward function under its `params.yaml` name, which TRL logs it by (`rewards/<name>/mean`)."""

    def __init__(self, name: str, function: RewardFunction):
        self.__name__, self.function = name, function

    def __call__(self, *args, **kwargs) -> list[float]:
        return self.function(*args, **kwargs)


REWARD_NAMES = ("accuracy", "sound_accuracy", "format", "language_consistency", "reward_model", "length")


def check_reward_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in REWARD_NAMES]
    if unknown:
        raise ValueError(f"unknown reward function(s) {unknown}; known: {', '.join(REWARD_NAMES)}")


def build(
    names: Sequence[str],
    *,
    max_completion_length: int,
    length_buffer: int,
    target_script: str = "latin",
    reward_model: str | None = None,
) -> list[RewardFunction]:
    """The reward functions for `names`, in that order (TRL weighs them in the same order)."""
    check_reward_names(names)
    functions: list[RewardFunction] = []
    for name in names:
        if name == "accuracy":
            fn = accuracy
        elif name == "sound_accuracy":
            fn = sound_accuracy
        elif name == "format":
            fn = format_reward
        elif name == "language_consistency":
            fn = partial(language_consistency, target_script=target_script)
        elif name == "length":
            fn = partial(overlong_penalty, max_length=max_completion_length, buffer=length_buffer)
        else:
            if reward_model is None:
                raise ValueError("the 'reward_model' reward needs a trained reward model (enable the reward_model stage)")
            fn = RewardModelReward(reward_model)
        functions.append(fn if isinstance(fn, RewardModelReward) else NamedReward(name, fn))
    return functions
