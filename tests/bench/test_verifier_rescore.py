"""bench/verifier_rescore.py gives each seed offset's verifier and evaluation the seeds a whole run at that offset would have."""

from tests.bench import load_script


def test_each_offset_shifts_the_verifier_and_evaluation_seeds_as_the_seed_spread_does_and_leaves_the_task_alone():
    bench = load_script("verifier_rescore")
    base, shifted = bench.offset_params(0), bench.offset_params(2)
    assert shifted.verifier.seed == base.verifier.seed + 2 and shifted.evaluate.seed == base.evaluate.seed + 2
    assert shifted.data.seed == base.data.seed and shifted.base.seed == base.base.seed, "the task and the base stay the seed spread's"
    assert shifted.verifier.on_policy_samples == base.verifier.on_policy_samples == 0, "the params' verifier, not the reward model"
