"""Selecting and ranking sampled answers: verified, formatted, unique; the reward model's favourite first."""

import pytest

from components import sampling

pytestmark = pytest.mark.slow


def test_selection_keeps_only_verified_formatted_unique_answers():
    prompt = [{"role": "user", "content": "q"}]
    good = "<think>\n2+3=5\n</think>\nThe answer is \\boxed{5}."
    samples = [good, good.replace("\n", " \n"), "<think>\n2+3=6\n</think>\n\\boxed{6}", "\\boxed{5}", "nothing"]
    found = sampling.select(prompt, "5", samples, require_format=True)
    assert found.kept == [good]  # the second is the same text up to whitespace; "\\boxed{5}" alone is unformatted
    assert found.n_correct == 3 and found.n_duplicates == 1
    assert len(found.wrong) == 2
    pairs = sampling.to_preference_pairs([found])
    assert pairs[0]["chosen"][0]["content"] == good and "6" in pairs[0]["rejected"][0]["content"]


def test_a_right_answer_reached_through_wrong_steps_is_not_kept():
    prompt = [{"role": "user", "content": "q"}]
    faithful = "<think>\n23+15=38\n38-7=31\n</think>\nThe answer is \\boxed{31}."
    cancelling = "<think>\n23+15=39\n39-7=31\n</think>\nThe answer is \\boxed{31}."  # two slips that cancel
    found = sampling.select(prompt, "31", [cancelling, faithful], require_format=True)
    assert found.kept == [faithful] and found.n_correct == 2 and found.n_wrong_steps == 1
    assert found.wrong == []  # its final answer is right: not a rejected answer either
    unchecked = sampling.select(prompt, "31", [cancelling, faithful], require_format=True, check_steps=False)
    assert unchecked.kept == [cancelling, faithful] and unchecked.n_wrong_steps == 0


def test_ranking_prefers_the_reward_models_favourite():
    class Scorer:
        def score(self, prompts, responses):
            return [float(len(r)) for r in responses]  # a "reward model" that likes long answers

    found = sampling.Candidates(prompt=[], answer="5", kept=["short", "much longer", "mid size"])
    sampling.rank([found], keep_per_prompt=2, scorer=Scorer())
    assert found.kept == ["much longer", "mid size"]
    found = sampling.Candidates(prompt=[], answer="5", kept=["much longer", "short"])
    sampling.rank([found], keep_per_prompt=1)
    assert found.kept == ["short"]  # no reward model: the shortest verified answer
