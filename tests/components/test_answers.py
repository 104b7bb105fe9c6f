"""Unit tests of answer extraction and checking (property-based where it matters)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.answers import extract_answer, extract_free_answer, format_solution, is_correct, score, wrong_equations


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


NESTED = [
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{\\sqrt{2}}", "\\sqrt{2}"),
    ("\\boxed{{5}}", "{5}"),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
    ("\\boxed {7}", "7"),  # a space before the brace is still a box
    ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces are text, not grouping
    ("\\boxed{3}, no: \\boxed{\\frac{5}{2}}.", "\\frac{5}{2}"),  # the last box wins
]


@pytest.mark.parametrize(("text", "expected"), NESTED, ids=[t for t, _ in NESTED])
def test_nested_braces_are_extracted_whole(text, expected):
    assert extract_answer(f"<think>\nx\n</think>\nThe answer is {text}") == expected


@pytest.mark.parametrize(
    "text",
    [
        "\\boxed{\\frac{1}{2}",  # cut off before the box closes
        "\\boxed{3} then \\boxed{\\frac{1",  # the last box is unfinished: no answer, not the earlier one
        "\\boxed{",
        "\\boxed 5",
    ],
)
def test_unbalanced_or_empty_boxes_give_no_answer(text):
    assert extract_answer(text) is None


@pytest.mark.parametrize(
    ("boxed", "reference"),
    [("\\frac{1}{2}", "1/2"), ("\\dfrac{3}{4}", "0.75"), ("{5}", "5"), ("\\sqrt{4}", "2"), ("-\\frac{1}{2}", "-1/2")],
)
def test_a_correct_nested_answer_scores(boxed, reference):
    text = format_solution(["x"], boxed)
    assert is_correct(extract_answer(text), reference)
    assert score(text, reference)


def test_a_wrong_nested_answer_does_not_score():
    assert not score(format_solution(["x"], "\\frac{1}{3}"), "1/2")
    assert not score(format_solution(["x"], "\\sqrt{2}"), "2")


latex_atoms = st.one_of(
    st.integers(min_value=0, max_value=999).map(str),
    st.builds(lambda a, b: f"\\frac{{{a}}}{{{b}}}", st.integers(1, 99), st.integers(1, 99)),
    st.integers(min_value=0, max_value=99).map(lambda n: f"\\sqrt{{{n}}}"),
    st.integers(min_value=0, max_value=99).map(lambda n: f"{{{n}}}"),
)


@given(st.lists(latex_atoms, min_size=1, max_size=3).map("+".join), st.text(alphabet="abc ,.{}", max_size=20))
def test_extraction_returns_any_balanced_answer_verbatim(answer, noise):
    # Text before the reasoning block's end may hold anything, braces included.
    text = f"<think>\n{noise}\n</think>\nThe answer is \\boxed{{{answer}}}."
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Tom had 23 apples and ate 7, so he has 16 apples left.", "16"),  # a shipped instruct model's style
        ("First 3+4=7. Then 7*2=14. The answer is 14.", "14"),
        ("<think>\n2+2=4\n</think>\nThe answer is \\boxed{4}.", "4"),  # the strict answer wins when there is one
        ("I cannot tell.", None),
    ],
)
def test_free_text_answers_are_read_the_way_real_models_write_them(text, expected):
    assert extract_free_answer(text) == expected
    assert extract_answer(text) == (expected if "boxed" in text else None)  # the strict reading is unchanged


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        (format_solution(["23+15=38", "38-7=31"], "31"), []),
        (format_solution(["23+15=39", "39-7=31"], "31"), ["23+15=39", "39-7=31"]),  # two slips that cancel: a right box
        ("so 3 × 4 + 2 = 14, and 3*4+2=15 apples", ["3*4+2=15"]),  # products first
        ("-5+3=-2, but -5 + 3 = -1.", ["-5 + 3 = -1"]),
        ("10-2-3=5", []),
        ("She has 12 - 4 = 8 left.", []),
        ("no equation at all, the answer is 16", []),
    ],
)
def test_wrong_equations_names_each_written_step_that_does_not_hold(text, wrong):
    assert wrong_equations(text) == wrong


@pytest.mark.parametrize("text", ["x-5+3=-2", "2.5+1=3.5", "1,000+2=1,002", "1/2+1=3", "2^3+1=9", "2+2=4.5"])
def test_wrong_equations_never_reads_a_piece_of_something_else(text):
    # a misread equation would throw a right answer away: decimals, words, fractions, powers, thousands
    assert wrong_equations(text) == []


@given(st.integers(min_value=-999, max_value=999), st.integers(min_value=0, max_value=999), st.sampled_from("+-*"))
def test_every_true_equation_holds_and_every_false_one_is_named(a, b, op):
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    assert wrong_equations(f"then {a}{op}{b}={value} so") == []
    assert wrong_equations(f"then {a}{op}{b}={value + 1} so") == [f"{a}{op}{b}={value + 1}"]
