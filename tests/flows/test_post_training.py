"""The post-training flow without a server: its typed UI form, its deployment, its command line."""

from pathlib import Path

import pytest
import yaml

from tests.conftest import write


def test_flow_parameters_render_as_a_typed_form_with_bounds():
    from prefect.utilities.callables import parameter_schema

    from flows.post_training import post_training

    schema = parameter_schema(post_training).model_dump_for_openapi()
    definitions = schema["definitions"]
    assert "PipelineParams" in definitions
    sft = definitions["SFTConfig"]["properties"]
    assert sft["max_steps"]["minimum"] == 1
    assert sft["learning_rate"]["exclusiveMinimum"] == 0
    assert "description" in sft["resume"]


def test_prefect_yaml_points_at_the_flow():
    spec = yaml.safe_load(Path("prefect.yaml").read_text())
    deployment = next(d for d in spec["deployments"] if d["name"] == "post-training")
    path, function = deployment["entrypoint"].split(":")
    assert Path(path).is_file() and f"def {function}(" in Path(path).read_text()
    assert deployment["work_pool"]["name"] == "local-process"


def test_every_deployment_points_at_a_flow_whose_parameters_are_typed():
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.importtools import import_object

    spec = yaml.safe_load(Path("prefect.yaml").read_text())
    assert {d["name"] for d in spec["deployments"]} >= {"post-training", "promote-model", "retrain"}
    for deployment in spec["deployments"]:
        schema = parameter_schema(import_object(deployment["entrypoint"])).model_dump_for_openapi()
        assert schema.get("definitions"), f"{deployment['name']}: no pydantic model in its parameters"
        assert all(p.get("description") for p in schema["properties"].values()), deployment["name"]
    retrain = next(d for d in spec["deployments"] if d["name"] == "retrain")
    assert retrain["schedules"][0]["cron"] and retrain["schedules"][0]["active"] is False  # armed by `make deploy SCHEDULES=active`


def test_pipeline_cli_reports_a_bad_params_file_before_doing_anything(tmp_path, capsys):
    from flows.post_training import main

    path = write(tmp_path, "base:\n  hidden_size: wide\n")
    assert main(["--params", str(path)]) == 2
    err = capsys.readouterr().err
    assert "base.hidden_size" in err and str(path) in err
    assert not (tmp_path / "data").exists()


def test_user_data_without_a_probe_set_is_evaluated_without_one(tmp_path, monkeypatch):
    """No probe file (common in user data): evaluation runs without it, instead of a KeyError after training."""
    from components.config import StageResult
    from flows import post_training
    from flows.params import PipelineParams
    from flows.report import RunSummary, StageRow

    seen = {}

    def fake_stage(name, cfg, inputs, params, force, label=None, artifacts=None):
        seen.update(name=name, inputs=inputs)
        return StageResult(stage=name, outputs={"metrics": str(tmp_path / "m" / "metrics.json")}, metrics={"pass@1": 0.5}), False

    monkeypatch.setattr(post_training, "stage", fake_stage)
    summary = RunSummary(stages={"sft": StageRow()})
    datasets = {"eval": str(tmp_path / "eval.jsonl"), "sft": str(tmp_path / "sft.jsonl")}
    post_training._evaluate(summary, "sft", str(tmp_path / "model"), datasets, PipelineParams(), force=False)
    assert seen["name"] == "evaluate" and "probe" not in seen["inputs"]
    assert summary.stages["sft"].metrics["eval.pass@1"] == 0.5


@pytest.mark.slow
def test_an_mlflow_server_that_does_not_answer_is_named_after_bounded_retries_before_any_training(tmp_path, capsys, prefect_server):
    import time

    from flows.post_training import main
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    tracking = f"  tracking_uri: {url}\n  max_retries: 2\n  retry_backoff_seconds: 0\n"
    path = write(
        tmp_path, f"tracking:\n{tracking}paths:\n  artifacts_dir: {tmp_path / 'artifacts'}\ndata:\n  out_dir: {tmp_path / 'data'}\n"
    )
    started = time.monotonic()
    assert main(["--params", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: MLflow at {url} did not answer (2 retries)") and "nothing was trained" in err[-1], err[-3:]
    assert time.monotonic() - started < 60, "the retries are bounded"
    assert not (tmp_path / "artifacts").exists() and not (tmp_path / "data").exists()


def test_registration_is_retried_when_the_server_stopped_answering_but_not_after_a_bad_request(monkeypatch):
    from contextlib import nullcontext

    from requests.exceptions import ConnectionError as RequestsConnectionError

    from components.registry import RegistryError
    from flows import post_training
    from flows.params import TrackingConfig

    calls = []

    def flaky(*args, **kwargs):
        calls.append("flaky")
        if len(calls) == 1:
            raise RequestsConnectionError("HTTPConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded")
        return "3", True

    monkeypatch.setattr(post_training, "registry_lock", lambda name: nullcontext())
    monkeypatch.setattr(post_training.registry, "register_model", flaky)
    step = post_training._server_retries(post_training.register_version, TrackingConfig(task_retries=2, task_retry_delay_seconds=0), "r")
    assert step("/m", "name", {}, {}, "llm/v1/chat") == ("3", True) and calls == ["flaky", "flaky"], "retried once, then it answered"

    def refused(*args, **kwargs):
        calls.append("refused")
        raise RegistryError("model 'name' has no version 9")

    monkeypatch.setattr(post_training.registry, "register_model", refused)
    with pytest.raises(RegistryError, match="no version 9"):
        step("/m", "name", {}, {}, "llm/v1/chat")
    assert calls.count("refused") == 1, "a bad request is not retried"
