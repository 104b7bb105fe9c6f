"""Fixtures of the flows tests that dispatch stages: an artifact store, and child flow runs in process.

The store is a local folder behind fsspec's `file://` (same code path as `s3://`, which
tests/e2e/test_ui_api.py runs against an S3-compatible server). The child flow run is called in
process in place of `run_deployment`, with its own scratch ($TMPDIR), so every input it reads
came through the store.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from types import SimpleNamespace

import pytest

from components import stages
from flows.artifact_exchange import ArtifactExchange
from flows.stage_runner import StageRequest, run_stage_flow

KEY = "a" * 64


@pytest.fixture
def store(tmp_path) -> ArtifactExchange:
    return ArtifactExchange(f"file://{tmp_path / 'bucket'}/exchange")


@pytest.fixture
def child_runs(monkeypatch, tmp_path):
    """`run_deployment` replaced by the run-stage flow's body, run with a scratch of its own."""
    scratch = tmp_path / "child-scratch"
    scratch.mkdir()
    requests = []

    def run_deployment(name, parameters, job_variables=None, timeout=None):
        resources = stages.get(parameters["request"]["module"]).resources
        sent = dict(job_variables or {})
        sent.pop("active_deadline_seconds", None)  # the stage's timeout, when the dispatch has one
        assert sent == (resources.job_variables() if resources else {}), "the registry's resources reach the Job"
        assert timeout == 0, "the orchestrator follows the child itself (relaying its log), bounded by the stage's timeout"
        monkeypatch.setenv("TMPDIR", str(scratch))
        import tempfile

        monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
        request = StageRequest.model_validate(json.loads(json.dumps(parameters["request"])))  # as the API carries it
        requests.append(request)
        run_stage_flow.fn(request)
        return SimpleNamespace(name="child", state=SimpleNamespace(is_final=lambda: True, is_completed=lambda: True, name="Completed"))

    monkeypatch.setattr("prefect.deployments.run_deployment", run_deployment)
    monkeypatch.setattr("flows.stage_runner.follow", lambda child, module, timeout: child)  # it ran inline: nothing to wait for
    monkeypatch.setattr("flows.stage_runner.gpu_slots", lambda gpus, pool_size: nullcontext())  # no Prefect API in these tests
    return SimpleNamespace(requests=requests, scratch=scratch)
