"""Data rights on the real stack: a user's export of everything we keep about them (secrets left
out, a recent sign-in needed, nobody else's data), and the sweep that erases what belonged to
deleted Firebase users, never a live user's, not even when Auth cannot be asked or answers wrongly.

The module starts from an empty Firestore: the sweep walks every user, and other modules write
documents for users that never existed in Auth (which the sweep would rightly erase)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import requests
import yaml
from google.cloud import firestore

from infra.local.stack import Stack
from mydevices import documents, store, user_data
from mydevices.app_events import webhooks
from mydevices.config import settings
from mydevices.firebase_app import app
from mydevices.flows import alert_answer, export
from mydevices.push import outbox
from support.devices import IPHONE, PIXEL, Device, error_code, sign_in_with_custom_token, signed_in
from support.serving import function_url, serving

PASSWORD = "correct-horse-9"
_SPEC = yaml.safe_load((Path(__file__).parents[2] / "docs" / "openapi.yaml").read_text(encoding="utf-8"))
EXPORT_SCHEMA = jsonschema_rs.validator_for({"$ref": "#/components/schemas/AccountExport",
                                             "components": _SPEC["components"]})
callables_url = function_url("callables", {}, own_port=True)


@pytest.fixture(scope="module", autouse=True)
def empty_firestore(stack: Stack) -> Iterator[None]:
    stack.firestore.reset()
    offset = stack.clock.offset
    yield
    stack.clock.set(offset)


class User:
    """A user of the stack with two devices and one of every kind of document we keep."""

    def __init__(self, stack: Stack, api: str, db: firestore.Client) -> None:
        self.email = f"rights-{uuid.uuid4().hex[:8]}@example.com"
        self.uid, id_token = stack.auth.sign_up(self.email, PASSWORD)
        self.phone = signed_in(api, id_token, IPHONE, push=f"push-phone-{self.uid}")
        self.pixel = signed_in(api, id_token, PIXEL, push=f"push-pixel-{self.uid}")
        self.first_refresh_token = self.phone.refresh_token
        answer = self.phone.refresh()  # a rotation: a previous hash now sits beside the current one
        assert answer.status_code == 200, answer.text
        self.phone.adopt(answer)
        assert self.phone.delete(f"/v1/sessions/{self.pixel.session_id}").status_code == 200  # reauthAfter
        now = datetime.now(UTC)
        db.document(f"users/{self.uid}/securityEvents/token_reused-x").set(
            {"type": "token_reused", "sessionId": "x", "at": now, "expireAt": now})
        db.document(f"users/{self.uid}/activity/a1").set({"kind": "signed_in", "at": now})  # a collection added later
        db.collection(alert_answer.USED_TOKENS).document(f"jti-{self.uid}").set(
            {"uid": self.uid, "answer": "yes", "usedAt": now, "expireAt": now})
        event = {"type": "session.revoked", "data": {"uid": self.uid, "sessionId": self.pixel.session_id}}
        webhooks.bury(webhooks.Endpoint("backend", "https://hooks.example/x", "whsec_x"), f"e-{self.uid}",
                      json.dumps(event), 5, "HTTP 500")
        outbox.park(f"o-{self.uid}", {"type": "revoked", "uid": self.uid, "sessionId": self.pixel.session_id})
        # The app's own data beside ours, as many apps keep it: not ours to export or delete.
        db.document(f"users/{self.uid}").set(APP_FIELDS, merge=True)
        db.document(f"users/{self.uid}/{APP_COLLECTION}/billing").set({"customer": "cus_secret"})

    def fresh_id_token(self, stack: Stack) -> str:
        return stack.auth.sign_in(self.email, PASSWORD)[1]


APP_FIELDS = {"appRole": "admin"}
APP_COLLECTION = "appPrivate"


def all_paths(db: firestore.Client, uid: str) -> set[str]:
    """What Firestore holds of ours for `uid`, read directly (not through the code under test's
    listing): every collection under the account but the app's, the account if it has our fields."""
    paths = {snap.reference.path for collection in db.document(f"users/{uid}").collections()
             if collection.id != APP_COLLECTION for snap in collection.recursive().stream()}
    if set(db.document(f"users/{uid}").get().to_dict() or {}) - set(APP_FIELDS):
        paths.add(f"users/{uid}")
    for name in (store.SECRETS, alert_answer.USED_TOKENS, webhooks.DEAD):
        paths |= {s.reference.path for s in db.collection(name).where(
            filter=firestore.FieldFilter("uid", "==", uid)).stream()}
    paths |= {s.reference.path for s in db.collection(outbox.COLLECTION).where(
        filter=firestore.FieldFilter("event.uid", "==", uid)).stream()}
    return paths


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


@pytest.fixture(scope="module")
def alice(stack: Stack, api: str, db: firestore.Client) -> User:
    return User(stack, api, db)


@pytest.fixture(scope="module")
def bob(stack: Stack, api: str, db: firestore.Client) -> User:
    return User(stack, api, db)


def test_the_keyed_collections_are_the_ones_the_code_writes() -> None:
    assert dict(user_data.KEYED) == {store.SECRETS: "uid", alert_answer.USED_TOKENS: "uid", webhooks.DEAD: "uid",
                                     outbox.COLLECTION: "event.uid"}


