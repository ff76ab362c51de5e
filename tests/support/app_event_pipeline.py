"""The app events' delivery path on the shared stack, for the tests that receive it: the relay
(`publish_app_events`) on a subscription of session-events of its own, and `deliver_webhook` on one
ordered push subscription per destination (`webhook-<name>`, `caep-<name>`) of the app's topic,
with back-off short enough for tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from infra.local.stack import FunctionServer, Stack
from infra.local.stack.emulators import (
    APP_EVENTS_DEAD_TOPIC,
    APP_EVENTS_TOPIC,
    SESSION_EVENTS_TOPIC,
    ordered_push_subscription,
)
from support.serving import serving


@contextlib.contextmanager
def delivering(stack: Stack, env: Mapping[str, str], relay_subscription: str,
               destinations: Mapping[str, int]) -> Iterator[tuple[FunctionServer, FunctionServer]]:
    """(relay, deliver_webhook served with `env`); `destinations`: subscription name -> its max attempts."""
    host, project = stack.pubsub.host, stack.project
    with serving(stack, "publish_app_events", signature_type="cloudevent", own_port=True) as relay, \
            serving(stack, "deliver_webhook", env, signature_type="http", own_port=True) as deliver:
        ordered_push_subscription(host, project, SESSION_EVENTS_TOPIC, relay_subscription,
                                  f"{relay.url}/projects/{project}/topics/{SESSION_EVENTS_TOPIC}",
                                  dead_topic=APP_EVENTS_DEAD_TOPIC, backoff=(0.5, 2))
        for name, attempts in destinations.items():
            ordered_push_subscription(host, project, APP_EVENTS_TOPIC, name, deliver.url,
                                      dead_topic=APP_EVENTS_DEAD_TOPIC, max_attempts=attempts, backoff=(0.5, 2))
        yield relay, deliver
