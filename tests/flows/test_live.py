"""A training stage watched while it trains: MLflow sees its metrics, Prefect its progress, before it ends."""

import os
import threading
import time

import pytest

from components import accounting, live, sft
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow

STEPS, PAUSE_AT = 10, 6


def _cfg():
    return sft.Config(**{**tiny_overrides()["sft"], "max_steps": STEPS, "logging_steps": 1, "save_steps": 100})


def _pause_until(event: threading.Event, step: int, seen: dict):
    """Holds the trainer at `step` until the watcher has seen the stream (so 'before it ends' is certain, not a race)."""
    from transformers import TrainerCallback

    class Pause(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                seen["released"] = event.wait(timeout=120)

    return Pause()


def test_a_training_stage_streams_its_metrics_to_mlflow_while_it_trains(tmp_path, mlflow_server, tiny_base_model, tiny_data):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment(f"live-{time.time_ns()}")
    run_id = client.create_run(experiment, run_name="sft").info.run_id
    target = live.LiveTarget(tracking_uri=mlflow_server, run_id=run_id)
    watched, seen, outcome = threading.Event(), {}, {}

    def train():
        with live.streaming_to(target), accounting.metered() as usage:
            result = sft.run(
                _cfg(),
                {"model": tiny_base_model, "sft": tiny_data["sft"]},
                str(tmp_path),
                callbacks=[_pause_until(watched, PAUSE_AT, seen)],
            )
        outcome.update(result=result, usage=usage)

    trainer = threading.Thread(target=train)
    trainer.start()
    points_while_training = []
    deadline = time.monotonic() + 300
    while trainer.is_alive() and time.monotonic() < deadline:
        points_while_training = client.get_metric_history(run_id, "train/loss")
        if len(points_while_training) > 1:
            watched.set()
            break
        time.sleep(0.2)
    watched.set()
    trainer.join(timeout=300)

    assert seen.get("released"), "the trainer waited at its pause and the watcher saw the stream before the stage ended"
    assert len(points_while_training) > 1 and outcome["result"].metrics["global_step"] == STEPS
    history = client.get_metric_history(run_id, "train/loss")
    assert [p.step for p in sorted(history, key=lambda p: p.step)] == list(range(1, STEPS + 1)), "on the trainer's global step"
    assert {"train/learning_rate", "train/grad_norm"} <= set(client.get_run(run_id).data.metrics)
    assert outcome["usage"].tokens_trained > 0, "the trainer counted the tokens it trained on (non-padding)"


def test_a_tracking_server_that_stops_answering_stops_the_stream_not_the_training(tmp_path, tiny_base_model, tiny_data, capsys):
    from tests.conftest import free_port

    nowhere = live.LiveTarget(tracking_uri=f"http://127.0.0.1:{free_port()}", run_id="0" * 32)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        with live.streaming_to(nowhere):
            result = sft.run(_cfg(), {"model": tiny_base_model, "sft": tiny_data["sft"]}, str(tmp_path))
    finally:
        del os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    assert result.metrics["global_step"] == STEPS
    assert capsys.readouterr().out.count("streaming to MLflow stopped at step 1") == 1, "said once, then the stream is off"


def test_a_training_stage_in_a_prefect_run_keeps_a_progress_artifact(tmp_path, prefect_server, tiny_base_model, tiny_data):
    from prefect import flow, get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, ArtifactFilterType

    @flow
    def train():
        sft.run(_cfg(), {"model": tiny_base_model, "sft": tiny_data["sft"]}, str(tmp_path))

    train()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["training-progress-sft"]), type=ArtifactFilterType(any_=["progress"])
            )
        )
    latest = max(found, key=lambda a: a.created)
    assert float(latest.data) == 100.0 and latest.description == f"sft: step {STEPS} of {STEPS} (done)"
