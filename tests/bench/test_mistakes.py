"""bench/mistakes.py: each validation answer is tallied under its first mistake, shares taken of the wrong ones."""

from tests.bench import load_script

REFERENCE = "<think>\n20+5=25\n25-3=22\n</think>\nThe answer is \\boxed{22}."


def test_the_tally_counts_each_kind_and_shares_only_the_wrong_answers():
    bench = load_script("mistakes")
    answers = [REFERENCE, REFERENCE, "<think>\n20+5=26\n26-3=23\n</think>\nThe answer is \\boxed{23}.", "no answer"]
    problems = [{"solution": REFERENCE}] * len(answers)
    tally = bench.tally(problems, [{"greedy": a, "greedy_correct": a == REFERENCE} for a in answers])
    assert tally["kinds"] == {"right": 2, "arithmetic_slip": 1, "format": 1}
    assert tally["share_of_wrong"] == {"arithmetic_slip": 0.5, "format": 0.5}


def test_a_right_answer_on_slips_that_cancel_is_counted_apart_from_the_wrong_ones():
    bench = load_script("mistakes")
    cancelled = "<think>\n20+5=24\n24-3=22\n</think>\nThe answer is \\boxed{22}."
    tally = bench.tally([{"solution": REFERENCE}], [{"greedy": cancelled, "greedy_correct": True}])
    assert tally["kinds"] == {"right_answer_wrong_steps": 1} and tally["share_of_wrong"] == {}
