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
    over_the_floor = base.run(cfg.model_copy(update={"min_val_probe": 0.0}), inputs, str(tmp_path / "f"))
    assert over_the_floor.metrics["pretraining_tries"] == 1 and over_the_floor.info["arithmetic_learned"] is True, "no restart needed"


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
