"""bench/overhead.py and bench/mfu.py on the tiny model: they compare like with like, and count FLOPs as they say.

The ratios themselves are machine-dependent: these tests check that the plain TRL script trains
exactly the tokens the pipeline's stage trains (so the throughput ratio compares the same work)
and that the FLOP count is the documented formula, never how fast anything is.
"""

from __future__ import annotations

import pytest

from components import alignment, reward_model, sft
from flows.stage_runner import run_metered
from tests.bench import load_script
from tests.conftest import REPO, tiny_overrides


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["sft", "reward_model", "alignment"])
def test_the_plain_trl_script_trains_the_same_tokens_as_the_pipelines_stage(stage, tmp_path, tiny_base_model, tiny_sft_model, tiny_data):
    overrides = tiny_overrides()
    cfg, model, data = {
        "sft": (sft.Config(**{**overrides["sft"], "max_steps": 4}), tiny_base_model, tiny_data["sft"]),
        "reward_model": (
            reward_model.Config(**overrides["reward_model"], scorer="head"),
            tiny_sft_model,
            tiny_data["prefs"],
        ),  # as overhead.py pins it
        "alignment": (alignment.Config(**overrides["alignment"]), tiny_sft_model, tiny_data["prefs"]),
    }[stage]
    inputs = {"model": model, ("sft" if stage == "sft" else "prefs"): data}
    through = run_metered(stage, cfg, inputs, str(tmp_path / "stage")).info["usage"]
    alone = load_script("overhead").plain(stage, cfg, model, data, tmp_path / "plain")
    assert through["tokens_trained"] > 0 and alone["tokens"] == through["tokens_trained"]
    assert 0 < through["train_seconds"] <= through["wall_seconds"], "the training loop's time is inside the stage's"


def test_flops_per_token_are_six_per_linear_weight_plus_attention(tiny_base_model):
    import torch
    from transformers import AutoModelForCausalLM

    counted = load_script("mfu").flops_per_token(tiny_base_model, mean_length=50)
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert counted["linear_parameters"] == linear, "the LM head is a linear layer too (and is counted)"
    assert counted["total"] == 6 * linear + 12 * model.config.num_hidden_layers * model.config.hidden_size * 50


def test_the_matmul_peak_is_a_rate_of_the_size_asked():
    assert load_script("mfu").matmul_peak("float32", size=256, repeats=2) > 1e6


def test_batched_and_one_at_a_time_generation_write_the_same_greedy_answers(tiny_base_model, tiny_data):
    from components.dataset_frames import read_dataset
    from components.generation import chat_prompts
    from components.modeling import load_model, load_tokenizer

    bench = load_script("generation")
    tokenizer, model = load_tokenizer(tiny_base_model), load_model(tiny_base_model)
    prompts = chat_prompts(tokenizer, [p["prompt"] for p in read_dataset(tiny_data["eval"], "eval")[:6]])
    batched = bench.timed_generation(model, tokenizer, prompts, max_new_tokens=8, batch_size=6)
    single = bench.timed_generation(model, tokenizer, prompts, max_new_tokens=8, batch_size=1)
    assert batched["outputs"] == single["outputs"], "left padding changes nothing a greedy decoder writes"
    assert batched["tokens"] == single["tokens"] > 0


def test_the_sampling_sweep_times_the_evaluations_own_sampling_at_each_batch_size(tiny_base_model, tiny_data):
    from components import evaluate
    from components.dataset_frames import read_dataset
    from components.generation import chat_prompts
    from components.modeling import load_model, load_tokenizer

    tokenizer, model = load_tokenizer(tiny_base_model), load_model(tiny_base_model)
    prompts = chat_prompts(tokenizer, [p["prompt"] for p in read_dataset(tiny_data["val"], "val")[:4]])
    cfg = evaluate.Config(num_samples=2, ks=[1, 2], max_new_tokens=6)
    rows = load_script("generation").sampling_sweep(model, tokenizer, prompts, cfg, [2, 8])
    assert [row["batch_size"] for row in rows] == [2, 8]
    assert all(row["tokens"] > 0 and row["tokens_per_second"] > 0 for row in rows)
    assert rows[0]["relative_to_first"] == 1.0


def test_the_readmes_performance_table_is_the_one_the_committed_results_give():
    table = load_script("perf_table")
    readme = (REPO / "README.md").read_text()
    assert table.rendered_readme(readme) == readme, "README.md's table is stale: run python bench/perf_table.py --write"


def test_the_whole_recipe_orchestration_row_divides_the_flow_wall_by_the_stages_walls():
    row = load_script("perf_table").whole_recipe_row(
        {"pipeline_seconds": 103.0, "stage_seconds": {"a": 60.0, "b": 40.0}, "commit": "abc1234"}
    )
    assert "| 1.030 | <= 1.03 | yes |" in row and "103 s / 100 s" in row and "abc1234" in row
    row = load_script("perf_table").whole_recipe_row({"pipeline_seconds": 110.0, "stage_seconds": {"a": 100.0}, "commit": "abc1234"})
    assert row.endswith("| 1.100 | <= 1.03 | no |")


def test_the_recipe_time_row_needs_both_the_time_and_the_final_models_pass_at_1():
    row_for = load_script("perf_table").recipe_time_row

    def demo(seconds, pass_at_1):
        return {
            "pipeline_seconds": seconds,
            "final_stage": "alignment",
            "held_out": {"alignment": {"pass@1": pass_at_1}},
            "commit": "abc1234",
        }

    assert row_for(demo(590.0, 0.760)).endswith("| 590 s | <= 600 s | yes |")
    assert row_for(demo(1336.0, 0.760)).endswith("| 1336 s | <= 600 s | no |")
    assert row_for(demo(590.0, 0.500)).endswith("| 590 s | <= 600 s | no |")  # fast, but at the model's cost
    assert "final held-out pass@1 0.500" in row_for(demo(590.0, 0.500))


def test_the_sampling_sweep_row_reads_each_batch_against_the_first_run_and_shows_a_repeat():
    sweep = {
        "num_samples": 8,
        "temperature": 0.4,
        "max_new_tokens": 96,
        "prompts": 128,
        "cpu": "Some CPU",
        "cpu_flags": "avx2",
        "runs": [
            {"batch_size": 64, "tokens_per_second": 1000},
            {"batch_size": 256, "tokens_per_second": 1500},
            {"batch_size": 64, "tokens_per_second": 1100},
        ],
    }
    row = load_script("perf_table").sampling_sweep_row(sweep)
    assert "| 256: 1.50x, 64: 1.10x | - | - |" in row and "against batch 64 (1,000 tokens/s)" in row and "Some CPU" in row
