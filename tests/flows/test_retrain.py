"""Scheduled retraining: skip when the data (DVC md5) and params equal the champion's lineage.

One scratch project (git + DVC) whose data comes from user files, so the data can change while
the params stay the same. The first retrain finds no champion and runs the real pipeline (tiny
settings); the same retrain is then skipped, for real. Changed data, changed params and `force`
each run the pipeline again; there the pipeline is replaced by a stub that records the call
(the real one was exercised once already).
"""

import shutil
from pathlib import Path

import pytest
import yaml

from components.config import deep_merge
from components.versioning import read_dvc_md5
from tests.conftest import make_project, tiny_overrides

pytestmark = pytest.mark.slow

KINDS = ("pretrain", "sft", "prefs", "rl", "eval", "probe")


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_data):
    root = make_project(tmp_path_factory.mktemp("retrain-project"))
    incoming = root / "incoming"
    incoming.mkdir()
    for kind in KINDS:
        shutil.copy(tiny_data[kind], incoming / f"{kind}.jsonl")
    return root


def write_params(project: Path, **changes) -> str:
    overrides = deep_merge(
        tiny_overrides(),
        {
            "data": {
                "source": "files",
                "files": {k: str(project / "incoming" / f"{k}.jsonl") for k in KINDS},
                "out_dir": str(project / "data"),
            },
            "tracking": {
                "tracking_uri": f"sqlite:///{project / 'mlflow.db'}",
                "artifact_location": str(project / "mlartifacts"),
                "registered_model": "retrain-model",
            },
            "paths": {"artifacts_dir": str(project / "artifacts"), "reports_dir": str(project / "reports")},
        },
    )
    path = project / "params.yaml"
    path.write_text(yaml.safe_dump(deep_merge(overrides, changes)))
    return str(path)


def retrain(project: Path, **request):
    from flows.retrain import RetrainRequest, retrain

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        return retrain(RetrainRequest(params_file=str(project / "params.yaml"), **request))


@pytest.fixture
def pipeline_stub(monkeypatch):
    """The post-training subflow, replaced: records the params it was called with."""
    calls = []

    def fake_post_training(params, force=False):
        calls.append((params, force))
        return {"model": {"name": params.tracking.registered_model, "version": "stub"}, "alias": {"promoted": False}}

    monkeypatch.setattr("flows.retrain.post_training", fake_post_training)
    return calls


@pytest.fixture(scope="module")
def first(project, prefect_server):
    write_params(project)
    return retrain(project)


def test_with_no_champion_it_runs_the_real_pipeline_and_the_gate(first, project):
    assert first["status"] == "ran" and first["reason"] == "no champion yet"
    assert first["alias"]["promoted"] and "first model" in first["alias"]["reason"]
    assert first["data_md5"] == read_dvc_md5(project / "data.dvc")


def test_the_real_pipeline_emitted_its_events_to_the_server(first):
    """What the automations react to (flows/events.py), as the Prefect server stored them."""
    import time

    import httpx
    from prefect.settings import PREFECT_API_URL

    query = {"filter": {"event": {"prefix": ["posttrain."]}, "resource": {"labels": {"posttrain.model.name": ["retrain-model"]}}}}
    wanted = {"posttrain.data.changed", "posttrain.model-version.created", "posttrain.promotion.promoted"}
    deadline, seen = time.monotonic() + 60, []  # the server persists events in batches
    while time.monotonic() < deadline and not wanted <= {e["event"] for e in seen}:
        time.sleep(1)
        seen = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json={**query, "limit": 50}, timeout=30).json()["events"]
    by_name = {e["event"]: e for e in seen}
    assert wanted <= set(by_name), sorted(by_name)
    version = by_name["posttrain.model-version.created"]["resource"]
    assert version["prefect.resource.id"] == f"mlflow.model-version.retrain-model.{first['model']['version']}"
    assert version["posttrain.model.role"] == "candidate"
    assert by_name["posttrain.data.changed"]["resource"]["posttrain.data.md5"] == first["data_md5"]


def test_unchanged_data_and_params_are_skipped(first, project):
    result = retrain(project)
    assert result["status"] == "skipped"
    assert result["champion"] == first["model"]["version"]
    assert result["data_md5"] == first["data_md5"] and result["params_hash"] == first["params_hash"]
    assert f"equal champion v{first['model']['version']}'s lineage" in result["reason"]


def test_changed_data_runs_the_pipeline(first, project, pipeline_stub):
    sft = project / "incoming" / "sft.jsonl"
    original = sft.read_text()
    sft.write_text("".join(original.splitlines(keepends=True)[:-1]))  # one example fewer: a new data version
    try:
        result = retrain(project)
    finally:
        sft.write_text(original)
    assert result["status"] == "ran", result["reason"]
    assert result["data_md5"] != first["data_md5"] and result["data_md5"] == read_dvc_md5(project / "data.dvc")
    assert result["params_hash"] == first["params_hash"]
    assert result["reason"] == f"data changed (DVC md5): {first['data_md5']} -> {result['data_md5']}"
    assert len(pipeline_stub) == 1 and pipeline_stub[0][1] is False


def test_changed_params_run_the_pipeline(first, project, pipeline_stub):
    write_params(project, sft={"max_steps": 13})
    try:
        result = retrain(project)
    finally:
        write_params(project)
    assert result["status"] == "ran" and result["reason"].startswith("params changed (hash)")
    assert result["data_md5"] == first["data_md5"]
    assert pipeline_stub[0][0].sft.max_steps == 13


def test_force_runs_the_pipeline_even_when_nothing_changed(first, project, pipeline_stub):
    result = retrain(project, force=True, recompute=True)
    assert result["status"] == "ran" and result["reason"].startswith("forced")
    assert pipeline_stub[0][1] is True  # recompute: the pipeline's --force


def test_lineage_changes_in_words():
    from flows.retrain import lineage_changes

    now = {"data_md5": "b.dir", "params_hash": "p1"}
    assert lineage_changes(None, now) == ["no champion yet"]
    assert lineage_changes({"version": "1", "data_md5": "b.dir", "params_hash": "p1"}, now) == []
    assert lineage_changes({"version": "1", "data_md5": "", "params_hash": "p0"}, now) == [
        "data changed (DVC md5): unknown -> b.dir",
        "params changed (hash): p0 -> p1",
    ]
