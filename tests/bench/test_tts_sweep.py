"""bench/tts_sweep.py's choice: the temperature whose vote is best, and none when no vote beats greedy."""

from tests.bench import load_script


def test_the_best_vote_is_chosen_when_it_beats_greedy_decoding():
    runs = {"0.2": {"pass@1": 0.50, "maj@8": 0.52}, "0.4": {"pass@1": 0.50, "maj@8": 0.58}, "0.8": {"pass@1": 0.50, "maj@8": 0.58}}
    assert load_script("tts_sweep").choose(runs, "maj@8")["chosen"] == 0.4  # the colder of a tie


def test_nothing_is_chosen_when_the_best_vote_only_matches_greedy_decoding():
    """The coldest temperature's samples copy the greedy answer: its vote ties greedy and must not win by it."""
    runs = {"0.1": {"pass@1": 0.745, "maj@8": 0.745}, "0.4": {"pass@1": 0.745, "maj@8": 0.70}}
    choice = load_script("tts_sweep").choose(runs, "maj@8")
    assert choice["chosen"] is None and "T=0.1" in choice["reason"]
