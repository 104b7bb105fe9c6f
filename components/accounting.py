"""What a stage used: time, device, tokens trained and generated, samples generated and kept.

Every stage runs inside `metered()` (flows.stage_runner does it, in the orchestrator or in a
dispatched pod), which measures the time and the device; what only the stage's code can see is
added to the open meter with `add`: tokens trained (the trainers' callback, components.live),
tokens and samples generated (components.generation), samples kept (rejection sampling), the
share of GRPO groups whose rewards were all equal (no advantage: that compute taught nothing).
The usage travels in the stage's result (`info["usage"]`); the flow prices and sums it
(`price`, the `cost` section of params.yaml).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass

COUNTS = ("tokens_trained", "tokens_generated", "samples_generated", "samples_kept", "train_seconds")


@dataclass
class Usage:
    """One stage run's usage. `device_seconds` (wall x devices) is what a cloud bills."""

    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # the process's CPU time, all threads: on a CPU node, the compute used
    device: str = "cpu"
    device_count: int = 1
    tokens_trained: int = 0
    tokens_generated: int = 0
    samples_generated: int = 0
    samples_kept: int = 0
    zero_advantage_share: float | None = None  # GRPO: groups with equal rewards, mean over logged steps
    train_seconds: float = 0.0  # inside trainer.train(): the stage's wall less loading, saving and evaluating

    @property
    def device_seconds(self) -> float:
        return self.wall_seconds * self.device_count

    def as_dict(self) -> dict:
        return asdict(self) | {"device_seconds": self.device_seconds}


_open: Usage | None = None


def add(**counts: float) -> None:
    """Add to the open meter's counts (nothing is open outside a stage run: a no-op)."""
    if _open is None:
        return
    for name, value in counts.items():
        if name not in COUNTS:
            raise KeyError(f"unknown usage count {name!r} (known: {', '.join(COUNTS)})")
        setattr(_open, name, getattr(_open, name) + value)


def counted(name: str) -> float:
    """The open meter's count so far (0 outside a stage run): a stage diffs it around one part of its work."""
    return getattr(_open, name) if _open is not None else 0


def record(**values: float | None) -> None:
    """Set a measured share or rate on the open meter (e.g. zero_advantage_share)."""
    if _open is not None:
        for name, value in values.items():
            setattr(_open, name, value)


@contextmanager
def metered() -> Iterator[Usage]:
    """Meter the stage run inside: its wall and CPU time, its device, and what `add` counts."""
    global _open
    outer, usage = _open, Usage(**device())
    _open = usage
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield usage
    finally:
        usage.wall_seconds = time.perf_counter() - wall
        usage.cpu_seconds = time.process_time() - cpu
        _open = outer


def device() -> dict:
    """The device this process computes on: a CUDA GPU's name and the job's GPU count, else the CPU."""
    import torch

    if torch.cuda.is_available():
        world = int(os.environ.get("WORLD_SIZE", "0")) or torch.cuda.device_count()
        return {"device": torch.cuda.get_device_name(0), "device_count": world}
    return {"device": "cpu", "device_count": 1}


def price(usage: Mapping, prices: Mapping[str, float]) -> float:
    """Cost of `usage` at `prices` (per device-hour): by the device's exact name, else 'cuda' or 'cpu'."""
    name = usage.get("device", "cpu")
    kind = "cpu" if name == "cpu" else "cuda"
    per_hour = prices.get(name, prices.get(kind, 0.0))
    return usage.get("device_seconds", 0.0) / 3600 * per_hour


def total(usages: list[Mapping]) -> dict:
    """The sum of several usages' times and counts (shares are not summed)."""
    keys = ("wall_seconds", "cpu_seconds", "device_seconds", *COUNTS)
    return {key: sum(u.get(key, 0) or 0 for u in usages) for key in keys}
