"""How a reward model scores: the log-likelihood scorer's hook, through a LoRA wrap and a save (fast: a random one-layer LM)."""

import pytest

from components import reward_model, scoring


def _tiny_lm():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config).eval()


def _log_likelihood(model, ids) -> float:
    """By hand: the sum of log p(token | the tokens before it), every token after the first."""
    import torch

    with torch.no_grad():
        log_probs = model(ids).logits[0, :-1].log_softmax(-1)
    return sum(log_probs[t, ids[0, t + 1]].item() for t in range(ids.shape[1] - 1))


def test_the_log_likelihood_scorer_scores_a_sequence_by_its_summed_token_log_probabilities():
    import torch

    model = _tiny_lm()
    ids = torch.tensor([[5, 6, 7, 8]])
    expected = _log_likelihood(model, ids)
    scoring.use_scorer(model, "log_likelihood")
    with torch.no_grad():
        scored = model(input_ids=ids).logits
        padded = model(input_ids=torch.tensor([[5, 6, 7, 8, 0, 0]]), attention_mask=torch.tensor([[1, 1, 1, 1, 0, 0]])).logits
    assert scored.shape == (1, 1) and model.config.reward_scorer == "log_likelihood"
    assert scored.item() == pytest.approx(expected, abs=1e-5)
    assert padded.item() == pytest.approx(expected, abs=1e-5)  # right padding adds nothing


def test_the_scorer_survives_a_lora_wrap_and_a_save(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 6, 7]])
    wrapped = get_peft_model(_tiny_lm(), LoraConfig(task_type="CAUSAL_LM", target_modules=["q_proj"]))
    scoring.use_scorer(wrapped, "log_likelihood")
    with torch.no_grad():
        scored = wrapped(input_ids=ids).logits.item()
    wrapped.merge_and_unload().save_pretrained(tmp_path)
    assert scoring.saved_scorer(str(tmp_path)) == "log_likelihood"
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    scoring.use_scorer(reloaded, scoring.saved_scorer(str(tmp_path)))
    with torch.no_grad():
        assert reloaded(input_ids=ids).logits.item() == pytest.approx(scored, abs=1e-5)


def test_an_unknown_scorer_is_refused_by_name():
    with pytest.raises(ValueError, match="reward_model.scorer: 'mean'"):
        scoring.use_scorer(_tiny_lm(), "mean")
    with pytest.raises(Exception, match="scorer"):
        reward_model.Config(scorer="mean")
