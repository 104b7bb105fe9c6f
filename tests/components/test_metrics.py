"""Evaluation estimators against brute force and hand-built samples."""

import math
from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.metrics import (
    agreement,
    best_of_n_index,
    bradley_terry_weights,
    calibration_bins,
    calibration_pairs,
    equivalence_classes,
    expected_calibration_error,
    majority_answer,
    pass_at_k,
    reward_auc,
    scaling_curve,
    scaling_scores,
    scaling_sizes,
    score_at_k,
    score_problems,
    sigmoid,
    weighted_majority_answer,
)


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
    greedy = [box.format(7), "so the answer is 3 apples"]
    samples = [[box.format(7), box.format(1), box.format(7), box.format(2)], [box.format(9), box.format(9), box.format(3), "x"]]
    metrics, rows = score_problems(greedy, samples, ["7", "3"], ks=[1, 2, 4])
    assert metrics["pass@1"] == 0.5  # greedy: right, then no boxed answer
    assert metrics["free_text_pass@1"] == 1.0  # ... which the lenient reading finds
    assert metrics["format_rate"] == 0.5
    assert metrics["maj@4"] == 0.5  # 7 wins in the first, 9 (wrong) in the second
    assert metrics["pass@4"] == 1.0
    assert metrics["sample_accuracy"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert rows[1]["sample_correct"] == [False, False, True, False]


# ---------------------------------------------------------------- votes, best-of-N, calibration

RIGHT, WRONG = True, False


def test_majority_is_right_only_when_the_most_frequent_answer_is():
    row = {"sample_answers": ["4", "5", "5", None], "sample_correct": [RIGHT, WRONG, WRONG, WRONG]}
    assert score_at_k(row, 1)["maj@1"] == 1.0  # one sample: its own answer
    assert score_at_k(row, 2)["maj@2"] == 1.0  # 4 and 5 tie: the first seen wins
    assert score_at_k(row, 4)["maj@4"] == 0.0  # 5 (wrong) outvotes 4


def test_best_of_n_takes_the_top_reward_among_the_first_k():
    row = {"sample_answers": ["1", "2", "3"], "sample_correct": [WRONG, RIGHT, WRONG], "sample_rewards": [0.1, 2.0, 5.0]}
    assert score_at_k(row, 1)["bon@1"] == 0.0
    assert score_at_k(row, 2)["bon@2"] == 1.0  # 2.0 beats 0.1
    assert score_at_k(row, 3)["bon@3"] == 0.0  # the RM prefers a wrong sample: best-of-N fails
    assert best_of_n_index([1.0, 3.0, 3.0]) == 1  # ties: the earlier sample


def test_weighted_majority_lets_a_confident_reward_model_outvote_the_crowd():
    answers, correct = ["7", "7", "9"], [WRONG, WRONG, RIGHT]
    row = {"sample_answers": answers, "sample_correct": correct, "sample_rewards": [0.0, 0.0, 3.0]}
    assert score_at_k(row, 3)["maj@3"] == 0.0
    assert score_at_k(row, 3)["wmaj@3"] == 1.0  # e^3 > 2 * e^0
    flat = {**row, "sample_rewards": [0.0, 0.0, 0.5]}
    assert score_at_k(flat, 3)["wmaj@3"] == 0.0  # e^0.5 < 2 * e^0: the crowd wins
    # Equal rewards make it plain majority voting, ties and missing answers included.
    assert weighted_majority_answer(["5", None, "6"], [1.0, 9.0, 1.0]) == "5"
    assert weighted_majority_answer([None], [1.0]) is None


def test_bradley_terry_weights_are_a_stable_softmax():
    weights = bradley_terry_weights([1000.0, 1000.0 + math.log(3)])
    assert weights == pytest.approx([0.25, 0.75])


def test_agreement_is_the_share_of_samples_behind_the_majority():
    assert agreement(["3", "3", "4", None]) == 0.5
    assert agreement([None, None]) == 0.0
    assert agreement(["8"]) == 1.0


@pytest.mark.parametrize(
    ("confidences", "outcomes", "expected"),
    [
        ([1.0, 1.0, 1.0], [RIGHT, RIGHT, RIGHT], 0.0),  # confident and right: calibrated
        ([1.0, 1.0], [WRONG, WRONG], 1.0),  # always confident and wrong: the worst
        ([0.0, 0.0], [WRONG, WRONG], 0.0),  # never confident, never right: calibrated
        ([0.5, 0.5, 0.5, 0.5], [RIGHT, WRONG, RIGHT, WRONG], 0.0),  # 50 % sure, right half the time
        ([0.75] * 4, [RIGHT] * 4, 0.25),  # under-confident by 0.25
        # Two bins, each off by 0.5 in opposite directions: errors do not cancel across bins.
        ([0.25, 0.25, 0.95, 0.95], [RIGHT, RIGHT, WRONG, WRONG], 0.5 * 0.75 + 0.5 * 0.95),
        ([], [], 0.0),
    ],
)
def test_expected_calibration_error_on_known_cases(confidences, outcomes, expected):
    assert expected_calibration_error(confidences, outcomes) == pytest.approx(expected)


def test_ece_bins_by_equal_width_so_confidence_one_lands_in_the_last_bin():
    # 0.95 and 1.0 share the [0.9, 1.0] bin: mean confidence 0.975 against accuracy 0.5.
    assert expected_calibration_error([0.95, 1.0], [RIGHT, WRONG]) == pytest.approx(0.475)
    # With 2 bins, 0.3 and 0.45 share the lower bin.
    assert expected_calibration_error([0.3, 0.45], [RIGHT, WRONG], n_bins=2) == pytest.approx(abs(0.5 - 0.375))


def test_calibration_bins_on_a_hand_built_case_are_what_ece_sums():
    confidences = [0.05, 0.12, 0.18, 0.5, 0.95, 1.0]
    outcomes = [WRONG, RIGHT, WRONG, RIGHT, RIGHT, WRONG]
    bins = calibration_bins(confidences, outcomes)
    # Empty bins are left out; 1.0 shares the last bin with 0.95; bins come by rising confidence.
    assert [(b.low, b.high, b.count) for b in bins] == [(0.0, 0.1, 1), (0.1, 0.2, 2), (0.5, 0.6, 1), (0.9, 1.0, 2)]
    assert [b.accuracy for b in bins] == [0.0, 0.5, 1.0, 0.5]
    assert [b.confidence for b in bins] == pytest.approx([0.05, 0.15, 0.5, 0.975])
    from_bins = sum(b.count / len(confidences) * abs(b.accuracy - b.confidence) for b in bins)
    assert expected_calibration_error(confidences, outcomes) == pytest.approx(from_bins)
    assert calibration_bins([], []) == []


def test_calibration_pairs_are_agreement_and_majority_correctness_and_give_the_ece():
    box = "<think>\nx\n</think>\nThe answer is \\boxed{{{}}}."
    samples = [[box.format(a) for a in answers] for answers in ([7, 7, 7, 1], [1, 1, 7, 2], [2, 3, 4, 5])] + [["no box"] * 4]
    metrics, rows = score_problems([box.format(7)] * 4, samples, ["7"] * 4, ks=[1])
    confidences, outcomes = calibration_pairs(rows)
    # 3 of 4 agree on the right 7; 2 of 4 on a wrong 1; a four-way tie goes to the first (wrong) answer;
    # no boxed answer at all: confidence 0, and no majority to be right.
    assert confidences == [0.75, 0.5, 0.25, 0.0] and outcomes == [True, False, False, False]
    assert metrics["ece"] == expected_calibration_error(confidences, outcomes)


def test_scaling_scores_are_the_per_problem_points_the_curve_averages():
    box = "<think>\nx\n</think>\nThe answer is \\boxed{{{}}}."
    samples = [[box.format(a) for a in answers] for answers in ([7, 1, 1, 7], [1, 7, 7, 7], [2, 2, 2, 2])]
    _, rows = score_problems([box.format(7)] * 3, samples, ["7"] * 3, ks=[1])
    scores = scaling_scores(rows, [1, 2, 4])
    assert list(scores) == ["pass@N", "maj@N"] and all(len(column) == 3 for columns in scores.values() for column in columns)
    assert scores["maj@N"] == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]  # a 1-1 tie at N=2 goes to the first answer
    assert scores["pass@N"][0] == [0.5, 0.75, 0.0]
    curve = scaling_curve(rows, num_samples=4)
    assert curve["maj@N"] == [sum(column) / 3 for column in scores["maj@N"]]


