"""firestore.rules on the real Firestore emulator, exercised as a client would: REST reads, queries
and writes and gRPC listens, each carrying an emulator ID token of a real Auth-emulator user (rules
apply only to end-user tokens; the server's `Bearer owner` bypasses them).

The matrix: who x what (a document of each kind the server keeps, plus paths nobody uses) x how
(get, list, query, listen to the document, listen to its collection, create, set, update, delete).
"owner" is a device of the user with an active session, signed in to Firebase with the custom
token its login returned (its ID token carries `sid` and `did`), as an app does. The other whos
are what an attacker may hold: the same user's plain Firebase ID token (no session claims), the
ID token of the user's device whose session was closed through the API, the ID token of a
session its device has since replaced by logging in again, another user's device with an active
session, and no token. Only the owner reading their own session documents is allowed; everything
else is denied, and a denied write leaves the data as it was.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import requests
from firebase_admin import auth
from google.cloud import firestore
from google.cloud.firestore_v1.types import ListenRequest, ListenResponse, StructuredQuery, Target

from infra.local.stack import Stack
from mydevices.firebase_app import app
from support.devices import IPAD, IPHONE, PIXEL, Device, sign_in_with_custom_token

READS = ["get", "list", "query", "listen-document", "listen-collection"]
WRITES = ["create", "set", "update", "delete"]
WHO = ["owner", "owner-plain-token", "owner-closed-device", "owner-replaced-session", "other-user", "anonymous",
       "support-agent"]  # a Firebase user with the support API's claim (tokens/support_agent.py): no more here
# Every kind of document the server keeps (docs/concepts/sessions.md, "Firestore"), plus paths no rule mentions.
# `{uid}`, `{sid}`, `{did}` are the owner's.
TARGETS = {
    "own-session": "users/{uid}/sessions/{sid}",
    "session-secret": "sessionSecrets/{sid}",
    "device-pointer": "users/{uid}/devices/{did}",
    "security-event": "users/{uid}/securityEvents/rules-event",
    "processed-event": "processedEvents/rules-event",
    "used-action-token": "usedActionTokens/rules-jti",
    "user-root-document": "users/{uid}",
    "unrelated-path": "anything/else",
    "support-audit": "supportAudit/rules-audit",
}


@dataclass
class Seeded:
    stack: Stack
    uid: str
    tokens: dict[str, str | None]  # who -> ID token
    paths: dict[str, str]  # target -> document path
    owner: Device
    db: firestore.Client
    grpc_channel: grpc.Channel

    @property
    def database(self) -> str:
        return f"projects/{self.stack.project}/databases/(default)"

    @property
    def rest(self) -> str:
        return f"http://{self.stack.firestore.host}/v1/{self.database}/documents"

    def snapshot(self, path: str) -> dict[str, Any] | None:
        return self.db.document(path).get().to_dict()


def firebase_sign_in(stack: Stack, device: Device, login_token: str) -> str:
    """Log `device` in through the API, then sign in to Firebase with the returned custom token,
    as the app does: the Firebase ID token the rules see."""
    return sign_in_with_custom_token(stack, device.login(login_token).json()["firebaseCustomToken"])[0]


@pytest.fixture(scope="module")
def seeded(api: str, stack: Stack) -> Iterator[Seeded]:
    """The owner signs in through the API (session, secrets, device pointer are the real ones);
    the documents only the push and theft paths write are seeded with the server's client."""
    uid, owner_login = stack.auth.sign_up()
    other_uid, other_login = stack.auth.sign_up()
    owner = Device(api, dict(IPHONE))
    owner_token = firebase_sign_in(stack, owner, owner_login)
    closed = Device(api, dict(PIXEL))
    closed_token = firebase_sign_in(stack, closed, owner_login)
    replaced = Device(api, dict(IPAD))
    replaced_token = firebase_sign_in(stack, replaced, owner_login)
    replaced.login(owner_login)  # the same device logs in again: the session in replaced_token is over
    assert owner.delete(f"/v1/sessions/{closed.session_id}").status_code == 200
    other_token = firebase_sign_in(stack, Device(api, dict(PIXEL)), other_login)  # active sessions of their own
    tokens: dict[str, str | None] = {
        "owner": owner_token, "owner-plain-token": owner_login, "owner-closed-device": closed_token,
        "owner-replaced-session": replaced_token, "other-user": other_token, "anonymous": None,
    }
    agent_email = f"agent-{secrets.token_hex(4)}@example.com"
    agent_uid, _ = stack.auth.sign_up(agent_email)
    auth.set_custom_user_claims(agent_uid, {"mydevicesSupport": True}, app=app())
    tokens["support-agent"] = stack.auth.sign_in(agent_email)[1]  # its ID token carries the claim
    db = firestore.Client(project=stack.project)
    ids = {"uid": uid, "sid": owner.session_id, "did": owner.device_id.split(".", 1)[0]}
    paths = {name: template.format(**ids) for name, template in TARGETS.items()}
    for name in ("security-event", "processed-event", "used-action-token", "user-root-document", "unrelated-path",
                 "support-audit"):
        db.document(paths[name]).set({"seededBy": "test_security_rules", "uid": uid})
    for name, path in paths.items():
        assert db.document(path).get().exists, name
    channel = grpc.insecure_channel(stack.firestore.host)
    yield Seeded(stack, uid, tokens, paths, owner, db, channel)
    channel.close()


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _split(path: str) -> tuple[str, str, str]:
    """users/u/sessions/s -> (parent `users/u`, collection id `sessions`, document id `s`)."""
    parent, _, rest = path.rpartition("/")
    parent, _, collection = parent.rpartition("/") if "/" in parent else ("", "", parent)
    return parent, collection, rest


