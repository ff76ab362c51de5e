"""The functions `run` serves beside ENTRY_POINTS, plumbed as the tests plumb them (tests/events,
tests/api/test_data_rights.py): the app-event relay (publish_app_events, behind its ordered push
subscription on session-events), the webhook delivery (deliver_webhook, one `webhook-<name>`
subscription per endpoint of MYDEVICES_WEBHOOKS_JSON in the environment) and the deleted-users
sweep, which nothing schedules locally: POST to it (the line `run` prints)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from infra.local.stack.emulators import (
    APP_EVENTS_DEAD_TOPIC,
    APP_EVENTS_TOPIC,
    SESSION_EVENTS_TOPIC,
    ordered_push_subscription,
)
from infra.local.stack.ports import free_port
from infra.local.stack.processes import wait_all_ready
from infra.local.stack.servers import FunctionServer
from infra.local.stack.stack import Stack

TARGETS = {"publish_app_events": "cloudevent", "deliver_webhook": "http", "sweep_deleted_users": "http"}


def webhook_names(environ: Mapping[str, str]) -> list[str]:
    """The endpoint names of MYDEVICES_WEBHOOKS_JSON (none when unset or not a JSON object)."""
    try:
        endpoints = json.loads(environ.get("MYDEVICES_WEBHOOKS_JSON") or "{}")
    except ValueError:
        return []
    return sorted(endpoints) if isinstance(endpoints, dict) else []


def start(stack: Stack) -> dict[str, FunctionServer]:
    """Serve the three on free ports and create the relay's and the webhooks' subscriptions."""
    servers = {target: stack.start_function(target, kind, port=free_port(), wait=False)
               for target, kind in TARGETS.items()}
    wait_all_ready(servers.values())
    host, project = stack.pubsub.host, stack.project
    relay = servers["publish_app_events"].url
    ordered_push_subscription(host, project, SESSION_EVENTS_TOPIC, "session-events-app",
                              f"{relay}/projects/{project}/topics/{SESSION_EVENTS_TOPIC}",
                              dead_topic=APP_EVENTS_DEAD_TOPIC)
    for name in webhook_names(os.environ):
        ordered_push_subscription(host, project, APP_EVENTS_TOPIC, f"webhook-{name}", servers["deliver_webhook"].url,
                                  dead_topic=APP_EVENTS_DEAD_TOPIC)
    return servers


def describe(servers: dict[str, FunctionServer]) -> str:
    hooks = webhook_names(os.environ)
    notes = {
        "publish_app_events": f"session-events -> topic {APP_EVENTS_TOPIC} (pull it: your backend)",
        "deliver_webhook": (f"webhooks: {', '.join(hooks)}" if hooks
                            else "no webhooks (set MYDEVICES_WEBHOOKS_JSON before `run`)"),
        "sweep_deleted_users": f"not scheduled here: curl -X POST {servers['sweep_deleted_users'].url}",
    }
    return "".join(f"  function {target:<20} {server.url.removeprefix('http://'):<16} {notes[target]}\n"
                   for target, server in servers.items())
