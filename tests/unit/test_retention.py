"""Every collection the product lets grow has a TTL policy on `expireAt`, and the data-rights page
states each one's retention (docs/data-rights.md)."""

from __future__ import annotations

import json

from mydevices import rate_limits, store
from mydevices.activity import record as activity_record
from mydevices.app_events import webhooks
from mydevices.flows import alert_answer
from mydevices.push import claims, outbox
from support import ROOT

GROWING = {store.SESSIONS, store.SECRETS, store.SECURITY_EVENTS, claims.COLLECTION, alert_answer.USED_TOKENS,
           rate_limits.COLLECTION, outbox.COLLECTION, webhooks.DEAD, webhooks.FAILURES, activity_record.COLLECTION,
           store.SUPPORT_AUDIT}


def test_every_growing_collection_has_a_ttl_policy_on_expire_at() -> None:
    overrides = json.loads((ROOT / "firestore.indexes.json").read_text(encoding="utf-8"))["fieldOverrides"]
    ttl = {o["collectionGroup"] for o in overrides if o.get("ttl") and o["fieldPath"] == "expireAt"}
    assert GROWING - ttl == set()


def test_the_data_rights_page_states_the_retention_of_each() -> None:
    page = (ROOT / "docs" / "data-rights.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    for collection in GROWING | {store.USERS, store.DEVICES}:
        assert any(f"`{collection}" in row or f"/{collection}/" in row for row in rows), collection
