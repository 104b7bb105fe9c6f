"""The operator's view, in a real browser: the Prefect flow run page and the MLflow model page after a tiny run.

A `prefect server start` (with its UI) and an `mlflow server` on 127.0.0.1, a short pipeline
run against both (base, SFT, evaluation, registration, the gate), then headless Chromium
(Debian's, driven by Playwright) opens the pages an operator would and checks what they show:
the flow run's artifacts, the registered version's aliases, tags and metrics. The screenshots
go to reports/screenshots/ (docs/screenshots/ holds the committed ones the README shows).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config import deep_merge
from tests.conftest import free_port, make_project, stop, tiny_overrides, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "reports" / "screenshots"
MODEL = "browser-model"


@pytest.fixture(scope="module")
def prefect_ui(tmp_path_factory):
    """A Prefect server with its UI (the test harness serves the API only)."""
    home = tmp_path_factory.mktemp("prefect-ui")
    port, log = free_port(), home / "server.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    url = f"http://127.0.0.1:{port}"
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "true"}
    env["PREFECT_UI_API_URL"] = f"{url}/api"  # what the UI in the browser calls (its default is port 4200)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"{url}/api/health", 180, process, log)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, prefect_ui, mlflow_server):
    """base -> SFT -> evaluate -> register -> gate, as `python -m flows.post_training` against both servers."""
    project = make_project(tmp_path_factory.mktemp("browser-project"))
    overrides = deep_merge(
        tiny_overrides(),
        {
            "recipe": {key: False for key in ("reward_model", "grpo", "rejection_sampling", "alignment", "distill")},
            "data": {"out_dir": str(project / "data")},
            "tracking": {"tracking_uri": mlflow_server, "artifact_location": None, "registered_model": MODEL},
            "paths": {"artifacts_dir": str(project / "artifacts"), "reports_dir": str(project / "reports")},
        },
    )
    (project / "params.yaml").write_text(yaml.safe_dump(overrides))
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env |= {"PREFECT_API_URL": f"{prefect_ui}/api", "PREFECT_HOME": str(project / ".prefect"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "flows.post_training", "--params", "params.yaml"]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((project / "reports" / "summary.json").read_text())


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Debian's chromium is not installed: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _page(browser):
    return browser.new_page(viewport={"width": 1440, "height": 1000})


def test_the_prefect_flow_run_page_shows_the_stage_table_and_the_gate(browser, prefect_ui, tiny_run):
    from playwright.sync_api import expect

    page = _page(browser)
    flow_run = tiny_run["lineage"]["prefect_flow_run_id"]
    page.goto(f"{prefect_ui}/runs/flow-run/{flow_run}")
    expect(page.get_by_text("Completed").first).to_be_visible(timeout=60_000)
    page.get_by_role("tablist").get_by_text("Artifacts").click()
    for key in ("post-training-stages", f"promotion-gate-{MODEL}", "training-progress-sft"):  # the last on the SFT task run
        expect(page.get_by_role("link", name=key).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text(f"sft: step {tiny_overrides()['sft']['max_steps']} of").first).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "prefect-flow-run-artifacts.png", full_page=True)

    page.get_by_role("link", name="post-training-stages").first.click()
    expect(page.get_by_role("columnheader", name="cost")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("cell").filter(has_text="total").first).to_be_visible()
    page.screenshot(path=SHOTS / "prefect-stage-table.png", full_page=True)

    page.goto(f"{prefect_ui}/runs/flow-run/{flow_run}")
    page.get_by_role("tablist").get_by_text("Artifacts").click()
    page.get_by_role("link", name=f"promotion-gate-{MODEL}").first.click()
    expect(page.get_by_text(f"Promotion gate: {MODEL} v{tiny_run['model']['version']}")).to_be_visible(timeout=30_000)
    page.screenshot(path=SHOTS / "prefect-gate-decision.png", full_page=True)
    page.close()


def test_the_mlflow_model_page_shows_the_champion_alias_lineage_tags_and_metrics(browser, mlflow_server, tiny_run):
    from playwright.sync_api import expect

    page = _page(browser)
    version = tiny_run["model"]["version"]
    page.goto(f"{mlflow_server}/#/models/{MODEL}/versions/{version}")
    expect(page.get_by_text(f"Version {version}").first).to_be_visible(timeout=60_000)
    page.wait_for_timeout(3000)  # the tags and metrics panels load after the header
    print(page.locator("body").aria_snapshot()[:12000])  # shown when an expectation below fails
    expect(page.get_by_text("champion").first).to_be_visible(timeout=60_000)
    for tag in ("model_digest", "data_md5", "parent_model", "metric.pass_at_1"):
        expect(page.get_by_text(tag).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Promotion gate").first).to_be_visible()  # the model card, as the version's description
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "mlflow-model-version.png", full_page=True)
    page.close()
