"""The registry lock excludes for real: two processes on one Prefect server never hold it at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.registry_lock import lock_name

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time; from flows.registry_lock import registry_lock\n"
    "with registry_lock(sys.argv[1]):\n"
    "    start = time.time(); time.sleep(2); print(start, time.time())\n"
)


@pytest.mark.slow
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


class LimitsClient:
    """A Prefect client's global-concurrency-limit calls, on a dict; `race` makes the create collide once."""

    def __init__(self, existing: dict[str, int], race: bool = False):
        self.existing, self.race, self.created = existing, race, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read_global_concurrency_limit_by_name(self, name):
        from prefect.exceptions import ObjectNotFound

        if name not in self.existing:
            raise ObjectNotFound(http_exc=None)
        return self.existing[name]

    def create_global_concurrency_limit(self, limit):
        from prefect.exceptions import ObjectAlreadyExists

        if self.race:
            self.existing[limit.name] = limit.limit
            raise ObjectAlreadyExists(http_exc=None)
        self.created.append(limit.name)
        self.existing[limit.name] = limit.limit


@pytest.mark.parametrize("race", [False, True])
def test_the_limit_is_created_once_and_an_existing_one_is_not_created_again(monkeypatch, race):
    import prefect

    from flows.registry_lock import ensure_limit

    client = LimitsClient({"registry-kept": 3}, race=race)
    monkeypatch.setattr(prefect, "get_client", lambda sync_client: client)

    ensure_limit("registry-new", slots=1)  # missing: created (or, in a race, made by the other run)
    ensure_limit("registry-new", slots=1)
    ensure_limit("registry-kept", slots=1)

    assert client.created == ([] if race else ["registry-new"]), "a limit that exists is never created again (the server logs it)"
    assert client.existing == {"registry-new": 1, "registry-kept": 3}, "an operator's resize stays"
