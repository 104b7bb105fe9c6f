"""A training stage seen while it trains: its metrics in MLflow, its progress in Prefect.

The flow opens each stage's MLflow run before the stage starts and names it here
(`streaming_to`): in its own process, or through the request a dispatched stage gets. Every
trainer then carries components.live_callback.LiveCallback (train_resumably adds it), which
- logs each of the trainer's logs to that run on the trainer's global step, as `train/<key>`;
- keeps a Prefect progress artifact of the steps done, when it runs in a Prefect task or flow;
- counts the tokens trained and GRPO's share of groups with no advantage (components.accounting).
A tracking server or Prefect API that stops answering stops the stream, never the training: the
flow logs the stage's whole result when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import Field

from components.config import StrictModel


class LiveTarget(StrictModel):
    """The MLflow run a stage streams to (the flow created it; the stage only appends to it)."""

    tracking_uri: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    system_metrics: bool = Field(False, description="sample this process's CPU, memory (and GPU) into the run: a dispatched pod's own")


_target: LiveTarget | None = None


@contextmanager
def streaming_to(target: LiveTarget | None) -> Iterator[None]:
    """Trainers started inside stream to `target` (None: to nothing)."""
    global _target
    outer, _target = _target, target
    monitor = _system_monitor(target) if target is not None and target.system_metrics else None
    try:
        yield
    finally:
        _target = outer
        if monitor is not None:
            monitor.finish()


def _system_monitor(target: LiveTarget):
    try:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(target.run_id, tracking_uri=target.tracking_uri)
        monitor.start()
        return monitor
    except Exception as error:  # psutil missing, or the server unreachable: the stage runs unwatched
        print(f"[live] no system metrics for run {target.run_id}: {type(error).__name__}: {error}")
        return None


def current() -> LiveTarget | None:
    """The run trainers started now stream to."""
    return _target
