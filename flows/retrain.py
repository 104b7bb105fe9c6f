"""The `retrain` flow (scheduled in prefect.yaml): retrain when the data or the params changed.

It reads `params.yaml` at run time (so edits reach the schedule), prepares the data as the
pipeline does (the data stage, then `dvc add`: the data version is the DVC md5), and compares
that md5 and the params hash with the current champion's lineage tags. Both equal: nothing to
learn, the run is skipped and says so. Otherwise (or with `force`) it runs the `post-training`
flow as a subflow, which registers the model and applies the promotion gate.

Code changes are not part of the comparison (the champion's commit differs on every commit,
even for a README): retrain after a code change with `force`.

    python -m flows.retrain [--params params.yaml] [--profile local] [--force]
"""

from __future__ import annotations

import argparse
import json
import sys

from prefect import flow, get_run_logger
from pydantic import Field

from components import promotion, tracking
from components.config import ParamsError, StrictModel
from components.versioning import params_hash
from flows.params import load_params
from flows.post_training import ValidationFailed, post_training, prepare_data


class RetrainRequest(StrictModel):
    """Which params to retrain with, and whether to retrain even when nothing changed."""

    params_file: str = Field("params.yaml", min_length=1, description="params file, read at run time (relative to the working directory)")
    profile: str = Field("local", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="params.yaml profile")
    force: bool = Field(False, description="run the pipeline even when the data and params equal the champion's lineage")
    recompute: bool = Field(False, description="ignore the stage cache and recompute every stage (the pipeline's --force)")


@flow(name="retrain", log_prints=True)
def retrain(request: RetrainRequest = RetrainRequest()) -> dict:  # noqa: B008
    """Retrain on the latest data if it or the params changed since the champion; returns what happened.

    Args:
        request: the params file and profile to train with; `force` retrains even when nothing changed
    """
    logger = get_run_logger()
    params = load_params(request.params_file, request.profile)
    tracking.connect(params.tracking.tracking_uri)
    _, data_version = prepare_data(params)
    current = {"data_md5": data_version["data_md5"], "params_hash": params_hash(params)}
    champion = promotion.champion_lineage(params.tracking.registered_model)
    changes = lineage_changes(champion, current)
    if not changes and not request.force:
        reason = (
            f"skipped: data {current['data_md5']} and params {current['params_hash'][:12]} equal champion v{champion['version']}'s lineage"
        )
        logger.info(reason)
        return {"status": "skipped", "reason": reason, "champion": champion["version"], **current}
    reason = "; ".join(changes) if changes else "forced: data and params equal the champion's lineage"
    logger.info("retraining: %s", reason)
    summary = post_training(params, force=request.recompute)
    return {"status": "ran", "reason": reason, "model": summary["model"], "alias": summary["alias"], **current}


def lineage_changes(champion: dict[str, str] | None, current: dict[str, str]) -> list[str]:
    """What differs between the champion's lineage and now, in words (empty: nothing)."""
    if champion is None:
        return ["no champion yet"]
    labels = {"data_md5": "data changed (DVC md5)", "params_hash": "params changed (hash)"}
    return [f"{labels[key]}: {champion.get(key) or 'unknown'} -> {value}" for key, value in current.items() if champion.get(key) != value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Retrain if the data or params changed since the champion.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--force", action="store_true", help="retrain even when nothing changed")
    parser.add_argument("--recompute", action="store_true", help="ignore the stage cache")
    args = parser.parse_args(argv)
    request = RetrainRequest(params_file=args.params, profile=args.profile, force=args.force, recompute=args.recompute)
    try:
        result = retrain(request)
    except (ParamsError, ValidationFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ParamsError) else 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
