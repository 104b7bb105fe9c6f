"""The rejection sampling stage: verified unique answers on the tiny model (slow), both datasets written, the kept answers' weight."""

import json

import pytest

from components import rejection_sampling
from components.answers import extract_answer, is_correct
from components.artifacts import read_records
from tests.conftest import tiny_overrides


@pytest.mark.slow
def test_rejection_sampling_keeps_verified_unique_answers_and_writes_both_datasets(tmp_path, tiny_sft_model, tiny_data):
    cfg = rejection_sampling.Config(**tiny_overrides()["rejection_sampling"])
    inputs = {"model": tiny_sft_model, "prompts": tiny_data["rl"], "sft": tiny_data["sft"]}
    result = rejection_sampling.run(cfg, inputs, str(tmp_path))
    stats = result.metrics
    assert stats["samples"] == 16 and 0.0 <= stats["acceptance_rate"] <= stats["verified_correct_rate"] <= 1.0
    records = read_records(result.outputs["sft"])
    assert len(records) == stats["kept"] + len(read_records(tiny_data["sft"]))
    assert all(r["messages"][-1]["role"] == "assistant" for r in records)
    # what was kept is 100% verified-correct and de-duplicated per prompt (the original SFT data follows it)
    answers = {str(r["prompt"]): str(r["answer"]) for r in read_records(tiny_data["rl"])}
    sampled = records[: int(stats["kept"])]
    assert all(is_correct(extract_answer(r["messages"][-1]["content"]), answers[str(r["messages"][:-1])]) for r in sampled)
    per_prompt = [(str(r["messages"][:-1]), " ".join(r["messages"][-1]["content"].split())) for r in sampled]
    assert len(per_prompt) == len(set(per_prompt)), "no response kept twice for one prompt"


@pytest.mark.parametrize("copies", [1, 3])
def test_verified_copies_weigh_the_kept_answers_in_round_twos_dataset_and_nothing_else(tmp_path, monkeypatch, copies):
    """Fast: the sampler is replaced by two prompts' canned candidates; the dataset and its stats are what is checked."""
    from components.sampling import Candidates

    canned = [
        Candidates([{"role": "user", "content": "1+1?"}], "2", kept=["1+1=2 \\boxed{2}"], wrong=["\\boxed{3}"], n_correct=1),
        Candidates([{"role": "user", "content": "2+3?"}], "5", kept=["2+3=5 \\boxed{5}", "5 \\boxed{5}"], n_correct=2),
    ]
    monkeypatch.setattr(rejection_sampling, "sample_verified", lambda *args, **kwargs: (canned, {"kept": 3.0}, "canned"))
    prompts = tmp_path / "rl.jsonl"
    prompts.write_text('{"prompt": [{"role": "user", "content": "1+1?"}], "answer": "2"}\n' * 2)
    sft = tmp_path / "sft.jsonl"
    original = [
        {"messages": [{"role": "user", "content": f"{n}+0?"}, {"role": "assistant", "content": f"\\boxed{{{n}}}"}]} for n in range(5)
    ]
    sft.write_text("".join(json.dumps(r) + "\n" for r in original))
    cfg = rejection_sampling.Config(verified_copies=copies)
    result = rejection_sampling.run(cfg, {"model": "unused", "prompts": str(prompts), "sft": str(sft)}, str(tmp_path / "out"))
    records = read_records(result.outputs["sft"])
    assert len(records) == 3 * copies + 5
    assert records[3 * copies :] == original, "the original SFT data is written once, after the copies"
    assert [r["messages"][-1]["content"] for r in records[:3]] * copies == [r["messages"][-1]["content"] for r in records[: 3 * copies]]
    assert result.metrics["verified_row_share"] == pytest.approx(3 * copies / (3 * copies + 5))
    assert len(read_records(result.outputs["pairs"])) == 1, "the preference pairs are not copied"


def test_verified_copies_out_of_range_are_refused():
    with pytest.raises(ValueError, match="verified_copies"):
        rejection_sampling.Config(verified_copies=0)
