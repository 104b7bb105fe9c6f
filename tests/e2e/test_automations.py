"""The automations against a real Prefect server, whose trigger and action services run.

The evaluate-model deployment is deployed from prefect.yaml with its triggers, as `make deploy`
does (to a pool of its own, with no worker: a triggered run stays Scheduled and is deleted at the
end); the events are emitted as the pipeline emits them (flows/events.py). The refused-promotion
automation of flows/automations.py POSTs to a receiver on 127.0.0.1, stopped after the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest

from components import promotion
from components.promotion import AliasDecision
from flows import automations, events
from flows.params import TrackingConfig
from tests.conftest import REPO

pytestmark = pytest.mark.slow

POOL = "events-test"  # not prefect.yaml's pool: test_ui_api.py creates that one and runs a worker on it
TRACKING = TrackingConfig(tracking_uri="sqlite:///events-test/mlflow.db", registered_model="events-model")
TIMEOUT = 90  # seconds for an event to reach an action's effect, on a busy 2-core machine


@pytest.fixture(scope="module")
def api(prefect_server):
    from prefect.settings import PREFECT_API_URL

    with httpx.Client(base_url=PREFECT_API_URL.value().rstrip("/") + "/", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def evaluate_deployment(api) -> dict:
    """prefect.yaml's evaluate-model deployment and its triggers on the test server (`prefect deploy`)."""
    from prefect.workers.process import ProcessWorker

    pool = {"name": POOL, "type": "process", "base_job_template": ProcessWorker.get_default_base_job_template()}
    assert api.post("work_pools/", json=pool).status_code in (201, 409)
    env = {**os.environ, "PREFECT_API_URL": str(api.base_url).rstrip("/"), "PWD": str(REPO)}
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--name", "evaluate-model", "--pool", POOL]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (found,) = api.post("deployments/filter", json={"deployments": {"name": {"any_": ["evaluate-model"]}}}).json()
    yield found
    # Nothing left for later tests: no automation reacting to their pipelines' events, no Scheduled run.
    api.delete(f"automations/owned-by/prefect.deployment.{found['id']}")
    for run in runs_of(api, found):
        api.delete(f"flow_runs/{run['id']}")
    api.delete(f"deployments/{found['id']}")


def runs_of(api, deployment: dict) -> list[dict]:
    return api.post("flow_runs/filter", json={"deployments": {"id": {"any_": [deployment["id"]]}}}).json()


def wait_for(probe, what: str, timeout: float = TIMEOUT):
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds saying what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(1)
    raise AssertionError(f"{what}: nothing after {timeout}s")


def test_the_triggers_are_deployed_with_the_deployment(api, evaluate_deployment):
    owned = api.get(f"automations/related-to/prefect.deployment.{evaluate_deployment['id']}").json()
    assert {a["name"] for a in owned} == {"evaluate-new-model-version", "evaluate-champion-on-new-data"}


def test_a_new_model_version_runs_evaluate_model_on_it(api, evaluate_deployment):
    before = {run["id"] for run in runs_of(api, evaluate_deployment)}
    events.model_version_created("events-model-sft", "1", "sft", TRACKING)  # an intermediate: not evaluated
    events.model_version_created("events-model", "7", "grpo", TRACKING)

    def new_runs():
        return [run for run in runs_of(api, evaluate_deployment) if run["id"] not in before]

    (run,) = wait_for(new_runs, "a flow run of evaluate-model")
    assert run["parameters"] == {"params": {"model_name": "events-model", "version": "7", "tracking_uri": TRACKING.tracking_uri}}
    assert run["state_type"] == "SCHEDULED"
    time.sleep(3)  # the intermediate's event came first: had it matched, its run would be here by now
    assert len(new_runs()) == 1


def test_new_data_runs_evaluate_model_on_the_champion(api, evaluate_deployment, monkeypatch):
    before = {run["id"] for run in runs_of(api, evaluate_deployment)}
    monkeypatch.setattr(promotion, "current_champion", lambda name: SimpleNamespace(version=5))
    facts = {"data_md5": f"{time.time_ns()}.dir", "data_versioned_by": "dvc", "data_pointer": "data.dvc"}
    events.data_versioned("old.dir", facts, {"eval": "data/eval.jsonl"}, TRACKING)

    def new_runs():
        return [run for run in runs_of(api, evaluate_deployment) if run["id"] not in before]

    (run,) = wait_for(new_runs, "a flow run of evaluate-model on the champion")
    expected = {"model_name": "events-model", "version": "5", "tracking_uri": TRACKING.tracking_uri, "eval_data": "data/eval.jsonl"}
    assert run["parameters"] == {"params": expected}


@pytest.fixture
def webhook_automation(api):
    """The automation's name; it is deleted after the test (later tests' refused promotions post nowhere)."""
    yield automations.AUTOMATION_NAME
    for automation in api.post("automations/filter", json={"automations": {"name": {"any_": [automations.AUTOMATION_NAME]}}}).json():
        api.delete(f"automations/{automation['id']}")


@pytest.fixture
def receiver():
    """An HTTP server on 127.0.0.1 that records the bodies POSTed to it; its URL and the bodies."""
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):  # quiet: pytest shows what matters
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_refused_promotion_is_posted_to_the_webhook(api, receiver, webhook_automation, capsys):
    url, bodies = receiver
    for _ in range(2):  # `make deploy` twice: one block, one automation
        assert automations.main(["--webhook-url", url]) == 0
    assert len(api.post("automations/filter", json={"automations": {"name": {"any_": [webhook_automation]}}}).json()) == 1
    assert "127.0.0.1" in capsys.readouterr().out

    reason = "challenger v9 - champion v8 = -0.042, 95% CI [-0.120, 0.031]: does not exceed 0"
    events.gate_decided("events-model", AliasDecision("8", True, "first", None, "8", {}), TRACKING)  # promoted: not posted
    events.gate_decided("events-model", AliasDecision("9", False, reason, "8", "8", {"reasons": [reason]}), TRACKING)

    (body,) = wait_for(lambda: list(bodies), "a POST to the webhook")
    assert body["subject"] == "Promotion refused: events-model v9"
    assert reason in body["body"] and "v8 as champion" in body["body"]
    time.sleep(3)
    assert len(bodies) == 1, bodies


def test_schedules_are_armed_only_when_asked(api, evaluate_deployment, tmp_path):
    """`--schedules` acts on the deployments whose prefect.yaml entry has schedules; here the evaluate-model one."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import CronSchedule

    prefect_file = tmp_path / "prefect.yaml"
    prefect_file.write_text("deployments:\n  - name: evaluate-model\n    schedules: [{cron: '0 3 * * 1', active: false}]\n")
    with get_client(sync_client=True) as client:
        client.create_deployment_schedules(evaluate_deployment["id"], [(CronSchedule(cron="0 3 * * 1"), False)])

    def active() -> list[bool]:
        return [s["active"] for s in api.get(f"deployments/{evaluate_deployment['id']}").json()["schedules"]]

    assert active() == [False]
    assert automations.main(["--schedules", "active", "--prefect-file", str(prefect_file)]) == 0
    assert active() == [True]
    assert automations.main(["--schedules", "paused", "--prefect-file", str(prefect_file)]) == 0
    assert active() == [False]
    missing = tmp_path / "missing.yaml"
    missing.write_text("deployments:\n  - name: nowhere\n    schedules: [{cron: '0 3 * * 1'}]\n")
    assert automations.main(["--schedules", "active", "--prefect-file", str(missing)]) == 2
