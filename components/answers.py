"""The answer format every dataset and model output uses, and how answers are checked.

A solution is a reasoning block followed by one boxed final answer:

    <think>
    23+15=38
    38-7=31
    </think>
    The answer is \\boxed{31}.

`extract_answer` is strict: exactly the last `\\boxed{...}` after the reasoning block counts.
`is_correct` compares with math-verify, which also accepts equivalent forms (e.g. `31.0`).
"""

from __future__ import annotations

import re
from functools import lru_cache

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def format_solution(steps: list[str], answer: str) -> str:
    """Render reasoning steps and a final answer in the canonical format."""
    body = "\n".join(steps)
    return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}\nThe answer is \\boxed{{{answer}}}."


def extract_answer(text: str) -> str | None:
    """The content of the last `\\boxed{}` after `</think>` (or anywhere if no block), or None."""
    tail = text.split(THINK_CLOSE, 1)[1] if THINK_CLOSE in text else text
    found = BOXED.findall(tail)
    if not found:
        return None
    answer = found[-1].strip()
    return answer or None


def is_correct(prediction: str | None, reference: str) -> bool:
    """True when `prediction` (an extracted answer) equals `reference` mathematically."""
    if prediction is None:
        return False
    if prediction.strip() == reference.strip():
        return True
    return _math_equal(prediction.strip(), reference.strip())


@lru_cache(maxsize=65536)
def _math_equal(prediction: str, reference: str) -> bool:
    from math_verify import parse, verify

    try:
        gold = parse(f"${reference}$")
        pred = parse(f"${prediction}$")
        return bool(gold) and bool(pred) and bool(verify(gold, pred))
    except Exception:  # math-verify raises on unparsable input; that is simply "wrong"
        return False


def score(text: str, reference: str) -> bool:
    """Is a full model response correct against the reference answer?"""
    return is_correct(extract_answer(text), reference)
