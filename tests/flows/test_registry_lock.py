"""The registry lock excludes for real: two processes on one Prefect server never hold it at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.registry_lock import lock_name

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time; from flows.registry_lock import registry_lock\n"
    "with registry_lock(sys.argv[1]):\n"
    "    start = time.time(); time.sleep(2); print(start, time.time())\n"
)


def test_two_processes_hold_the_registry_lock_one_after_the_other(prefect_server):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", HOLD, "lock/test model"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [holder.communicate(timeout=300) for holder in holders]
    assert [h.returncode for h in holders] == [0, 0], [err[-2000:] for _, err in outputs]
    (first_in, first_out), (second_in, second_out) = sorted(tuple(map(float, out.split())) for out, _ in outputs)
    assert second_in >= first_out, f"held at once: {first_in:.2f}-{first_out:.2f} and {second_in:.2f}-{second_out:.2f}"


def test_the_lock_name_is_one_prefect_accepts():
    assert lock_name("team/r1 model%v2") == "registry-team-r1-model-v2"
