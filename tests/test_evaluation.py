"""The evaluation component on the tiny model, and the `evaluate-model` flow on a real registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components import evaluate
from tests.conftest import tiny_overrides

RM_METRICS = ("bon@1", "bon@2", "wmaj@1", "wmaj@2", "mean_reward", "reward_accuracy_gap")


@pytest.fixture(scope="module")
def tiny_reward_model(tmp_path_factory, tiny_sft_model) -> str:
    """An untrained one-output head on the tiny SFT model: a valid scorer, in seconds."""
    from transformers import AutoModelForSequenceClassification

    from components.modeling import load_tokenizer

    out = tmp_path_factory.mktemp("tiny-rm")
    tokenizer = load_tokenizer(tiny_sft_model)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_sft_model, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last non-pad token
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


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
    for key in ("pass@1", "pass@2", "maj@2", "sample_accuracy", "ece", "probe_accuracy", "base_probe_accuracy", *RM_METRICS):
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
    report = Path(result.outputs["report"]).read_text()
    assert "| bon@2 |" in report and "![test-time scaling](tts_curve.png)" in report


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


# ---------------------------------------------------------------- the evaluate-model flow: bad input


def test_version_and_alias_are_exactly_one():
    from pydantic import ValidationError

    from flows.evaluate_model import EvaluateModelParams

    with pytest.raises(ValidationError, match=r"version/alias: give exactly one of `version` or `alias` for model 'm' \(got neither\)"):
        EvaluateModelParams(model_name="m")
    with pytest.raises(ValidationError, match=r"got version='1' and alias='champion'"):
        EvaluateModelParams(model_name="m", version="1", alias="champion")
    with pytest.raises(ValidationError, match=r"version\n.*should match pattern"):
        EvaluateModelParams(model_name="m", version="latest")
    with pytest.raises(ValidationError, match="evaluate_base: set base_model too"):
        EvaluateModelParams(model_name="m", alias="champion", evaluate_base=True)
    assert EvaluateModelParams(model_name="m", alias="champion").target().label() == "models:/m@champion"


def test_model_refs_name_a_registered_version_or_alias_or_a_path():
    from pydantic import ValidationError

    from flows.evaluate_model import ModelRef

    assert ModelRef.parse("models:/rm/3") == ModelRef(name="rm", version="3")
    assert ModelRef.parse("models:/rm@best") == ModelRef(name="rm", alias="best")
    assert ModelRef.parse("artifacts/rm/model") == ModelRef(path="artifacts/rm/model")
    with pytest.raises(ValueError, match="expected models:/NAME/VERSION or models:/NAME@ALIAS"):
        ModelRef.parse("models:/rm")
    with pytest.raises(ValidationError, match="name: give exactly one of `version` or `alias` for model 'rm'"):
        ModelRef(name="rm")
    with pytest.raises(ValidationError, match="give either `name`"):
        ModelRef(name="rm", alias="best", path="x")


def test_cli_reports_bad_parameters_before_doing_anything(capsys):
    from flows.evaluate_model import main

    assert main(["--model", "m"]) == 2
    assert "give exactly one of `version` or `alias` for model 'm' (got neither)" in capsys.readouterr().err
    assert main(["--model", "m", "--alias", "champion", "--reward-model", "models:/rm"]) == 2
    assert "expected models:/NAME/VERSION" in capsys.readouterr().err


def test_unknown_model_version_or_alias_is_named_with_what_exists(tmp_path):
    from components import tracking
    from components.registry import RegistryLookupError, resolve_model_version  # `registry` is a fixture here
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.setup(uri, "lookup", str(tmp_path / "artifacts"))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")
    client.create_model_version("m", source=str(tmp_path), run_id=None)
    client.set_registered_model_alias("m", "champion", "1")
    with pytest.raises(RegistryLookupError, match=r"no registered model named 'nope' .* \(registered: m\)"):
        resolve_model_version("nope", alias="champion")
    with pytest.raises(RegistryLookupError, match=r"model 'm' has no version '7' \(versions: 1\)"):
        resolve_model_version("m", version="7")
    with pytest.raises(RegistryLookupError, match=r"model 'm' has no alias 'best' \(aliases: champion\)"):
        resolve_model_version("m", alias="best")
    assert str(resolve_model_version("m", alias="champion").version) == "1"


# ---------------------------------------------------------------- the evaluate-model flow on a real registry


@pytest.fixture
def registry(tmp_path, tiny_sft_model):
    """A SQLite MLflow registry holding the tiny SFT model as version 1, alias champion."""
    import mlflow
    from components import tracking
    from components.registry import register_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.setup(uri, "training", str(tmp_path / "mlflow-artifacts"))
    with mlflow.start_run():
        version, _ = register_model(tiny_sft_model, "tiny", {"model_digest": "d"}, {"pass@1": 0.0})
    mlflow.MlflowClient().set_registered_model_alias("tiny", "champion", version)
    return uri


@pytest.mark.slow
def test_evaluate_model_flow_by_alias_and_by_version(tmp_path, registry, prefect_server, tiny_base_model, tiny_reward_model, tiny_data):
    from flows.evaluate_model import EvaluateModelParams, ModelRef, evaluate_model
    from mlflow import MlflowClient

    common = {
        "model_name": "tiny",
        "tracking_uri": registry,
        "artifact_location": str(tmp_path / "mlflow-artifacts"),
        "evaluate": evaluate.Config(**{**tiny_overrides()["evaluate"], "limit": 4}),
        "eval_data": tiny_data["eval"],
        "probe_data": tiny_data["probe"],
        "out_dir": str(tmp_path / "out"),
    }
    by_alias = evaluate_model(
        EvaluateModelParams(
            **common,
            alias="champion",
            reward_model=ModelRef(path=tiny_reward_model),
            base_model=ModelRef(path=tiny_base_model),
            evaluate_base=True,
        )
    )
    assert by_alias["model"] == {"name": "tiny", "version": "1", "alias": "champion"}
    metrics = by_alias["metrics"]
    assert {"pass@1", "maj@2", "bon@2", "wmaj@2", "ece", "forgetting", "reward_accuracy_gap"} <= set(metrics)
    report = Path(by_alias["report"])
    text = report.read_text()
    assert "models:/tiny/1 (alias champion)" in text and "## Accuracy by stage" in text and "| metric | base | tiny v1 |" in text
    assert (report.parent / "tts_curve.png").is_file() and (report.parent / "accuracy_by_stage.png").is_file()

    client = MlflowClient(tracking_uri=registry, registry_uri=registry)
    run = client.get_run(by_alias["mlflow_run_id"])
    assert run.data.tags["model_name"] == "tiny" and run.data.tags["model_version"] == "1" and run.data.tags["model_alias"] == "champion"
    assert run.data.metrics["bon_at_2"] == metrics["bon@2"] and "base.pass_at_1" in run.data.metrics
    assert [m.step for m in client.get_metric_history(run.info.run_id, "tts.maj")] == [1, 2]
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/report.md", "report/tts_curve.png", "report/accuracy_by_stage.png"} <= logged
    assert client.list_artifacts(run.info.run_id, "evaluation")

    by_version = evaluate_model(EvaluateModelParams(**common, version="1"))
    assert by_version["model"]["version"] == "1" and "bon@2" not in by_version["metrics"]
    tags = client.get_model_version("tiny", "1").tags
    assert tags["eval.run_id"] == by_version["mlflow_run_id"]  # the latest evaluation
    assert float(tags["eval.pass_at_1"]) == pytest.approx(by_version["metrics"]["pass@1"], abs=1e-6)
    assert len(list((tmp_path / "out" / "models" / "tiny").iterdir())) == 1  # downloaded once, reused

    from components.registry import RegistryLookupError

    with pytest.raises(RegistryLookupError, match="no registered model named 'nope'"):
        evaluate_model(EvaluateModelParams(**{**common, "model_name": "nope"}, alias="champion"))


def test_prefect_yaml_deploys_the_flow_with_a_typed_form():
    import yaml
    from prefect.utilities.callables import parameter_schema

    from flows.evaluate_model import evaluate_model

    spec = yaml.safe_load(Path("prefect.yaml").read_text())
    deployment = next(d for d in spec["deployments"] if d["name"] == "evaluate-model")
    assert deployment["entrypoint"] == "flows/evaluate_model.py:evaluate_model"
    assert deployment["work_pool"]["name"] == "local-process"
    definitions = parameter_schema(evaluate_model).model_dump_for_openapi()["definitions"]
    form = definitions["EvaluateModelParams"]["properties"]
    assert {"model_name", "version", "alias", "reward_model", "base_model", "evaluate"} <= set(form)
    assert definitions["EvaluateConfig"]["properties"]["num_samples"]["minimum"] == 1