# --- REST -----------------------------------------------------------------------------------------


def _rest(seeded: Seeded, how: str, path: str, token: str | None) -> requests.Response:
    parent, collection, _ = _split(path)
    base, headers = seeded.rest, _auth(token)
    collection_url = f"{base}/{parent}/{collection}" if parent else f"{base}/{collection}"
    fields = {"fields": {"status": {"stringValue": "active"}, "probe": {"stringValue": "rules"}}}
    if how == "get":
        return requests.get(f"{base}/{path}", headers=headers, timeout=30)
    if how == "list":
        return requests.get(collection_url, headers=headers, timeout=30)
    if how == "query":
        query = {"structuredQuery": {"from": [{"collectionId": collection}]}}
        url = f"{base}/{parent}:runQuery" if parent else f"{base}:runQuery"
        return requests.post(url, json=query, headers=headers, timeout=30)
    if how == "create":
        return requests.post(f"{collection_url}?documentId=probe-{secrets.token_hex(4)}", json=fields,
                             headers=headers, timeout=30)
    if how == "set":  # create-or-replace the whole document
        return requests.patch(f"{base}/{path}", json=fields, headers=headers, timeout=30)
    if how == "update":
        return requests.patch(f"{base}/{path}?updateMask.fieldPaths=probe&currentDocument.exists=true",
                              json=fields, headers=headers, timeout=30)
    if how == "delete":
        return requests.delete(f"{base}/{path}", headers=headers, timeout=30)
    raise AssertionError(how)


# --- gRPC listen --------------------------------------------------------------------------------------


def _listen(seeded: Seeded, target: Target, token: str | None, *, on_current: Callable[[], Any] | None = None,
            until: Callable[[list[ListenResponse]], bool] | None = None,
            arrivals: list[float] | None = None) -> tuple[str, list[ListenResponse]]:
    """Open a Listen stream as the Firebase SDKs do. Returns ("current", responses) once the target
    is in sync (and, from then on, `until(responses)` holds), or ("removed:<code>", responses).
    `arrivals` gets the monotonic time each response was read at."""
    call = seeded.grpc_channel.stream_stream(  # the Firestore API's bidirectional Listen method
        "/google.firestore.v1.Firestore/Listen",
        request_serializer=ListenRequest.serialize,
        response_deserializer=ListenResponse.deserialize,
    )
    done = threading.Event()

    def requests_() -> Iterator[ListenRequest]:
        yield ListenRequest(database=seeded.database, add_target=target)
        done.wait(60)  # keep the stream open until the answer is read

    metadata = [("google-cloud-resource-prefix", seeded.database),
                *([("authorization", f"Bearer {token}")] if token else [])]
    stream = call(requests_(), metadata=metadata, timeout=60)
    seen: list[ListenResponse] = []
    synced = False
    try:
        for response in stream:
            seen.append(response)
            if arrivals is not None:
                arrivals.append(time.monotonic())
            change = response.target_change if "target_change" in response else None
            if change is not None and change.target_change_type == change.TargetChangeType.REMOVE:
                return f"removed:{change.cause.code}", seen
            if change is not None and change.target_change_type == change.TargetChangeType.CURRENT and not synced:
                synced = True
                if on_current is not None:
                    on_current()
            if synced and (until is None or until(seen)):
                return "current", seen
        return "ended", seen
    finally:
        done.set()
        stream.cancel()


