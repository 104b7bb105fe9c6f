"""The trainers' side of components.live: a callback every trainer stage carries.

Kept apart from components.live so that the flow, which only names the run to stream to, never
imports transformers.
"""

from __future__ import annotations

import math
import time

from transformers import TrainerCallback

from components import accounting, live


class LiveCallback(TrainerCallback):
    """Streams a trainer's logs to the stage's MLflow run and its progress to Prefect (see the module docstring)."""

    PROGRESS_EVERY_SECONDS = 5.0  # a Prefect API call per log line would cost more than a tiny model's step

    def __init__(self, stage: str):
        self.stage = stage
        self.target = live.current()
        self.client = None
        self.progress_id = None
        self.progress_at = 0.0
        self.tokens_at_start = 0
        self.started = time.perf_counter()
        self.zero_std: list[float] = []

    # ---- trainer events

    def on_train_begin(self, args, state, control, **kwargs):
        self.tokens_at_start = state.num_input_tokens_seen or 0
        self.started = time.perf_counter()
        if not state.is_world_process_zero:  # one stream per stage, not one per rank
            return
        if self.target is not None:
            self.client = _client(self.target)
        self.progress_id = _create_progress(self.stage, state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "frac_reward_zero_std" in logs:
            self.zero_std.append(float(logs["frac_reward_zero_std"]))
        if self.client is not None:
            self._stream(logs, state.global_step)
        if self.progress_id is not None and time.monotonic() - self.progress_at > self.PROGRESS_EVERY_SECONDS:
            self._progress(state)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress_id is not None:
            self._progress(state, done=True)
        tokens = int((state.num_input_tokens_seen or 0) - self.tokens_at_start)
        accounting.add(tokens_trained=tokens, train_seconds=time.perf_counter() - self.started)
        if self.zero_std:
            accounting.record(zero_advantage_share=sum(self.zero_std) / len(self.zero_std))

    # ---- where they go

    def _stream(self, logs: dict, step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(f"train/{key.replace('@', '_at_')}", float(value), now, step)
            for key, value in logs.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ]
        try:
            self.client.log_batch(self.target.run_id, metrics=metrics, synchronous=True)
        except Exception as error:  # the server is gone: train on, the flow logs the result at the end
            print(f"[live] {self.stage}: streaming to MLflow stopped at step {step}: {type(error).__name__}: {error}")
            self.client = None

    def _progress(self, state, done: bool = False) -> None:
        self.progress_at = time.monotonic()
        total = state.max_steps or 1
        percent = 100.0 if done else min(100.0, 100.0 * state.global_step / total)
        description = f"{self.stage}: step {state.global_step} of {total}" + (" (done)" if done else "")
        try:
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(self.progress_id, percent, description=description)
        except Exception as error:
            print(f"[live] {self.stage}: progress artifact no longer updated: {type(error).__name__}: {error}")
            self.progress_id = None


def _client(target: live.LiveTarget):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=target.tracking_uri)


def _create_progress(stage: str, state):
    """A progress artifact on the current Prefect task or flow run, or None outside one."""
    try:
        from prefect.artifacts import create_progress_artifact
        from prefect.context import FlowRunContext, TaskRunContext

        if TaskRunContext.get() is None and FlowRunContext.get() is None:
            return None
        key = f"training-progress-{stage}".replace("_", "-").lower()
        return create_progress_artifact(0.0, key=key, description=f"{stage}: step 0 of {state.max_steps}")
    except Exception as error:  # no API to talk to: the stage trains without the artifact
        print(f"[live] {stage}: no progress artifact: {type(error).__name__}: {error}")
        return None
