"""Validation: the three steps every call takes. Is the device known, is the token valid, does
this user have this session, active, on this device.

It costs one document read, which also carries the session's deadlines (lifetimes.py), and for
our access tokens no write: the device's refresh records its activity and moves its idle deadline
(documents.activity), at most `access_ttl` after the call. A Firebase ID token, which the app's
Firebase SDK renews with Google and never with us, has its session's activity written by validation
instead, by the same rule. A Firebase ID token from a My Devices login (tokens/firebase.py) is
accepted in place of our access token. An access token of a session its device has since replaced
is a copy in use (copied_token.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as core_exceptions

from .. import clock, closing, documents, lifetimes, store
from ..config import settings
from ..documents import ACTIVE
from ..errors import Code, Refusal
from ..tokens import access, firebase
from ..tokens.keys import keyring
from . import copied_token

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """A request that passed all three validation steps."""

    uid: str
    sid: str
    did: str
    session: dict[str, Any]


def validate(access_token: str | None, did: str | None) -> Caller:
    """`did`: the device id the request presented, once step 1 found it ours (device_id.resolve at the
    edge, which checks it once per request); None when it presented none, or one not ours."""
    ring = keyring()
    if access_token and not access.names_our_key(ring, access_token) and firebase.is_id_token(access_token):
        return validate_firebase(access_token, did)
    if not access_token:
        raise Refusal(Code.UNAUTHENTICATED, "an access token is required")
    conf = settings()
    claims = access.verify(ring, access_token, issuer=conf.issuer, audience=conf.audience)
    if did is None:
        raise Refusal(Code.UNKNOWN_DEVICE, "this device is not recognised; sign in again")
    if claims.did != did:
        raise Refusal(Code.INVALID_TOKEN, "this token was issued to another device")
    return _active_session(claims.uid, claims.sid, did, replaced_means_copied=True, renewed_with_us=True)


def validate_firebase(id_token: str, did: str | None = None) -> Caller:
    """The three steps for a Firebase ID token carrying our `sid` and `did` claims.

    Device: the `did` claim, written by our login into a token Google signs, binds the token to
    its device, so a caller without a device id (a callable, another backend) is still bound; a
    valid device id presented as well must match it. Token: firebase-admin, without the per-call
    Auth lookup of `check_revoked`. Session: one read. A replaced session is only
    `session_revoked` here, never a copied token: until the app signs in with its new custom
    token, its own Firebase SDK still holds, and refreshes, an ID token naming the old session.
    """
    claims = firebase.verify(id_token)
    if did is not None and did != claims.did:
        raise Refusal(Code.INVALID_TOKEN, "this token was issued to another device")
    return _active_session(claims.uid, claims.sid, claims.did, replaced_means_copied=False, renewed_with_us=False)


def _active_session(uid: str, sid: str, did: str, *, replaced_means_copied: bool, renewed_with_us: bool) -> Caller:
    """The third step, shared by both kinds of token: the one read, on this device, active.
    `renewed_with_us`: the token's refresh records the session's activity, so this call need not."""
    doc = store.read(store.session_ref(uid, sid))
    if doc is None or doc.get("deviceId") != did:
        raise Refusal(Code.INVALID_TOKEN, "no such session")
    if doc.get("status") != ACTIVE:
        if replaced_means_copied and (live := copied_token.live_replacement(uid, doc)) is not None:
            copied_token.respond(uid, sid, did, live, doc, why="access token of a replaced session")
        raise lifetimes.closed_refusal(doc) or Refusal(Code.SESSION_REVOKED, "this session has been closed")
    if (why := lifetimes.expired(doc)) is not None:
        # Judged from the document just read: no read of its own. The first call to see it closes
        # it (once: a closed session never gets here again), so the list and a Firebase ID token
        # named after it agree at once.
        try:
            closing.revoke_session(uid, sid, lifetimes.CLOSED_AS[why])
        except (core_exceptions.GoogleAPIError, ValueError) as error:  # the deadline refuses it anyway
            log.warning("expired session %s not closed yet: %s", sid, error)
        raise lifetimes.refusal(why)
    if not renewed_with_us:
        _touch(uid, sid, doc)
    return Caller(uid, sid, did, doc)


def _touch(uid: str, sid: str, doc: dict[str, Any]) -> None:
    """Record the activity of a Firebase ID token's session, at most once per interval
    (documents.activity): every write is billed, runs the session trigger, and a document
    sustains about one write a second.

    Activity is what the list shows, not what lets the call through: the three steps have passed,
    so a failed write (contention, an outage that began after the read) is logged and the call
    answered. `update` alone needs the document to exist; a session deleted since the read
    (retention) is left deleted."""
    activity = documents.activity(doc, clock.utcnow())
    if not activity:
        return
    try:
        store.session_ref(uid, sid).update(activity)
    except core_exceptions.NotFound:
        return
    except core_exceptions.GoogleAPIError as error:  # RetryError too: the bounded retry gave up
        log.warning("lastActiveAt of session %s not recorded: %s", sid, error)
        return
    doc.update(activity)
