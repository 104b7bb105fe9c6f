"""The answer format every dataset and model output uses, and how answers are checked.

A solution is a reasoning block followed by one boxed final answer:

    <think>
    23+15=38
    38-7=31
    </think>
    The answer is \\boxed{31}.

`extract_answer` is strict: exactly the last `\\boxed{...}` after the reasoning block counts.
The box's braces are matched, so LaTeX answers such as `\\boxed{\\frac{1}{2}}` come out whole;
a last box that never closes (a truncated response) gives no answer.
`extract_free_answer` is the lenient reading for models that were never taught the format (a
shipped instruct model writes "so she has 16 apples left."): the strict answer when there is
one, else what math-verify reads from the free text (its last answer-like expression). It is
reported beside strict accuracy, so a gain from learning the format and a gain in solving
problems can be told apart.
`is_correct` compares with math-verify, which also accepts equivalent forms (e.g. `31.0`,
`\\frac{1}{2}` for `1/2`).
`wrong_equations` checks the reasoning rather than the answer: a right box reached through two
slips that cancel (`23+15=39`, `39-7=31`) is right by `is_correct` and wrong by it.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
BOXED = re.compile(r"\\boxed\s*\{")  # where a box opens; `find_boxed` reads up to its matching brace
_BRACE = re.compile(r"\\.|[{}]", re.DOTALL)  # an escaped character (`\\{` is text, not grouping) or a brace
# An integer equation as a solution writes one: `23+15=38`, `38 - 7 = 31`, `3 × 4 + 2 = 14`. The
# lookarounds keep it whole, never a piece of a decimal, a word, a fraction, a power, `1,000` or a longer
# expression (`x-5+3=-2`, `2.5+1=3.5`): an equation misread would throw away a right answer.
_EQUATION = re.compile(r"(?<![\w.,)/^-])(-?\d+(?:\s*[-+*×]\s*\d+)+)\s*=\s*(-?\d+)(?![\w(/^]|[.,]\d)")
_TERM = re.compile(r"\d+|[-+*×]")


def format_solution(steps: list[str], answer: str) -> str:
    """Render reasoning steps and a final answer in the canonical format."""
    body = "\n".join(steps)
    return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}\nThe answer is \\boxed{{{answer}}}."


def find_boxed(text: str) -> list[str | None]:
    """The contents of the `\\boxed{...}` in `text`, in order, honouring nested braces.

    A box inside another is part of the outer one's content. A box that never closes runs to
    the end of the text, so it is the last entry and reads None.
    """
    found: list[str | None] = []
    position = 0
    while (opening := BOXED.search(text, position)) is not None:
        start, depth = opening.end(), 1
        for token in _BRACE.finditer(text, start):
            if token[0] == "{":
                depth += 1
            elif token[0] == "}":
                depth -= 1
                if depth == 0:
                    found.append(text[start : token.start()])
                    position = token.end()
                    break
        else:
            found.append(None)
            break
    return found


def extract_answer(text: str) -> str | None:
    """The content of the last `\\boxed{}` after `</think>` (or anywhere if no block), or None
    when there is none, it is empty, or it never closes."""
    tail = text.split(THINK_CLOSE, 1)[1] if THINK_CLOSE in text else text
    found = find_boxed(tail)
    answer = found[-1].strip() if found and found[-1] is not None else None
    return answer or None


def extract_free_answer(text: str) -> str | None:
    """The strict answer, else the answer math-verify finds in free text, or None."""
    strict = extract_answer(text)
    if strict is not None:
        return strict
    from math_verify import parse

    try:
        parsed = parse(text.split(THINK_CLOSE, 1)[-1])
    except Exception:  # math-verify raises on text it cannot read: no answer
        return None
    if len(parsed) < 2:  # parse gives [sympy value, matched text], or [] when nothing is found
        return None
    return str(parsed[1]).strip() or None


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


def equivalent(a: str, b: str) -> bool:
    """Do two extracted answers say the same thing (`31`, `31.0`, `62/2`)? Plain numbers are compared
    exactly as fractions; anything else goes to math-verify, either way round."""
    a, b = a.strip(), b.strip()
    if a == b:
        return True
    numbers = _as_fraction(a), _as_fraction(b)
    if None not in numbers:
        return numbers[0] == numbers[1]
    return _math_equal(a, b)


def _as_fraction(text: str) -> Fraction | None:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def wrong_equations(text: str) -> list[str]:
    """The integer equations written in `text` whose result is wrong, e.g. `["23+15=39"]`; [] when
    every one holds or there is none (free text without equations has nothing to check)."""
    return [match[0] for match in _EQUATION.finditer(text) if _evaluate(match[1]) != int(match[2])]


def _evaluate(expression: str) -> int:
    """An integer expression of + - * (× too), products first."""
    tokens = _TERM.findall(expression)
    sign = -1 if expression.lstrip().startswith("-") else 1
    if sign < 0:
        tokens = tokens[1:]
    total, term, op = 0, sign * int(tokens[0]), None
    for token in tokens[1:]:
        if not token.isdigit():
            op = token
        elif op in ("*", "×"):
            term *= int(token)
        else:
            total, term = total + term, (int(token) if op == "+" else -int(token))
    return total + term


def score(text: str, reference: str) -> bool:
    """Is a full model response correct against the reference answer?"""
    return is_correct(extract_answer(text), reference)


STEP = re.compile(r"^(-?\d+)([+-])(\d+)=(-?\d+)$")


def solution_steps(solution: str) -> list[tuple[int, str, int, int]] | None:
    """The `a+b=c` / `a-b=c` lines of a solution's reasoning block, or None if a line is not one."""
    body = solution.split(THINK_CLOSE, 1)[0].replace(THINK_OPEN, "")
    steps = []
    for line in filter(None, (raw.strip() for raw in body.splitlines())):
        match = STEP.match(line)
        if match is None:
            return None
        a, op, b, c = match.groups()
        steps.append((int(a), op, int(b), int(c)))
    return steps


BARE_PROBE_TOKENS = 8  # a bare probe's answer is the completion's first word


def completes_with(reply: str, answer: str) -> bool:
    """Whether a bare prompt's completion (`23+15=` -> `38\n...`) starts with the answer as its first word."""
    return reply.strip().split()[0:1] == [answer]
