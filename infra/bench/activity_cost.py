"""What recording the user's security activity adds (functions/mydevices/activity/record.py), per
login and per closure, counted the way the cost table's rows are (counting.py), on the real events
of the cost scenario.

The activity is written by the app events' relay (`publish_app_events`), which the cost scenario
does not serve (its rows are the request path and the push fan-out). So a pull subscription on
session-events collects the internal events each step of the scenario published (the trigger's
real output), and once the scenario is over each step's events go through the product's own
code, each in a counter scope of its own: `relay.handle` (one relay run: its reads, writes and
publishes) and, apart, `record` (the activity's share of it: the relay writes nothing else).
Run after the scenario, so the relay's publishes never mix with the publishes the scenario's
`settle()` waits for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from infra.bench.counting import Counter
from infra.local.stack import Stack

SUBSCRIPTION = "bench-activity"
RELAY = "publish_app_events"
ACTIVITY = "activity"


class ActivityCost:
    def __init__(self, stack: Stack, counter: Counter) -> None:
        from google.cloud import pubsub_v1

        self.stack, self.counter = stack, counter
        self.subscriber = pubsub_v1.SubscriberClient()
        self.path = self.subscriber.subscription_path(stack.project, SUBSCRIPTION)
        self.pulled: dict[str, list[dict[str, Any]]] = {}

    @contextlib.contextmanager
    def subscribed(self) -> Iterator[ActivityCost]:
        from google.api_core.exceptions import AlreadyExists
        from google.cloud import pubsub_v1

        from mydevices.config import settings

        topic = f"projects/{self.stack.project}/topics/{settings().session_events_topic}"
        with contextlib.suppress(AlreadyExists):
            self.subscriber.create_subscription(request=pubsub_v1.types.Subscription(
                name=self.path, topic=topic, enable_message_ordering=True))
        try:
            yield self
        finally:
            self.subscriber.delete_subscription(subscription=self.path)
            self.subscriber.close()

    def collect(self, step: str) -> None:
        """The internal events published since the last call: the fan-out of `step` (settled)."""
        found = self.pulled.setdefault(step, [])
        while True:
            answer = self.subscriber.pull(subscription=self.path, max_messages=100, timeout=5,
                                          return_immediately=True)
            if not answer.received_messages:
                return
            for received in answer.received_messages:
                message = received.message
                found.append({"message": {"data": message.data, "attributes": dict(message.attributes),
                                          "messageId": message.message_id}})
            self.subscriber.acknowledge(subscription=self.path,
                                        ack_ids=[received.ack_id for received in answer.received_messages])

    def measure(self, steps: set[str]) -> list[dict[str, Any]]:
        """Per step of `steps` with session events: the relay's runs and counts, and the activity's share.
        `events` counts deliveries (a change Firestore delivered twice is two), `entries` distinct documents."""
        import base64

        from mydevices.activity import record
        from mydevices.app_events import envelope, relay

        rows = []
        for step, messages in self.pulled.items():
            if not messages or step not in steps:
                continue
            entries: set[str] = set()
            for data in messages:
                body = {"message": {**data["message"], "data": base64.b64encode(data["message"]["data"]).decode()}}
                with self.counter.scope(f"{step}|{RELAY}"):  # the scope counts the run
                    relay.handle(body)
                parsed = relay.parse(body)
                if parsed is None:
                    continue
                event_id, event = parsed
                with self.counter.scope(f"{step}|{RELAY} (envelope)"):
                    derived = envelope.app_events(event_id, event, relay.incident)
                with self.counter.scope(f"{step}|{ACTIVITY}"):  # again: a redelivery, the same documents
                    entries.update(record.record(event, derived))
            tallies = self.counter.snapshot()
            rows.append({"step": step, "events": len(messages), "entries": len(entries),
                         RELAY: tallies.get(f"{step}|{RELAY}", {}),
                         ACTIVITY: tallies.get(f"{step}|{ACTIVITY}", {})})
        return rows
