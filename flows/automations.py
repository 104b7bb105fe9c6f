"""What `make deploy` sets up beside prefect.yaml's deployments: the webhook automation, the schedules.

- The `posttrain-promotion-refused` automation: on each `posttrain.promotion.refused` event
  (flows/events.py) it sends a notification through the Custom Webhook block `posttrain-webhook`,
  whose URL is `--webhook-url` (or $POSTTRAIN_WEBHOOK_URL). The POST's JSON body is
  `{"subject": ..., "body": ...}`; the body names the model, both versions and the gate's reason.
  Without a URL nothing is created (an automation set up before is left as it is).
- Schedules: prefect.yaml declares them inactive, so a deploy never starts training on a clock
  by surprise; `--schedules active` arms them (`make deploy SCHEDULES=active`), `paused` pauses them.

Both are idempotent: the block is overwritten, the automation is found by name and updated.
The evaluate-model automations are not here: they are `triggers:` of that deployment in prefect.yaml.

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.automations \\
        [--webhook-url https://hooks.example/...] [--schedules active|paused]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

import yaml
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from flows import events

BLOCK_NAME = "posttrain-webhook"
AUTOMATION_NAME = "posttrain-promotion-refused"
SUBJECT = "Promotion refused: {{ event.resource['posttrain.model.name'] }} v{{ event.resource['posttrain.model.version'] }}"
BODY = (
    "The gate kept {{ event.resource['posttrain.model.name'] }} v{{ event.payload.champion_version }} as champion "
    "and refused v{{ event.payload.challenger_version }} (challenger). Reason: {{ event.payload.reason }}"
)


def save_webhook_block(url: str) -> UUID:
    """The Custom Webhook block the notification goes through (overwritten: the URL may have changed)."""
    block = CustomWebhookNotificationBlock(
        name=BLOCK_NAME,
        url=url,
        json_data={"subject": "{{subject}}", "body": "{{body}}"},  # the block fills these in, not Jinja
    )
    return block.save(BLOCK_NAME, overwrite=True)


def refused_promotion_automation(block_id: UUID) -> AutomationCore:
    trigger = EventTrigger(
        expect={events.REFUSED},
        match={"prefect.resource.id": "mlflow.model-version.*"},
        posture=Posture.Reactive,
        threshold=1,
    )
    return AutomationCore(
        name=AUTOMATION_NAME,
        description="Notify the webhook when the promotion gate refuses a new model version (flows/automations.py).",
        trigger=trigger,
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    )


def ensure_refused_notification(url: str) -> UUID:
    """Create or update the automation (one per name); returns its id."""
    automation = refused_promotion_automation(save_webhook_block(url))
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(AUTOMATION_NAME)
        for duplicate in existing[1:]:  # made by hand or by an older version of this script
            client.delete_automation(duplicate.id)
        if existing:
            client.update_automation(existing[0].id, automation)
            return existing[0].id
        return client.create_automation(automation)


def scheduled_deployments(prefect_file: Path) -> list[str]:
    """The names of the deployments in `prefect_file` that declare schedules."""
    spec = yaml.safe_load(prefect_file.read_text())
    return [d["name"] for d in spec.get("deployments", []) if d.get("schedules")]


def set_schedules(names: list[str], active: bool) -> int:
    """Arm (or pause) every schedule of the deployments called `names`; returns how many changed state."""
    changed = 0
    with get_client(sync_client=True) as client:
        found = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names)))
        missing = set(names) - {d.name for d in found}
        if missing:
            raise LookupError(f"deployments {sorted(missing)} are not on the server: run `prefect deploy --all` first")
        for deployment in found:
            for schedule in deployment.schedules:
                if schedule.active != active:
                    client.update_deployment_schedule(deployment.id, schedule.id, active=active)
                    changed += 1
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Set up the refused-promotion webhook and the deployments' schedules.")
    parser.add_argument("--webhook-url", default="", help="where refused promotions are POSTed (default: $POSTTRAIN_WEBHOOK_URL)")
    parser.add_argument("--schedules", choices=["active", "paused"], default=None, help="arm or pause the schedules of prefect.yaml")
    parser.add_argument("--prefect-file", default="prefect.yaml", type=Path)
    args = parser.parse_args(argv)
    url = args.webhook_url or os.environ.get("POSTTRAIN_WEBHOOK_URL", "")
    if url and urlsplit(url).scheme not in ("http", "https"):
        parser.error(f"--webhook-url: expected an http(s) URL, got scheme {urlsplit(url).scheme!r}")
    if url:
        automation_id = ensure_refused_notification(url)
        # the host only: a webhook URL often carries its token
        print(f"automation {AUTOMATION_NAME} ({automation_id}): refused promotions are POSTed to {urlsplit(url).netloc}")
    else:
        print(f"no webhook URL (--webhook-url or POSTTRAIN_WEBHOOK_URL): automation {AUTOMATION_NAME} not set up")
    if args.schedules:
        names = scheduled_deployments(args.prefect_file)
        try:
            changed = set_schedules(names, active=args.schedules == "active")
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"schedules of {', '.join(names) or 'no deployment'}: {args.schedules} ({changed} changed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
