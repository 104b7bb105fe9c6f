"""The rejection sampling stage on the tiny model: verified unique answers, both datasets written."""

import pytest

from components import rejection_sampling
from components.answers import extract_answer, is_correct
from components.artifacts import read_records
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


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