def test_reward_auc_ranks_within_problems_only():
    # Problem 1: the right sample beats one wrong and ties the other; problem 2 has no wrong sample.
    assert reward_auc([[2.0, 1.0, 2.0], [9.0]], [[RIGHT, WRONG, WRONG], [RIGHT]]) == pytest.approx((1 + 0.5) / 2)
    assert reward_auc([[1.0, 2.0]], [[RIGHT, RIGHT]]) is None


def test_scaling_sizes_double_up_to_n():
    assert scaling_sizes(8) == [1, 2, 4, 8]
    assert scaling_sizes(6) == [1, 2, 4, 6]
    assert scaling_sizes(1) == [1]


def test_reward_metrics_and_scaling_curve_on_hand_built_samples():
    box = "<think>\nx\n</think>\nThe answer is \\boxed{{{}}}."
    greedy = [box.format(7), box.format(1)]
    samples = [[box.format(7), box.format(1)], [box.format(3), box.format(2)]]
    rewards = [[0.0, 1.0], [0.0, 0.0]]
    metrics, rows = score_problems(greedy, samples, ["7", "3"], ks=[1, 2], rewards=rewards)
    assert metrics["pass@1"] == 0.5 and metrics["sample_accuracy"] == 0.5
    assert metrics["bon@2"] == 0.5  # problem 1: the RM picks the wrong 1; problem 2: tie -> first (right)
    assert metrics["mean_reward"] == 0.25
    assert metrics["reward_accuracy_gap"] == pytest.approx((3 * 0.5 + sigmoid(1.0)) / 4 - 0.5)
    assert metrics["reward_auc"] == 0.25  # one pair lost (problem 1), one tied (problem 2)
    assert rows[0]["sample_rewards"] == [0.0, 1.0]
    curve = scaling_curve(rows, num_samples=2)
    assert curve["n"] == [1.0, 2.0]
    assert curve["pass@N"] == [0.5, 1.0] and curve["bon@N"] == [1.0, 0.5]
    assert set(curve) == {"n", "pass@N", "maj@N", "bon@N", "wmaj@N"}


