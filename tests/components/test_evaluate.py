"""The evaluation stage on the tiny model: every metric, with and without a reward model and a base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components import evaluate
from tests.conftest import tiny_overrides

RM_METRICS = ("bon@1", "bon@2", "wmaj@1", "wmaj@2", "mean_reward", "reward_accuracy_gap")


@pytest.mark.slow
def test_evaluate_reports_every_metric(tmp_path, tiny_base_model, tiny_data):
    cfg = evaluate.Config(**{**tiny_overrides()["evaluate"], "limit": 8})
    result = evaluate.run(cfg, {"model": tiny_base_model, "eval": tiny_data["eval"], "probe": tiny_data["probe"]}, str(tmp_path))
    for key in ("pass@1", "pass@2", "maj@1", "maj@2", "sample_accuracy", "format_rate", "probe_accuracy"):
        assert 0.0 <= result.metrics[key] <= 1.0, key
    assert result.metrics["pass@2"] >= result.metrics["sample_accuracy"]
    assert 0 < result.metrics["mean_length"] <= cfg.max_new_tokens
    assert result.metrics["n_problems"] == 8
    rows = [json.loads(line) for line in Path(result.outputs["predictions"]).read_text().splitlines()]
    assert len(rows) == 8 and len(rows[0]["sample_answers"]) == 2


@pytest.mark.slow
def test_evaluate_with_reward_model_and_base_reports_every_metric(tmp_path, tiny_sft_model, tiny_base_model, tiny_reward_model, tiny_data):
    cfg = evaluate.Config(**{**tiny_overrides()["evaluate"], "limit": 6})
    inputs = {
        "model": tiny_sft_model,
        "eval": tiny_data["eval"],
        "probe": tiny_data["probe"],
        "reward_model": tiny_reward_model,
        "base_model": tiny_base_model,
    }
    result = evaluate.run(cfg, inputs, str(tmp_path))
    metrics = result.metrics
    # ece only where some sample gave an answer (components.metrics): the tiny model may give none on 6 problems
    assert "ece" not in metrics or 0.0 <= metrics["ece"] <= 1.0
    for key in ("pass@1", "pass@2", "maj@2", "sample_accuracy", "probe_accuracy", "base_probe_accuracy", *RM_METRICS):
        assert 0.0 <= metrics[key] <= 1.0 or key in ("mean_reward", "reward_accuracy_gap"), (key, metrics[key])
    assert -1.0 <= metrics["reward_accuracy_gap"] <= 1.0
    assert metrics["forgetting"] == pytest.approx(metrics["base_probe_accuracy"] - metrics["probe_accuracy"])
    assert metrics["bon@1"] == metrics["maj@1"]  # one sample: nothing to choose between

    rows = [json.loads(line) for line in Path(result.outputs["predictions"]).read_text().splitlines()]
    assert len(rows) == 6 and all(len(r["sample_rewards"]) == 2 and "greedy_correct" in r for r in rows)
    flat = [x for r in rows for x in r["sample_rewards"]]
    assert metrics["mean_reward"] == pytest.approx(sum(flat) / len(flat))

    curve = json.loads(Path(result.outputs["tts_curve"]).read_text())
    assert curve["n"] == [1, 2] and set(curve) == {"n", "pass@N", "maj@N", "bon@N", "wmaj@N"}
    assert curve["pass@N"][-1] == pytest.approx(metrics["pass@2"])
    assert Path(result.outputs["tts_plot"]).stat().st_size > 1000
    assert Path(result.outputs["reliability_plot"]).stat().st_size > 1000
    report = Path(result.outputs["report"]).read_text()
    assert "| bon@2 |" in report and "![test-time scaling](tts_curve.png)" in report
    assert "![reliability diagram](reliability.png)" in report


@pytest.mark.slow
def test_forgetting_from_a_base_evaluation_needs_no_base_model(tmp_path, tiny_sft_model, tiny_data):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "metrics.json").write_text(json.dumps({"probe_accuracy": 1.0}))
    cfg = evaluate.Config(**{**tiny_overrides()["evaluate"], "limit": 2, "num_samples": 1, "ks": [1]})
    inputs = {
        "model": tiny_sft_model,
        "eval": tiny_data["eval"],
        "probe": tiny_data["probe"],
        "base_metrics": str(tmp_path / "base" / "metrics.json"),
    }
    result = evaluate.run(cfg, inputs, str(tmp_path / "out"))
    assert result.metrics["forgetting"] == pytest.approx(1.0 - result.metrics["probe_accuracy"])
    assert not set(RM_METRICS) & set(result.metrics)  # no reward model: absent, not zero


@pytest.mark.slow
def test_without_a_probe_set_forgetting_is_absent_and_says_why(tmp_path, tiny_base_model, tiny_data):
    cfg = evaluate.Config(**{**tiny_overrides()["evaluate"], "limit": 4})
    result = evaluate.run(cfg, {"model": tiny_base_model, "eval": tiny_data["eval"]}, str(tmp_path))
    assert "probe_accuracy" not in result.metrics and "forgetting" not in result.metrics
    assert result.info["forgetting"].startswith("not measured: no probe set")
    with_probe = evaluate.run(cfg, {"model": tiny_base_model, "eval": tiny_data["eval"], "probe": tiny_data["probe"]}, str(tmp_path / "p"))
    assert with_probe.info["forgetting"].startswith("not measured: no base model")


@pytest.mark.parametrize(
    ("reply", "answer", "named"),
    [
        ("The capital of France is Paris.", "Paris", True),
        ("paris, of course", "Paris", True),
        ("The Parisian climate is mild.", "Paris", False),  # a word, not a prefix
        ("<think>\nParis? No.\n</think>\nThe answer is \\boxed{Lyon}.", "Paris", False),  # what it states, not what it mused
        ("The largest mammal is the Blue Whale.", "blue whale", True),
        ("It is 23+15=38.", "38", True),
        ("It is 138.", "38", False),
    ],
)
def test_a_chat_probe_counts_when_the_reply_names_its_answer(reply, answer, named):
    assert evaluate.names_answer(reply, answer) is named


class _ChatTokenizer:
    def apply_chat_template(self, turns, tokenize, add_generation_prompt):
        return "".join(f"<{t['role']}>{t['content']}" for t in turns) + "<assistant>"


def test_probe_results_ask_bare_probes_bare_and_chat_probes_through_the_template(monkeypatch):
    calls = []

    def fake_generate(model, tokenizer, prompts, max_new_tokens, batch_size, desc):
        calls.append((list(prompts), max_new_tokens))
        return [["38 and more"] if p == "23+15=" else ["It is Paris."] if "France" in p else ["I do not know."] for p in prompts]

    monkeypatch.setattr(evaluate, "generate", fake_generate)
    probes = [
        {"prompt": "23+15=", "answer": "38"},
        {"prompt": [{"role": "user", "content": "Capital of France?"}], "answer": "Paris"},
        {"prompt": [{"role": "user", "content": "Capital of Peru?"}], "answer": "Lima"},
    ]
    results = evaluate.probe_results(None, _ChatTokenizer(), probes, evaluate.Config(probe_max_new_tokens=40))
    assert [r["correct"] for r in results] == [True, True, False]
    assert [r["reply"] for r in results] == ["38 and more", "It is Paris.", "I do not know."]
    assert calls == [
        (["23+15="], evaluate.BARE_PROBE_TOKENS),
        (["<user>Capital of France?<assistant>", "<user>Capital of Peru?<assistant>"], 40),
    ]
    assert evaluate.probe_accuracy(results) == pytest.approx(2 / 3)


def test_a_greedy_only_config_takes_one_completion_a_problem_and_keeps_the_other_settings():
    cfg = evaluate.Config.greedy_only(limit=5)
    assert (cfg.num_samples, cfg.ks, cfg.limit, cfg.temperature) == (1, [1], 5, evaluate.Config().temperature)
