"""Render, offline, the Kubernetes Job a Prefect `kubernetes` worker would submit for a flow run.

    .venv/bin/python infra/prefect/render_job.py infra/prefect/gpu-pool.json \\
        --values '{"image": "registry.example.com/r1-posttrain:0.1.0", "gpu_count": 2}'

Two steps, each done by Prefect's own code:
1. the job variables are checked against the pool template's `variables` schema exactly as the
   Prefect server checks them when a deployment or a flow run is created (so a wrong type, or a
   variable the pool does not declare, fails here as it would fail there);
2. prefect-kubernetes renders the Job: `KubernetesWorkerJobConfiguration.from_template_and_values`
   then `prepare_for_flow_run` (what the worker does before it calls the Kubernetes API).

Prints the Job as YAML. Needs prefect-kubernetes (a dev dependency); tests/infra/test_infra.py imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml


class JobVariablesError(ValueError):
    """Job variables the pool's template refuses; the message names the pool and the variable."""


def load_template(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def check_job_variables(template: dict[str, Any], values: dict[str, Any], pool: str) -> None:
    """Validate `values` as the Prefect server does on flow-run creation (required keys included)."""
    from prefect.utilities.schema_tools import ValidationError, validate

    try:
        validate(values, template["variables"], raise_on_error=True, preprocess=True, ignore_required=False, allow_none_with_default=True)
    except ValidationError as exc:
        raise JobVariablesError(f"work pool {pool!r} refuses these job variables: {exc}") from None


def example_run(deployment_name: str, job_variables: dict[str, Any], flow_name: str = "post-training"):
    """A flow, a deployment and a flow run of it, shaped like the ones the Prefect API returns."""
    from prefect.client.schemas.objects import Flow, FlowRun
    from prefect.client.schemas.responses import DeploymentResponse

    flow = Flow(id=uuid.uuid4(), name=flow_name)
    deployment = DeploymentResponse(
        id=uuid.uuid4(),
        name=deployment_name,
        flow_id=flow.id,
        entrypoint="flows/post_training.py:post_training",
        job_variables=job_variables,
        work_queue_name="default",
    )
    flow_run = FlowRun(id=uuid.uuid4(), name="rendered-run", flow_id=flow.id, deployment_id=deployment.id, job_variables={})
    return flow, deployment, flow_run


def render_job(template: dict[str, Any], values: dict[str, Any], pool: str, flow=None, deployment=None, flow_run=None) -> dict[str, Any]:
    """The Job manifest (a dict) the worker would create; raises JobVariablesError on bad values."""
    from prefect.client.orchestration import PrefectClient
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    check_job_variables(template, values, pool)
    if flow_run is None:
        flow, deployment, flow_run = example_run(f"{pool}-render", values)
    # The worker hands in its API client, used only to resolve `{{ prefect.blocks.* }}` and
    # `{{ prefect.variables.* }}` references. Our templates have none, so a client that is never
    # opened keeps this offline (without it Prefect would start a temporary server).
    offline_client = PrefectClient(api="http://127.0.0.1:9/api")
    configuration = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(template, values, client=offline_client))
    configuration.prepare_for_flow_run(flow_run=flow_run, deployment=deployment, flow=flow)
    return configuration.job_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", help="a pool's base job template (JSON)")
    parser.add_argument("--values", default="{}", help="job variables as a JSON object")
    args = parser.parse_args(argv)
    try:
        job = render_job(load_template(args.template), json.loads(args.values), Path(args.template).stem)
    except JobVariablesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(job, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
