"""The promotion gate on real trained models, end to end, then a rollback through the promote-model flow.

Three runs of the `post-training` flow (base + SFT, real Prefect and MLflow servers) on user
data of a world a tiny model can learn (tests.conftest.constant_answer_data: the held-out
answer is 7 on 20 problems of 24 and 8 on 4):
- v1, trained on 8s: pass@1 4/24, the first champion;
- v2, the same data with 8 SFT steps instead of 60 (deliberately under-trained): boxes no
  answer, pass@1 0: the gate refuses it, with its reasons;
- v3, trained on a new data version of 7s: pass@1 20/24: the gate promotes it, with its reasons;
then `python -m flows.promote --action rollback` (the flow, from its CLI) gives the champion
back to v1, and the flow called directly promotes v3 again by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import constant_answer_data, make_project, sft_only_overrides

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
MODEL = "gate-e2e"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_data, mlflow_server, prefect_server):
    """The three pipeline runs, in order, in one project: {label: the flow's summary}."""
    from flows.params import PipelineParams
    from flows.post_training import post_training

    project = make_project(tmp_path_factory.mktemp("gate-project"))
    eights = constant_answer_data(tiny_data, project / "user-data" / "v1", "8")
    sevens = constant_answer_data(tiny_data, project / "user-data" / "v2", "7")
    plans = {"v1 (8s)": (eights, 60), "v2 (under-trained)": (eights, 8), "v3 (7s)": (sevens, 60)}
    summaries = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        for label, (files, steps) in plans.items():
            params = PipelineParams.model_validate(sft_only_overrides(project, mlflow_server, MODEL, files, sft_steps=steps))
            summaries[label] = post_training(params)
    return summaries


def client(url):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def version_of(runs, label) -> str:
    return runs[label]["model"]["version"]


def test_the_three_models_rank_as_they_were_trained(runs):
    pass_at_1 = {label: summary["stages"]["sft"]["metrics"]["eval.pass@1"] for label, summary in runs.items()}
    assert pass_at_1 == pytest.approx({"v1 (8s)": 4 / 24, "v2 (under-trained)": 0.0, "v3 (7s)": 20 / 24}), pass_at_1
    assert [version_of(runs, label) for label in runs] == ["1", "2", "3"]


def test_the_gate_refuses_the_worse_challenger_and_records_why(runs, mlflow_server):
    decision = runs["v2 (under-trained)"]["alias"]
    assert not decision["promoted"] and decision["champion_after"] == "1"
    assert decision["gate"]["method"] == "paired-bootstrap" and decision["gate"]["ci_high"] < 0
    assert "mean_length" in decision["gate"]["guard_failures"]  # it never stops: 48 tokens against 15
    tags = client(mlflow_server).get_model_version(MODEL, "2").tags
    assert tags["gate.decision"] == "rejected" and tags["gate.champion"] == "1"
    assert "does not beat the champion beyond noise" in tags["gate.reason"]


def test_the_gate_promotes_the_better_challenger_and_records_why(runs, mlflow_server):
    decision = runs["v3 (7s)"]["alias"]
    assert decision["promoted"] and (decision["champion_before"], decision["champion_after"]) == ("1", "3")
    assert decision["gate"]["ci_low"] > 0 and not decision["gate"]["guard_failures"]
    mlflow = client(mlflow_server)
    tags = mlflow.get_model_version(MODEL, "3").tags
    assert tags["gate.decision"] == "promoted" and tags["champion.previous"] == "1"
    assert "beats the champion" in tags["gate.reason"]
    assert mlflow.get_model_version_by_alias(MODEL, "champion").version == "3"
    assert mlflow.get_model_version_by_alias(MODEL, "challenger").version == "3"


def test_a_rollback_through_the_promote_model_flow_cli_restores_the_previous_champion(runs, mlflow_server):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "flows.promote", "--model-name", MODEL, "--action", "rollback"]
    command += ["--reason", "v3 answers 7 to everything", "--tracking-uri", mlflow_server]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    mlflow = client(mlflow_server)
    assert mlflow.get_model_version_by_alias(MODEL, "champion").version == "1"
    assert mlflow.get_model_version(MODEL, "3").tags["rollback.to"] == "1"
    assert mlflow.get_model_version(MODEL, "1").tags["restored.from"] == "3"
    assert mlflow.get_model_version(MODEL, "1").tags["restored.flow_run_id"] != "none"  # it ran as a Prefect flow


def test_the_promote_model_flow_promotes_by_hand_past_the_gate(runs, mlflow_server):
    from flows.promote import PromotionRequest, promote_model

    if client(mlflow_server).get_model_version_by_alias(MODEL, "champion").version != "1":
        pytest.fail("runs after the rollback test: the champion should be v1 here")
    moved = promote_model(PromotionRequest(model_name=MODEL, version=3, reason="reviewed by hand", tracking_uri=mlflow_server))
    assert (moved["champion_before"], moved["champion_after"]) == ("1", "3")
    assert client(mlflow_server).get_model_version(MODEL, "3").tags["promotion.reason"] == "reviewed by hand"