def test_the_export_has_every_document_of_the_user_and_no_secret(
        stack: Stack, db: firestore.Client, alice: User, bob: User) -> None:
    answer = alice.phone.get("/v1/account/export")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    EXPORT_SCHEMA.validate(body)  # the documented answer (docs/openapi.yaml)
    exported = {doc["path"] for doc in body["documents"]}
    assert exported == all_paths(db, alice.uid)
    kinds = {path.split("/")[2] if path.startswith("users/") and path.count("/") > 1 else path.split("/")[0]
             for path in exported}
    assert kinds >= {"users", "sessions", "devices", "securityEvents", "activity", store.SECRETS,
                     alert_answer.USED_TOKENS, webhooks.DEAD, outbox.COLLECTION}
    # The secret fields, as the code that writes them names them: none is exported, anywhere.
    secret_doc = documents.secret("u", "h", "k", datetime.now(UTC), None)
    secret_names = {"refreshHash", "prevRefreshHash", "refreshKid", "pushToken"}
    assert secret_names <= set(secret_doc)
    assert secret_names <= set(body["removedFields"])
    assert not keys_anywhere(body["documents"]) & set(user_data.SECRET_FIELDS)
    assert not keys_anywhere(body["documents"]) & set(APP_FIELDS) and "cus_secret" not in answer.text
    text = answer.text
    for secret in db.collection(store.SECRETS).where(filter=firestore.FieldFilter("uid", "==", alice.uid)).stream():
        fields = secret.to_dict() or {}
        for name in ("refreshHash", "prevRefreshHash", "pushToken"):
            if fields.get(name):
                assert fields[name] not in text, name
    for token in (alice.phone.refresh_token, alice.first_refresh_token, alice.pixel.refresh_token,
                  alice.phone.access_token, f"push-phone-{alice.uid}"):
        assert token not in text
    # Nobody else's data.
    assert bob.uid not in text
    assert alice.uid not in bob.phone.get("/v1/account/export").text


def test_the_export_needs_a_recent_sign_in(stack: Stack, alice: User) -> None:
    stack.clock.advance(seconds=export.DEFAULT_SIGN_IN_SECONDS + 60)
    answer = alice.phone.refresh()  # a session in use, but its sign-in is old
    assert answer.status_code == 200, answer.text
    alice.phone.adopt(answer)
    stale = alice.phone.get("/v1/account/export")
    assert (stale.status_code, error_code(stale), stale.json()["error"]["maxAge"]) == (
        403, "recent_sign_in_required", export.DEFAULT_SIGN_IN_SECONDS)
    assert "documents" not in stale.text
    fresh = alice.phone.post("/v1/sessions/current/reauthenticate", json={"idToken": alice.fresh_id_token(stack)})
    assert fresh.status_code == 200, fresh.text
    assert alice.phone.get("/v1/account/export").status_code == 200


def test_exports_in_a_loop_are_refused_before_they_read_anything(
        stack: Stack, api: str, db: firestore.Client) -> None:
    """Each export reads every document of the user, and a user can grow their own: past the hourly
    allowance, an export is a 429 with Retry-After, and the next window allows it again."""
    dave = User(stack, api, db)
    allowance = settings().export_rate_per_user
    assert allowance is not None
    for _ in range(allowance.count):
        assert dave.phone.get("/v1/account/export").status_code == 200
    refused = dave.phone.get("/v1/account/export")
    assert (refused.status_code, error_code(refused)) == (429, "rate_limited"), refused.text
    assert int(refused.headers["Retry-After"]) > 0 and "documents" not in refused.text
    stack.clock.advance(seconds=allowance.seconds)
    answer = dave.phone.refresh()  # a session in use an hour later
    assert answer.status_code == 200, answer.text
    dave.phone.adopt(answer)
    fresh = dave.phone.post("/v1/sessions/current/reauthenticate", json={"idToken": dave.fresh_id_token(stack)})
    assert fresh.status_code == 200, fresh.text
    assert dave.phone.get("/v1/account/export").status_code == 200


def test_a_firebase_native_app_exports_through_the_callable(
        stack: Stack, api: str, alice: User, callables_url: str) -> None:
    answer = Device(api, dict(IPHONE, name="Alice's Mac")).login(alice.fresh_id_token(stack))
    id_token = sign_in_with_custom_token(stack, answer.json()["firebaseCustomToken"])[0]
    called = requests.post(f"{callables_url}/account_export", json={"data": None},
                           headers={"Authorization": f"Bearer {id_token}"}, timeout=30)
    assert called.status_code == 200, called.text
    result = called.json()["result"]
    assert result["uid"] == alice.uid
    assert {doc["path"] for doc in result["documents"]} >= {f"users/{alice.uid}/activity/a1"}
    stranger = requests.post(f"{callables_url}/account_export", json={"data": None}, timeout=30)
    assert stranger.status_code == 401


# --- the sweep -------------------------------------------------------------------------------------


def _delete_user(uid: str) -> None:
    from firebase_admin import auth

    auth.delete_user(uid, app=app())


