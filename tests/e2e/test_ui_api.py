"""What the Prefect UI does, through the REST API of a real Prefect server, with a real worker.

`prefect deploy --all` registers prefect.yaml's deployments; every one's parameter form is typed,
described and bounded, and `retrain` carries its cron schedule. A flow run of `promote-model` is
created with a plain HTTP POST (the UI's "Run"), a `process` worker subprocess runs it to
completion, and the champion alias of a file-based MLflow registry moves. Invalid parameters are
refused by the server with a message that names the field. The worker is always stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from components import promotion, tracking
from tests.conftest import REPO, stop

pytestmark = pytest.mark.slow

POOL = "local-process"  # the pool prefect.yaml names
MODEL = "ui-model"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class RetryingTransport(httpx.HTTPTransport):
    """Retries a 503, as Prefect's own client and its UI do: the server's answer to a busy SQLite
    database ("Service Unavailable", retryable), seen under a loaded CI machine."""

    def handle_request(self, request):
        for wait in (0.5, 1, 2, 4, 8):
            response = super().handle_request(request)
            if response.status_code != 503:
                return response
            response.close()
            time.sleep(wait)
        return super().handle_request(request)


@pytest.fixture(scope="module")
def api(prefect_server):
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value().rstrip("/") + "/"
    with httpx.Client(base_url=url, timeout=30, transport=RetryingTransport()) as client:
        yield client


@pytest.fixture(scope="module")
def deployments(api, tmp_path_factory) -> dict[str, dict]:
    """prefect.yaml deployed to the test server, as `make deploy` does; name -> deployment."""
    from prefect.workers.process import ProcessWorker

    response = api.post(
        "work_pools/", json={"name": POOL, "type": "process", "base_job_template": ProcessWorker.get_default_base_job_template()}
    )
    assert response.status_code == 201, response.text
    env = {**os.environ, "PREFECT_API_URL": str(api.base_url).rstrip("/"), "PWD": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = api.post("deployments/filter", json={}).json()
    by_name = {d["name"]: d for d in found}
    # The weekly schedule is deployed inactive; pause the deployment too so no retrain of this checkout can start.
    assert api.patch(f"deployments/{by_name['retrain']['id']}", json={"paused": True}).status_code == 204
    return by_name


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A file-based MLflow registry with two versions of a model; v1 is the champion."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("ui-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracking.setup(uri, "ui-test", str(root / "artifacts"))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL)
    for _ in range(2):
        client.create_model_version(MODEL, source=str(root), run_id=None)
    promotion.promote_version(MODEL, "1", "the first one")
    return uri, client


def test_every_deployment_has_a_typed_described_bounded_form(deployments):
    assert set(deployments) >= {"post-training", "promote-model", "retrain"}
    for name, deployment in deployments.items():
        schema = deployment["parameter_openapi_schema"]
        assert deployment["enforce_parameter_schema"], name
        for parameter, spec in schema["properties"].items():
            assert spec.get("description"), f"{name}.{parameter} has no description"
        models = schema.get("definitions", {})
        assert models, f"{name}: no pydantic model in its parameters"
        fields = [field for model in models.values() for field in model.get("properties", {}).values()]
        assert any({"minimum", "exclusiveMinimum", "maximum", "minLength", "pattern", "enum"} & set(f) for f in fields), name
    request = deployments["promote-model"]["parameter_openapi_schema"]["definitions"]["PromotionRequest"]["properties"]
    assert request["version"]["anyOf"][0]["minimum"] == 1 and request["reason"]["minLength"] == 1
    assert all(request[field]["description"] for field in request)


def test_retrain_is_scheduled_weekly_and_deployed_inactive(deployments):
    schedules = deployments["retrain"]["schedules"]
    assert [s["schedule"]["cron"] for s in schedules] == ["0 3 * * 1"]
    assert [s["active"] for s in schedules] == [False]  # `make deploy SCHEDULES=active` arms it


@pytest.fixture
def worker(api, deployments, tmp_path):
    """A real `prefect worker start` on the pool (it runs flow runs as subprocesses of this checkout)."""
    log = tmp_path / "worker.log"
    env = {**os.environ, "PREFECT_API_URL": str(api.base_url).rstrip("/"), "PREFECT_WORKER_QUERY_SECONDS": "2"}
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process", "--name", "ui-test-worker"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    yield process, log
    stop(process)  # SIGTERM: a SIGINT'd worker waited out the whole 30 s every time (2 min of CI over four tests)


def wait_for_terminal_state(api, flow_run_id: str, worker, timeout: float = 240) -> dict:
    process, log = worker
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"flow_runs/{flow_run_id}").json()
        if run["state_type"] in TERMINAL:
            return run
        assert process.poll() is None, f"worker exited with {process.returncode}:\n{log.read_text()[-3000:]}"
        time.sleep(2)
    raise AssertionError(f"flow run {flow_run_id} not finished after {timeout}s (state {run['state_type']}):\n{log.read_text()[-3000:]}")


def create_run(api, deployment: dict, request: dict) -> httpx.Response:
    """The UI's Run -> Custom run: POST /deployments/{id}/create_flow_run."""
    return api.post(f"deployments/{deployment['id']}/create_flow_run", json={"parameters": {"request": request}})


