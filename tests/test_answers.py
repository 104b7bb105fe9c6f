"""Unit tests of answer extraction and checking (property-based where it matters)."""

from hypothesis import given
from hypothesis import strategies as st

from components.answers import extract_answer, format_solution, is_correct, score


def test_extracts_the_boxed_answer_after_the_reasoning():
    text = format_solution(["2+3=5", "5-1=4"], "4")
    assert extract_answer(text) == "4"
    assert score(text, "4")


def test_boxed_inside_the_reasoning_does_not_count():
    assert extract_answer("<think>\nmaybe \\boxed{3}\n</think>\nI am not sure.") is None


def test_the_last_boxed_answer_wins():
    assert extract_answer("The answer is \\boxed{3}, no: \\boxed{5}.") == "5"


def test_missing_or_empty_answers_are_none():
    assert extract_answer("The answer is 5.") is None
    assert extract_answer("The answer is \\boxed{ }.") is None
    assert not is_correct(None, "5")


def test_math_verify_accepts_equivalent_forms():
    assert is_correct("5.0", "5")
    assert not is_correct("6", "5")


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_only_the_right_number_is_correct(answer, other):
    text = format_solution(["x"], str(other))
    assert score(text, str(answer)) == (answer == other)
