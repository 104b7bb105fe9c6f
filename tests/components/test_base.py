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