def test_a_run_created_through_the_api_is_executed_by_a_worker(api, deployments, registry, worker):
    uri, client = registry
    request = {
        "model_name": MODEL,
        "action": "promote",
        "version": 2,
        "reason": "approved in review",
        "requested_by": "ui",
        "tracking_uri": uri,
    }
    response = create_run(api, deployments["promote-model"], request)
    assert response.status_code == 201, response.text
    flow_run_id = response.json()["id"]

    run = wait_for_terminal_state(api, flow_run_id, worker)
    assert run["state_type"] == "COMPLETED", f"{run['state']}\n{worker[1].read_text()[-3000:]}"
    assert str(client.get_model_version_by_alias(MODEL, promotion.CHAMPION).version) == "2"
    tags = client.get_model_version(MODEL, "2").tags
    assert tags["promotion.reason"] == "approved in review" and tags["promotion.requested_by"] == "ui"
    assert tags["promotion.flow_run_id"] == flow_run_id and tags["promotion.previous_champion"] == "1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"reason": None}, "field 'request'. Failure reason: 'reason' is a required property", id="missing reason"),
        pytest.param({"reason": ""}, "field 'request.reason'. Failure reason: '' should be non-empty", id="empty reason"),
        pytest.param({"reason": "  "}, "field 'request.reason'. Failure reason: '  ' does not match", id="blank reason"),
        pytest.param(
            {"version": 0}, "field 'request.version'. Failure reason: 0 is less than the minimum of 1", id="version out of bounds"
        ),
        pytest.param({"version": "two"}, "field 'request.version'. Failure reason: 'two' is not valid", id="version of the wrong type"),
        pytest.param(
            {"action": "delete"},
            "field 'request.action'. Failure reason: 'delete' is not one of ['promote', 'rollback']",
            id="unknown action",
        ),
        pytest.param(
            {"extra": 1},
            "field 'request'. Failure reason: Additional properties are not allowed ('extra' was unexpected)",
            id="unknown field",
        ),
    ],
)
def test_invalid_parameters_are_refused_by_the_server_naming_the_field(api, deployments, change, message):
    request = {"model_name": MODEL, "action": "promote", "version": 2, "reason": "ok", **change}
    request = {key: value for key, value in request.items() if value is not None}
    response = create_run(api, deployments["promote-model"], request)
    assert response.status_code == 409, response.text
    assert f"Error creating flow run: Validation failed for {message}" in response.json()["detail"]


def flow_run_count(api) -> int:
    return api.post("flow_runs/count", json={}).json()


def test_a_huge_value_is_refused_naming_the_field(api, deployments):
    before = flow_run_count(api)
    response = create_run(api, deployments["promote-model"], {"model_name": MODEL, "version": 2, "reason": "x" * 100_000})
    assert response.status_code == 409, response.text[:500]
    assert "Validation failed for field 'request.reason'" in response.json()["detail"]
    assert response.json()["detail"].endswith("is too long")
    assert flow_run_count(api) == before


@pytest.mark.parametrize(
    ("params", "field", "failure"),
    [
        pytest.param(
            {"sft": {"learning_rat": 1e-4}},
            "params.sft",
            "'learning_rat' is not one of ['accelerator_config'",
            id="a typo in a stage's section",
        ),
        pytest.param(
            {"grpo": {"max_steps": "many"}}, "params.grpo.max_steps", "'many' is not of type 'integer'", id="a number of the wrong type"
        ),
        pytest.param(
            {"evaluate": {"temperature": 50}}, "params.evaluate.temperature", "50 is greater than the maximum of 2", id="out of bounds"
        ),
    ],
)
def test_the_post_training_form_refuses_bad_params_naming_the_field(api, deployments, params, field, failure):
    before = flow_run_count(api)
    response = api.post(f"deployments/{deployments['post-training']['id']}/create_flow_run", json={"parameters": {"params": params}})
    assert response.status_code == 409, response.text[:500]
    detail = response.json()["detail"]
    assert f"Validation failed for field '{field}'" in detail and failure in detail, detail[:500]
    assert flow_run_count(api) == before


