"""Evaluation estimators against brute force and hand-built samples."""

from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.evaluate import majority_answer, pass_at_k, score_problems


@given(st.lists(st.booleans(), min_size=1, max_size=8), st.integers(min_value=1, max_value=8))
def test_pass_at_k_equals_brute_force_enumeration(correct, k):
    n = len(correct)
    if k > n:
        return
    subsets = list(combinations(range(n), k))
    brute = sum(any(correct[i] for i in subset) for subset in subsets) / len(subsets)
    assert pass_at_k(n, sum(correct), k) == pytest.approx(brute)


def test_majority_vote_ignores_missing_answers_and_breaks_ties_by_first_seen():
    assert majority_answer([None, "3", "4", "4", None]) == "4"
    assert majority_answer(["5", "6"]) == "5"
    assert majority_answer([None, None]) is None


def test_scores_on_hand_built_samples():
    box = "<think>\nx\n</think>\nThe answer is \\boxed{{{}}}."
    greedy = [box.format(7), "no answer"]
    samples = [[box.format(7), box.format(1), box.format(7), box.format(2)], [box.format(9), box.format(9), box.format(3), "x"]]
    metrics, rows = score_problems(greedy, samples, ["7", "3"], ks=[1, 2, 4])
    assert metrics["pass@1"] == 0.5  # greedy: right, then no answer
    assert metrics["format_rate"] == 0.5
    assert metrics["maj@4"] == 0.5  # 7 wins in the first, 9 (wrong) in the second
    assert metrics["pass@4"] == 1.0
    assert metrics["sample_accuracy"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert rows[1]["sample_correct"] == [False, False, True, False]
