"""What a stage used: time, device, tokens trained and generated, samples generated and kept.

Every stage runs inside `metered()` (flows.stage_runner does it, in the orchestrator or in a
dispatched pod), which measures the time and the device; what only the stage's code can see is
added to the open meter with `add`: tokens trained (the trainers' callback, components.live),
tokens and samples generated (components.generation), samples kept (rejection sampling), the
share of GRPO groups whose rewards were all equal (no advantage: that compute taught nothing).
The usage travels in the stage's result (`info["usage"]`); the flow prices and sums it
(`price`, the `cost` section of params.yaml).

Stages run one after another in one process locally, so each starts by handing the memory the
previous one freed back to the system and by resetting the kernel's resident-set high-water
mark: `peak_rss_gib` is then this stage's own peak, not the run's so far.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
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
    peak_rss_gib: float | None = None  # the process's resident-set peak during the stage (Linux; None elsewhere)

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
    if outer is None:  # a nested meter must not reset the outer one's peak
        release_memory()
        reset_peak_rss()
    _open = usage
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield usage
    finally:
        usage.wall_seconds = time.perf_counter() - wall
        usage.cpu_seconds = time.process_time() - cpu
        usage.peak_rss_gib = peak_rss_gib()
        _open = outer


def release_memory() -> None:
    """Collect garbage and hand glibc's freed heap back to the system (a 100M+ parameter model
    freed by one stage otherwise stays resident under the next one's peak)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak_rss() -> None:
    """Reset this process's resident-set high-water mark (Linux: `5` to /proc/self/clear_refs)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def peak_rss_gib() -> float | None:
    """The process's resident-set high-water mark (VmHWM) in GiB, since start or the last reset."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return None


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
    """The sum of several usages' times and counts (shares are not summed), and their highest memory peak."""
    keys = ("wall_seconds", "cpu_seconds", "device_seconds", *COUNTS)
    return {key: sum(u.get(key, 0) or 0 for u in usages) for key in keys} | {"peak_rss_gib": peak(usages)}


def peak(usages: list[Mapping]) -> float | None:
    """The highest resident-set peak among `usages` (None when none was measured)."""
    peaks = [u["peak_rss_gib"] for u in usages if u.get("peak_rss_gib") is not None]
    return max(peaks) if peaks else None