def test_bytes_that_are_not_utf8_are_refused_and_create_nothing(api, deployments):
    before = flow_run_count(api)
    body = b'{"parameters": {"request": {"model_name": "m", "version": 2, "reason": "caf\xe9"}}}'
    response = api.post(
        f"deployments/{deployments['promote-model']['id']}/create_flow_run", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["detail"] == "There was an error parsing the body", response.text[:500]
    assert flow_run_count(api) == before


def test_params_the_form_cannot_check_fail_the_run_with_the_reason(api, deployments, worker):
    """promote without a version passes the form's schema (version may be null for a rollback);
    the flow's own validation refuses it before anything moves, and the run's state says why."""
    response = create_run(api, deployments["promote-model"], {"model_name": MODEL, "action": "promote", "reason": "no version"})
    assert response.status_code == 201, response.text
    run = wait_for_terminal_state(api, response.json()["id"], worker)
    assert run["state_type"] == "FAILED"
    assert "version is required when action is 'promote'" in run["state"]["message"], run["state"]


def test_a_stage_dispatched_with_run_deployment_runs_as_a_child_flow_run(api, deployments, worker, tmp_path, tiny_data):
    """execution.mode: deployments, as on a cluster: the stage runs as a run-stage flow run on the worker."""
    from prefect import flow

    from flows.params import PipelineParams
    from flows.post_training import stage

    params = PipelineParams.model_validate(
        {
            "execution": {"mode": "deployments", "stage_deployment": "run-stage/run-stage", "dispatched_stages": ["validate"]},
            "paths": {"artifacts_dir": str(tmp_path / "artifacts"), "reports_dir": str(tmp_path / "reports")},
        }
    )

    @flow(name="dispatching-orchestrator")
    def orchestrator():
        return stage("validate", params.validation, tiny_data, params, force=True)

    result, cached = orchestrator()
    assert result.metrics["passed"] == 1.0 and not cached
    assert (tmp_path / "artifacts" / "validate").is_dir()  # written by the child, read back by the parent
    children = api.post("flow_runs/filter", json={"deployments": {"id": {"any_": [deployments["run-stage"]["id"]]}}}).json()
    assert [c["state_type"] for c in children] == ["COMPLETED"]
    assert children[0]["parent_task_run_id"], "the child run is linked to the orchestrator's task run"


def test_through_s3_a_dispatched_stage_and_its_cached_result_outlive_the_orchestrators_disk(
    api, deployments, s3_server, worker, tmp_path, tiny_data
):
    """The cluster setup without a shared volume: artifacts cross through an S3-compatible store
    (execution.exchange_uri) and the task cache is a remote-file-system block on it. A second
    orchestrator with an empty disk (a new pod) gets the stage from the cache, its outputs from S3."""
    from prefect import flow
    from prefect.settings import PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK, temporary_settings

    from flows.params import PipelineParams
    from flows.post_training import stage
    from flows.result_storage import main as save_result_storage

    bucket, client = s3_server["bucket"], s3_server["client"]
    assert save_result_storage([f"s3://{bucket}/prefect-results"]) == 0

    def orchestrate(disk: Path):
        params = PipelineParams.model_validate(
            {
                "execution": {
                    "mode": "deployments",
                    "stage_deployment": "run-stage/run-stage",
                    "dispatched_stages": ["validate"],
                    "exchange_uri": f"s3://{bucket}/exchange",
                },
                "paths": {"artifacts_dir": str(disk / "artifacts"), "reports_dir": str(disk / "reports")},
            }
        )

        @flow(name="s3-orchestrator")
        def orchestrator():
            return stage("validate", params.validation, tiny_data, params, force=False)

        with temporary_settings({PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: "remote-file-system/posttrain-results"}):
            return orchestrator()

    def stage_runs() -> int:
        found = api.post("flow_runs/filter", json={"deployments": {"id": {"any_": [deployments["run-stage"]["id"]]}}}).json()
        return len(found)

    before = stage_runs()
    disk = tmp_path / "pod-disk"  # every orchestrator pod mounts its scratch at the same path
    result, cached = orchestrate(disk)
    assert result.metrics["passed"] == 1.0 and not cached and stage_runs() == before + 1
    keys = {o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])}
    (out_key,) = {k for k in keys if k.startswith("exchange/artifacts/validate/") and k.endswith("/result.json")}
    assert {k for k in keys if k.startswith("exchange/inputs/")}, "the inputs were published for the stage Job"
    assert any(k.startswith("prefect-results/") for k in keys), "the task result is in the bucket"
    remote_result = json.loads(client.get_object(Bucket=bucket, Key=out_key)["Body"].read())
    assert remote_result["outputs"]["report"].startswith(str(disk / "artifacts")), "paths are the orchestrator's"

    shutil.rmtree(disk)  # the pod is gone
    again, cached = orchestrate(disk)
    assert cached and again == result and stage_runs() == before + 1, "served from the cache in S3: nothing dispatched"
    assert Path(again.outputs["report"]).is_file(), "the outputs were fetched from S3"
