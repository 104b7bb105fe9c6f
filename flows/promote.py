"""The `promote-model` flow: move the `champion` alias by hand, from the Prefect UI, with a reason.

- promote: make a given version the champion, past the gate (e.g. a judgment the metrics miss);
- rollback: give the champion back to the version the current one replaced (or to a given one).

Every move is recorded on the versions as tags (`promotion.*`, `rollback.*`, `restored.*`: the
reason, who asked, when, the flow run), and is one alias call. A version that does not exist, or
a rollback with nowhere to go, fails the run with a message that says so.

    python -m flows.promote --version 3 --reason "..."            # promote v3
    python -m flows.promote --action rollback --reason "..."      # back to the previous champion
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field, ValidationError, model_validator

from components import promotion, registry, tracking
from components.config import StrictModel, describe_validation_error
from flows.params import TrackingConfig
from flows.registry_lock import registry_lock

_DEFAULTS = TrackingConfig()


class PromotionRequest(StrictModel):
    """A manual champion move: what, which way, and why."""

    model_name: str = Field(_DEFAULTS.registered_model, min_length=1, max_length=256, description="MLflow registered model name")
    action: Literal["promote", "rollback"] = Field(
        "promote", description="promote: make `version` the champion; rollback: return to the previous champion"
    )
    version: int | None = Field(
        None, ge=1, description="promote: the version to make champion (required); rollback: a target other than the previous champion"
    )
    reason: str = Field(..., min_length=1, max_length=2000, pattern=r"\S", description="why (required; recorded on the versions as a tag)")
    requested_by: str = Field("", max_length=200, description="who asks (recorded); empty: the worker's OS user")
    tracking_uri: str = Field(_DEFAULTS.tracking_uri, min_length=1, description="MLflow tracking / registry URI")

    @model_validator(mode="after")
    def _promote_names_a_version(self) -> PromotionRequest:
        if self.action == "promote" and self.version is None:
            raise ValueError("version is required when action is 'promote' (which version should become champion?)")
        return self


@flow(name="promote-model", log_prints=True)
def promote_model(request: PromotionRequest) -> dict:
    """Promote a model version to champion, or roll the champion back; returns the move made.

    Args:
        request: the model, the action (promote | rollback), the version and the reason (required)
    """
    logger = get_run_logger()
    tracking.connect(request.tracking_uri)
    record = {"requested_by": request.requested_by or getpass.getuser(), "flow_run_id": str(flow_run.id or "none")}
    with registry_lock(request.model_name):  # not in the middle of a pipeline's gate decision
        if request.action == "promote":
            decision = promotion.promote_version(request.model_name, str(request.version), request.reason, record)
        else:
            target = str(request.version) if request.version is not None else None
            decision = promotion.rollback_champion(request.model_name, request.reason, target, record)
    logger.info("%s: champion v%s -> v%s: %s", request.model_name, decision.champion_before, decision.champion_after, decision.reason)
    return decision.as_dict()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Promote a model version to champion, or roll the champion back.")
    parser.add_argument("--model-name", default=_DEFAULTS.registered_model)
    parser.add_argument("--action", default="promote")
    parser.add_argument("--version", type=int)
    parser.add_argument("--reason", required=True)
    parser.add_argument("--requested-by", default="")
    parser.add_argument("--tracking-uri", default=_DEFAULTS.tracking_uri)
    values = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    try:
        request = PromotionRequest.model_validate(values)
    except ValidationError as exc:
        print(f"error: {describe_validation_error(exc, 'promote-model')}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(promote_model(request), indent=2))
    except registry.RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
