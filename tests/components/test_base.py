"""The base stage on the tiny model: a loadable HF model with a chat template."""

from pathlib import Path

import pytest

from components.modeling import load_model, load_tokenizer

pytestmark = pytest.mark.slow


def test_base_model_is_a_loadable_hf_model_with_a_chat_template(tiny_base_model):
    tokenizer = load_tokenizer(tiny_base_model)
    model = load_model(tiny_base_model)
    assert (Path(tiny_base_model) / "model.safetensors").is_file()
    ids = tokenizer("12+34=46", add_special_tokens=False)["input_ids"]
    # digits are one token each, so arithmetic is learnable; the reloaded tokenizer keeps that
    assert tokenizer.convert_ids_to_tokens(ids)[:2] == ["1", "2"]
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>assistant\n")
    assert model.config.vocab_size == len(tokenizer)


def test_a_base_that_did_not_learn_the_sums_says_so_from_the_validation_split(tmp_path, tiny_data, capsys):
    from components import base
    from components.artifacts import read_records

    sums = base.validation_sums(tiny_data["val"])
    val = read_records(tiny_data["val"])
    assert len(sums) == len(val) and all(p["prompt"].endswith("=") for p in sums)
    assert all(eval(p["prompt"][:-1]) == int(p["answer"]) for p in sums)  # noqa: S307 - digits and +/- only
    assert sums[0]["prompt"] in val[0]["solution"], "each validation solution's first step"

    cfg = base.Config(steps=5, hidden_size=32, intermediate_size=64, layers=1, warmup_steps=1, restarts=1)
    inputs = {"pretrain": tiny_data["pretrain"], "sft": tiny_data["sft"], "val": tiny_data["val"]}
    result = base.run(cfg, inputs, str(tmp_path / "b"))
    assert result.metrics["val_probe_accuracy"] < 0.1, "five steps teach no sums"
    assert result.info["arithmetic_learned"] is False
    assert f"completes {result.metrics['val_probe_accuracy']:.3f} of {len(sums)} validation sums" in result.info["warning"]
    assert "base.min_val_probe 0.5" in result.info["warning"] and "base.seed" in result.info["warning"]
    # under the floor, it pretrained once more from another seed, kept the better one and says both were tried
    assert [t["seed"] for t in result.info["tries"]] == [0, 1000] and result.metrics["pretraining_tries"] == 2
    assert "the best of 2 pretrainings" in result.info["warning"]
    assert "pretraining again from seed 1000 (restart 1 of 1)" in capsys.readouterr().out, "said when it happens, not at the end"
    assert result.info["seed_kept"] == max(result.info["tries"], key=lambda t: t["val_probe_accuracy"])["seed"]

    learned = base.arithmetic_check(cfg, {"val_probe_accuracy": 0.95, "final_loss": 0.03}, sums)
    assert learned == {"arithmetic_learned": True}, "a base over the floor passes without a warning"
    no_val = base.run(cfg, {k: v for k, v in inputs.items() if k != "val"}, str(tmp_path / "n"))
    assert "val_probe_accuracy" not in no_val.metrics and "warning" not in no_val.info and "tries" not in no_val.info
    from flows.post_training import base_tries_plot

    assert base_tries_plot(cfg, no_val) == {}, "no sums, no tries to plot"
    over_the_floor = base.run(cfg.model_copy(update={"min_val_probe": 0.0}), inputs, str(tmp_path / "f"))
    assert over_the_floor.metrics["pretraining_tries"] == 1 and over_the_floor.info["arithmetic_learned"] is True, "no restart needed"


def test_a_pretraining_still_on_the_plateau_part_way_is_abandoned_for_the_next_seed(tmp_path, tiny_data, capsys):
    """base.abandon_below at base.abandon_at: a stuck seed costs part of a pretraining, not all; the last try always finishes."""
    from components import base

    # abandon_below 1.0: every try under it at half its steps, so each one with a restart left is abandoned
    cfg = base.Config(
        steps=10, hidden_size=32, intermediate_size=64, layers=1, warmup_steps=1, restarts=2, probe_every=2, abandon_below=1.0
    )
    inputs = {"pretrain": tiny_data["pretrain"], "sft": tiny_data["sft"], "val": tiny_data["val"]}
    result = base.run(cfg, inputs, str(tmp_path / "b"))
    first, second, last = result.info["tries"]
    assert first["abandoned_at_step"] == second["abandoned_at_step"] == 6, "the first check at or past half of 10 steps"
    assert [step for step, _ in first["val_probe_curve"]] == [2, 4, 6]
    assert "abandoned_at_step" not in last and [step for step, _ in last["val_probe_curve"]] == [2, 4, 6, 8, 10]
    assert last["val_probe_accuracy"] == last["val_probe_curve"][-1][1]
    assert result.info["seed_kept"] == 2000, "the finished pretraining is kept over the abandoned ones"
    assert len(result.curves["pretrain_loss"]) == 1, "the kept base's own loss curve: 10 steps, one point"
    from flows.post_training import base_tries_plot

    plotted = base_tries_plot(cfg, result)  # what the flow logs to the base's MLflow run
    assert Path(plotted["pretraining"]).stat().st_size > 1000 and Path(plotted["pretraining"]).parent == tmp_path / "b"
    printed = capsys.readouterr().out
    assert "[base] seed 0, step 6 of 10: answers" in printed and "under base.abandon_below 1.0 at 50% of its steps: abandoned" in printed
    assert "[base] seed 2000, step 10" not in printed, "the end's share is the result, not a progress line"
    assert "[base] seed 0 pretraining again from seed 1000 (restart 1 of 2)" in printed, "the abandon line said why: not again"

    never = base.run(cfg.model_copy(update={"abandon_below": 0.0, "restarts": 1}), inputs, str(tmp_path / "n"))
    assert all("abandoned_at_step" not in t for t in never.info["tries"]), "abandon_below 0 never abandons"


def test_validation_solutions_that_are_not_sums_give_nothing_to_check(tmp_path):
    from components import base
    from components.artifacts import write_records

    path = write_records(tmp_path / "val.jsonl", [{"prompt": [{"role": "user", "content": "Capital of France?"}], "answer": "Paris"}])
    assert base.validation_sums(str(path)) == []


def test_a_scratch_base_without_a_pretraining_corpus_says_what_to_set(tmp_path):
    from components import base
    from components.artifacts import DataError

    with pytest.raises(DataError, match=r"no pretraining corpus \(input `pretrain`\): set data.n_pretrain above 0"):
        base.run(base.Config(), {"sft": str(tmp_path / "sft.jsonl")}, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists(), "nothing written"