def test_without_a_reward_model_the_reward_metrics_are_absent_not_zero():
    metrics, rows = score_problems(["x"], [["y"]], ["1"], ks=[1])
    assert not {"bon@1", "wmaj@1", "mean_reward", "reward_accuracy_gap", "reward_auc"} & set(metrics)
    assert "sample_rewards" not in rows[0]
    assert "ece" not in metrics  # no answer at all: no confidence to calibrate (not a perfect 0)


def test_majority_vote_counts_math_equivalent_answers_together():
    # 31.0 and 62/2 are 31: three votes for it beat two for 30, though "30" is the most frequent string
    answers = ["30", "31", "31.0", "30", "62/2", None]
    assert majority_answer(answers) == "31"
    assert equivalence_classes(answers) == ["30", "31", "31", "30", "31", None]
    assert agreement(answers) == pytest.approx(3 / 6)


def test_a_vote_on_equivalent_answers_is_scored_by_its_first_member():
    row = {"sample_answers": ["2/4", "0.5", "1"], "sample_correct": [True, True, False]}
    assert score_at_k(row, 3)["maj@3"] == 1.0


def test_a_model_that_never_answers_has_no_calibration_to_measure():
    """Its ECE would be a trivial 0 that no answering model can match (the gate's ece guard)."""
    rambling = ["I think the number is big"] * 3
    metrics, _ = score_problems(rambling, [rambling[:2]] * 3, ["1", "2", "3"], [1, 2])
    assert "ece" not in metrics and metrics["pass@1"] == 0.0
    metrics, _ = score_problems([r"\boxed{1}"] * 3, [[r"\boxed{1}"] * 2] * 3, ["1", "2", "3"], [1, 2])
    assert metrics["ece"] > 0.5, "always sure, right once in three"
