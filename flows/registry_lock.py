"""One writer at a time on a registered model, for every flow run that shares a Prefect API.

Registering a version (look for these files by digest, else create) and moving the champion
(read it, decide, move the alias) are read-then-write sequences on MLflow, which has no
transactions. Two pipelines doing either at once could register the same files twice, or both
find no champion and both crown their own "first model", the last write winning whatever the
gate would have said. Each sequence therefore runs while holding the one slot of a Prefect
global concurrency limit named after the model: the Prefect server is what every flow run,
on this machine or on a cluster node, already talks to.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager

WAIT_SECONDS = 1800.0  # a registration uploads a model: generous, but a stuck holder must not block forever


def lock_name(model_name: str) -> str:
    """The limit's name: Prefect names may not hold `/`, `%`, `&`, `>`, `<`."""
    return "registry-" + re.sub(r"[^A-Za-z0-9_.-]", "-", model_name)


@contextmanager
def registry_lock(model_name: str, timeout_seconds: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the registry slot of `model_name` (created on first use with one slot)."""
    from prefect.concurrency.sync import concurrency

    name = lock_name(model_name)
    ensure_limit(name, slots=1)
    with concurrency(name, occupy=1, timeout_seconds=timeout_seconds, strict=True):
        yield


def ensure_limit(name: str, slots: int) -> None:
    """A Prefect global concurrency limit `name` with `slots`, unless it exists (an operator may have resized it)."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        # Look first: a create that collides is refused cleanly to us, but the server logs it as an ERROR with a
        # traceback, which every run after the first would print (the demo's output included).
        with contextlib.suppress(ObjectNotFound):
            client.read_global_concurrency_limit_by_name(name)
            return  # made by an earlier run
        with contextlib.suppress(ObjectAlreadyExists):  # made meanwhile by the other run of a race
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
