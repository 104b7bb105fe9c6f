"""The `evaluate-model` flow: bad input refused before anything runs, and a run on a real registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from components import evaluate
from tests.conftest import tiny_overrides

# ---------------------------------------------------------------- bad input


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


# ---------------------------------------------------------------- on a real registry


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
    # (no ece: the tiny model gives no answer on 4 problems, and a model that never answers has no calibration)
    assert {"pass@1", "maj@2", "bon@2", "wmaj@2", "forgetting", "reward_accuracy_gap"} <= set(metrics)
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
    assert {"report/report.md", "report/tts_curve.png", "report/accuracy_by_stage.png", "report/reliability.png"} <= logged
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
