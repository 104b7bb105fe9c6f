"""Property tests of the GRPO reward functions: they cannot be gamed in the obvious ways."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components import rewards
from components.answers import format_solution

numbers = st.integers(min_value=-999, max_value=999).map(str)
reasoning_lines = st.lists(st.from_regex(r"[0-9]{1,3}[+\-][0-9]{1,3}=[0-9]{1,4}", fullmatch=True), min_size=1, max_size=4)
any_text = st.text(max_size=200)
latin_words = st.lists(st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True), min_size=1, max_size=12)
cjk_words = st.lists(st.text(alphabet="数学答案问题计算", min_size=1, max_size=4), min_size=1, max_size=12)


@given(reasoning_lines, numbers, numbers)
def test_a_wrong_answer_never_earns_accuracy(steps, answer, reference):
    if answer == reference:
        answer = str(int(answer) + 1)
    assert rewards.accuracy([format_solution(steps, answer)], [reference]) == [0.0]


@given(reasoning_lines, numbers)
def test_the_right_answer_in_format_earns_accuracy_and_format(steps, reference):
    response = format_solution(steps, reference)
    assert rewards.accuracy([response], [reference]) == [1.0]
    assert rewards.format_reward([response]) == [1.0]


@given(any_text, numbers)
def test_a_response_without_a_boxed_answer_earns_nothing(text, reference):
    text = text.replace("\\boxed", "")
    assert rewards.accuracy([text], [reference]) == [0.0]
    assert rewards.format_reward([text]) == [0.0]


@given(st.sampled_from(["", " ", "\n", "\n\n  \n"]), numbers)
def test_an_empty_reasoning_block_earns_no_format_reward(blank, answer):
    assert rewards.format_reward([f"<think>{blank}</think>\nThe answer is \\boxed{{{answer}}}."]) == [0.0]
    assert rewards.format_reward(["<think>\n1+1=2\n</think>\nThe answer is \\boxed{}."]) == [0.0]


def test_format_needs_exactly_one_box_after_the_reasoning():
    assert rewards.format_reward(["<think>\n1+1=2\n</think>\n\\boxed{2} or \\boxed{3}"]) == [0.0]
    assert rewards.format_reward(["The answer is \\boxed{2}."]) == [0.0]
    assert rewards.format_reward([[{"role": "assistant", "content": "<think>\n1+1=2\n</think>\n\\boxed{2}"}]]) == [1.0]


@given(latin_words)
def test_language_consistency_is_one_for_pure_target_script(words):
    assert rewards.language_consistency([" ".join(words)]) == [1.0]


@given(latin_words, cjk_words)
def test_language_consistency_falls_with_mixed_text(latin, cjk):
    pure = rewards.script_share(" ".join(latin))
    mixed = rewards.script_share(" ".join(latin + cjk))
    assert mixed < pure
    assert mixed == pytest.approx(len(latin) / (len(latin) + len(cjk)))
    assert rewards.script_share(" ".join(cjk), "cjk") == 1.0


@settings(max_examples=200)
@given(st.lists(st.one_of(any_text, st.builds(format_solution, reasoning_lines, numbers)), min_size=1, max_size=5), numbers)
def test_every_reward_is_bounded(texts, reference):
    ids = [[0] * len(t) for t in texts]
    answers = [reference] * len(texts)
    paid = rewards.accuracy(texts, answers) + rewards.sound_accuracy(texts, answers) + rewards.format_reward(texts)
    for value in paid + rewards.language_consistency(texts):
        assert 0.0 <= value <= 1.0
    for value in rewards.overlong_penalty(ids, max_length=64, buffer=16):
        assert -1.0 <= value <= 0.0


def test_sound_accuracy_pays_a_right_box_only_when_every_written_equation_holds():
    sound = format_solution(["11+20=31", "31-11=20"], "20")
    slips_that_cancel = format_solution(["11+20=30", "30-11=20"], "20")  # 11+20 is not 30; the slips cancel
    wrong_box = format_solution(["11+20=31", "31-11=20"], "21")
    texts = [sound, slips_that_cancel, wrong_box]
    assert rewards.accuracy(texts, ["20"] * 3) == [1.0, 1.0, 0.0]
    assert rewards.sound_accuracy(texts, ["20"] * 3) == [1.0, 0.0, 0.0]
    assert rewards.sound_accuracy(["The answer is \\boxed{20}."], ["20"]) == [1.0]  # no equation: nothing to check


def test_overlong_penalty_is_zero_when_short_and_minus_one_at_the_limit():
    assert rewards.overlong_penalty([[1] * 10, [1] * 56, [1] * 64, [1] * 100], max_length=64, buffer=16) == [0.0, -0.5, -1.0, -1.0]


def test_unknown_reward_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown reward function\(s\) \['accurcy'\].*accuracy"):
        rewards.build(["accurcy"], max_completion_length=64, length_buffer=16)


def test_the_reward_model_reward_needs_a_reward_model():
    with pytest.raises(ValueError, match="needs a trained reward model"):
        rewards.build(["reward_model"], max_completion_length=64, length_buffer=16)


def test_built_functions_carry_their_names_for_trl_logging():
    names = ["accuracy", "sound_accuracy", "format", "language_consistency", "length"]
    built = rewards.build(names, max_completion_length=64, length_buffer=16)
    assert [f.__name__ for f in built] == names


@pytest.mark.parametrize(("boxed", "reference"), [("\\frac{1}{2}", "1/2"), ("\\sqrt{4}", "2"), ("{5}", "5")])
def test_a_nested_boxed_answer_earns_accuracy_and_format(boxed, reference):
    response = format_solution(["1/2=0.5"], boxed)
    assert rewards.accuracy([response], [reference]) == [1.0]
    assert rewards.format_reward([response]) == [1.0]


def test_format_counts_nested_boxes_as_one_box_each():
    assert rewards.format_reward(["<think>\nx\n</think>\n\\boxed{\\frac{1}{2}} or \\boxed{\\frac{1}{3}}"]) == [0.0]
    assert rewards.format_reward(["<think>\nx\n</think>\n\\boxed{\\frac{1}{2}"]) == [0.0]  # never closed


class _FixedScorer:
    def __init__(self, scores, kind="head"):
        self.scores, self.kind = scores, kind

    def score(self, prompts, responses):
        assert len(prompts) == len(responses) == len(self.scores)
        return list(self.scores)


EXTREME_SCORES = [-1000.0, -710.0, -1.0, 0.0, 1.0, 710.0, 1000.0]


def test_reward_model_reward_is_finite_bounded_and_monotone_at_extreme_scores(monkeypatch):
    import math

    from components import scoring

    monkeypatch.setattr(scoring, "RewardScorer", lambda model_dir, batch_size: _FixedScorer(EXTREME_SCORES))
    reward = rewards.RewardModelReward("unused")
    values = reward(["p"] * len(EXTREME_SCORES), ["c"] * len(EXTREME_SCORES))
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values), values
    assert values == sorted(values), values
    assert values[0] == 0.0 and values[-1] == 1.0 and values[3] == 0.5


def test_a_log_likelihood_reward_is_judged_against_the_other_answers_to_its_prompt(monkeypatch):
    """Sums of about -460 would all squash to 0; relative to their prompt's mean they rank, 0.5 at the mean."""
    from components import scoring

    scores = [-460.0, -470.0, -450.0, -300.0, -310.0]
    monkeypatch.setattr(scoring, "RewardScorer", lambda model_dir, batch_size: _FixedScorer(scores, kind="log_likelihood"))
    values = rewards.RewardModelReward("unused")(
        ["p", "p", "p", [{"role": "user", "content": "q"}], [{"role": "user", "content": "q"}]], ["c"] * 5
    )
    assert values[0] == 0.5 and values[1] < 0.5 < values[2]  # prompt p: mean -460
    assert values[3] == pytest.approx(rewards.sigmoid(5.0)) and values[4] == pytest.approx(rewards.sigmoid(-5.0))  # prompt q: mean -305


@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_sigmoid_is_bounded_and_monotone_everywhere(a, b):
    low, high = sorted((a, b))
    assert 0.0 <= rewards.sigmoid(low) <= rewards.sigmoid(high) <= 1.0
    assert rewards.sigmoid(-high) == pytest.approx(1.0 - rewards.sigmoid(high), abs=1e-12)