def _document_target(seeded: Seeded, path: str) -> Target:
    return Target(target_id=1, documents=Target.DocumentsTarget(documents=[f"{seeded.database}/documents/{path}"]))


def _collection_target(seeded: Seeded, path: str) -> Target:
    parent, collection, _ = _split(path)
    query = StructuredQuery(from_=[StructuredQuery.CollectionSelector(collection_id=collection)])
    full_parent = f"{seeded.database}/documents" + (f"/{parent}" if parent else "")
    return Target(target_id=1, query=Target.QueryTarget(parent=full_parent, structured_query=query))


def _documents(responses: list[ListenResponse]) -> list[str]:
    return [r.document_change.document.name for r in responses if "document_change" in r]


# --- the matrix --------------------------------------------------------------------------------------

CASES = [(who, target, how) for who in WHO for target in TARGETS for how in READS + WRITES]


def _allowed(who: str, target: str, how: str) -> bool:
    return who == "owner" and target == "own-session" and how in READS


@pytest.mark.parametrize(("who", "target", "how"), CASES, ids=["-".join(case) for case in CASES])
def test_rules(seeded: Seeded, who: str, target: str, how: str) -> None:
    path, token = seeded.paths[target], seeded.tokens[who]
    before = seeded.snapshot(path)
    if how.startswith("listen"):
        make = _document_target if how == "listen-document" else _collection_target
        outcome, responses = _listen(seeded, make(seeded, path), token)
        if _allowed(who, target, how):
            assert outcome == "current"
            assert f"{seeded.database}/documents/{path}" in _documents(responses)
        else:
            assert outcome == f"removed:{grpc.StatusCode.PERMISSION_DENIED.value[0]}", responses
            assert _documents(responses) == []
        return
    response = _rest(seeded, how, path, token)
    if _allowed(who, target, how):
        assert response.status_code == 200, response.text
        assert IPHONE["name"] in response.text and seeded.owner.session_id in response.text
        return
    assert response.status_code == 403, response.text
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
    assert seeded.snapshot(path) == before  # nothing written, nothing removed
    if how == "create":
        parent, collection, _ = _split(path)
        probes = seeded.db.collection(f"{parent}/{collection}" if parent else collection).stream()
        assert not [doc.id for doc in probes if doc.id.startswith("probe-")]


# --- beyond the matrix --------------------------------------------------------------------------------


def test_a_listener_sees_its_session_closed_live(seeded: Seeded, api: str, stack: Stack) -> None:
    """The Active sessions screen's case: listening to one's sessions, a close made through the API
    from another device arrives on the open stream as `status: revoked`."""
    uid, login_token = stack.auth.sign_up()
    phone, tablet = Device(api, dict(IPHONE)), Device(api, dict(PIXEL))
    id_token = firebase_sign_in(stack, phone, login_token)
    tablet.login(login_token)

    def close_tablet() -> None:  # once the listener is in sync, so the close must arrive as a change
        assert phone.delete(f"/v1/sessions/{tablet.session_id}").status_code == 200

    def revoked(responses: list[ListenResponse]) -> bool:
        return any(
            r.document_change.document.name.endswith(f"/sessions/{tablet.session_id}")
            and r.document_change.document.fields["status"].string_value == "revoked"
            for r in responses if "document_change" in r
        )

    target = _collection_target(seeded, f"users/{uid}/sessions/x")
    outcome, responses = _listen(seeded, target, id_token, on_current=close_tablet, until=revoked)
    assert outcome == "current" and revoked(responses)


def _revoked(responses: list[ListenResponse]) -> list[str]:
    return [r.document_change.document.name for r in responses if "document_change" in r
            and r.document_change.document.fields["status"].string_value == "revoked"]