def test_the_sweep_erases_a_deleted_users_data_keeps_a_live_ones_and_a_second_run_changes_nothing(
        stack: Stack, api: str, db: firestore.Client, alice: User) -> None:
    carol = User(stack, api, db)
    kept = all_paths(db, alice.uid)
    assert len(all_paths(db, carol.uid)) >= 9
    _delete_user(carol.uid)
    with serving(stack, "sweep_deleted_users", signature_type="http", own_port=True) as sweeper:
        assert requests.get(sweeper.url, timeout=60).status_code == 405  # a probe or a crawler runs nothing
        assert all_paths(db, carol.uid)
        first = requests.post(sweeper.url, timeout=60)
        assert first.status_code == 200, first.text
        assert first.json()["erasedUsers"] == 1, first.json()
        assert all_paths(db, carol.uid) == set()
        assert db.document(f"users/{carol.uid}").get().to_dict() == APP_FIELDS  # the app's own stay
        assert db.document(f"users/{carol.uid}/{APP_COLLECTION}/billing").get().exists
        assert all_paths(db, alice.uid) == kept
        second = requests.post(sweeper.url, timeout=60)
        assert second.status_code == 200
        assert second.json()["erasedUsers"] == 0 and second.json()["finished"] is True
        assert all_paths(db, alice.uid) == kept
    log = sweeper.log_path.read_text()
    assert carol.uid not in log and carol.email not in log  # counts only


def test_an_apps_ondelete_trigger_has_one_deleted_user_erased_at_once_and_never_a_live_one(
        stack: Stack, api: str, db: firestore.Client, alice: User) -> None:
    erin = User(stack, api, db)
    kept = all_paths(db, alice.uid)
    _delete_user(erin.uid)
    with serving(stack, "sweep_deleted_users", signature_type="http", own_port=True) as sweeper:
        for bad in ('{"uids": "x"}', '{"uids": []}', "not json", json.dumps({"uids": ["u"] * 101})):
            refused = requests.post(sweeper.url, data=bad, timeout=60)
            assert (refused.status_code, error_code(refused)) == (400, "invalid_request"), bad
        assert all_paths(db, erin.uid)
        named = requests.post(sweeper.url, json={"uids": [erin.uid, alice.uid, "a/b", "__x__"]}, timeout=60)
        assert named.status_code == 200, named.text
        assert named.json()["erasedUsers"] == 1
    assert all_paths(db, erin.uid) == set()
    assert all_paths(db, alice.uid) == kept


def test_the_sweep_erases_nothing_when_auth_cannot_be_asked(
        stack: Stack, api: str, db: firestore.Client) -> None:
    dave = User(stack, api, db)
    _delete_user(dave.uid)
    before = all_paths(db, dave.uid)
    closed_port = f"127.0.0.1:{_closed_port()}"
    with serving(stack, "sweep_deleted_users", {"FIREBASE_AUTH_EMULATOR_HOST": closed_port},
                 signature_type="http", own_port=True) as sweeper:
        down = requests.post(sweeper.url, timeout=120)
    assert down.status_code == 503, down.text
    assert error_code(down) == "unavailable" and down.headers["Retry-After"]
    assert all_paths(db, dave.uid) == before
    with serving(stack, "sweep_deleted_users", {"FIREBASE_AUTH_EMULATOR_HOST": closed_port},
                 signature_type="http", own_port=True) as sweeper:
        named = requests.post(sweeper.url, json={"uids": [dave.uid]}, timeout=120)
    assert named.status_code == 503, named.text
    assert all_paths(db, dave.uid) == before


def test_the_sweep_refuses_when_auth_reports_most_users_gone(
        stack: Stack, db: firestore.Client, alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong Auth project or an emulator that lost its users looks like mass deletion: the page is
    left alone until an operator says it is real."""
    from mydevices import deleted_users

    strangers = [f"never-in-auth-{uuid.uuid4().hex[:6]}-{n}" for n in range(deleted_users.MIN_PAGE_FOR_SHARE * 2)]
    for uid in strangers:
        db.document(f"users/{uid}/sessions/s").set({"uid": uid, "status": "active"})
    no_firebase_uid = "x" * (deleted_users.MAX_UID_LENGTH + 1)  # get_users refuses it: it must not stop every run
    db.document(f"users/{no_firebase_uid}/sessions/s").set({"status": "active"})
    kept = all_paths(db, alice.uid)
    refused = deleted_users.sweep()
    assert refused.stopped == "mass_deletion" and refused.erased_users == 0
    assert all(all_paths(db, uid) for uid in strangers)
    monkeypatch.setenv("MYDEVICES_SWEEP_TRUST_MASS_DELETION", "1")
    trusted = deleted_users.sweep()
    assert trusted.erased_users >= len(strangers) and trusted.finished
    assert not any(all_paths(db, uid) for uid in strangers)
    assert all_paths(db, alice.uid) == kept
    assert all_paths(db, no_firebase_uid)  # left alone: no Firebase user can have that id


def _closed_port() -> int:
    from infra.local.stack import free_port

    return free_port()