def test_a_listen_on_the_device_list_opened_before_the_close_ends_with_the_close(seeded: Seeded, api: str,
                                                                                stack: Stack) -> None:
    """The closed device's own listener on the session list: the close changes a document it
    watches, the emulator evaluates the rules again with the session now closed, and removes the
    target (PERMISSION_DENIED) without delivering the change, nor anything after it."""
    uid, login_token = stack.auth.sign_up()
    phone, pixel = Device(api, dict(IPHONE)), Device(api, dict(PIXEL))
    firebase_sign_in(stack, phone, login_token)
    pixel_token = firebase_sign_in(stack, pixel, login_token)

    def close_pixel() -> None:
        assert phone.delete(f"/v1/sessions/{pixel.session_id}").status_code == 200

    target = _collection_target(seeded, f"users/{uid}/sessions/x")
    outcome, responses = _listen(seeded, target, pixel_token, on_current=close_pixel, until=lambda _: False)
    assert outcome == f"removed:{grpc.StatusCode.PERMISSION_DENIED.value[0]}", responses
    assert _revoked(responses) == []  # it never saw its own close: that news comes from the API or the push
    assert len(_documents(responses)) == 2  # only what it was allowed to see while active


def test_a_listen_opened_before_the_close_is_cut_at_the_next_change_it_would_deliver(seeded: Seeded, api: str,
                                                                                    stack: Stack) -> None:
    """What the emulator does (checked, not promised by Firebase): a closed device's listener on a
    document the close did not touch stays open and silent, until the next change to that
    document; that change is not delivered, the target is removed with PERMISSION_DENIED. So a
    closed device keeps what it had already received, learns nothing new, and an app must stop
    its listeners itself when it is told it was signed out."""
    uid, login_token = stack.auth.sign_up()
    phone, pixel = Device(api, dict(IPHONE)), Device(api, dict(PIXEL))
    firebase_sign_in(stack, phone, login_token)
    pixel_token = firebase_sign_in(stack, pixel, login_token)
    phone_doc = f"users/{uid}/sessions/{phone.session_id}"
    arrivals: list[float] = []
    marks: dict[str, float] = {}

    def close_then_change_the_phone() -> None:
        assert phone.delete(f"/v1/sessions/{pixel.session_id}").status_code == 200
        marks["closed"] = time.monotonic()
        time.sleep(2.0)  # the listener stays open meanwhile: the emulator has nothing to re-check
        marks["changed"] = time.monotonic()
        seeded.db.document(phone_doc).update({"lastActiveAt": firestore.SERVER_TIMESTAMP})  # as a validation does

    actions = threading.Thread(target=close_then_change_the_phone)
    outcome, responses = _listen(seeded, _document_target(seeded, phone_doc), pixel_token,
                                 on_current=actions.start, until=lambda _: False, arrivals=arrivals)
    actions.join(30)
    assert outcome == f"removed:{grpc.StatusCode.PERMISSION_DENIED.value[0]}", responses
    assert arrivals[-1] >= marks["changed"] > marks["closed"]  # cut at the change, not at the close
    assert _documents(responses) == [f"{seeded.database}/documents/{phone_doc}"]  # the first snapshot only


def test_a_collection_group_query_over_everyones_sessions_is_denied(seeded: Seeded) -> None:
    query: dict[str, Any] = {"structuredQuery": {"from": [{"collectionId": "sessions", "allDescendants": True}]}}
    for token in seeded.tokens.values():
        response = requests.post(f"{seeded.rest}:runQuery", json=query, headers=_auth(token), timeout=30)
        assert response.status_code == 403, response.text


def test_a_query_for_only_their_own_sessions_across_users_is_still_denied(seeded: Seeded) -> None:
    """Rules are not filters: even a query whose answer would be the owner's own documents is
    refused when it is not scoped to their own path."""
    query: dict[str, Any] = {"structuredQuery": {
        "from": [{"collectionId": "sessions", "allDescendants": True}],
        "where": {"fieldFilter": {"field": {"fieldPath": "uid"}, "op": "EQUAL", "value": {"stringValue": seeded.uid}}},
    }}
    response = requests.post(f"{seeded.rest}:runQuery", json=query, headers=_auth(seeded.tokens["owner"]), timeout=30)
    assert response.status_code == 403, response.text
