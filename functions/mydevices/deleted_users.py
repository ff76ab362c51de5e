"""Erase what we keep about Firebase users who no longer exist: a sweep run on a schedule.

Why a sweep: Python Cloud Functions have no Auth "user deleted" trigger. `functions.auth.user().onDelete`
(event `providers/firebase.auth/eventTypes/user.delete`) exists for 1st-gen Node.js functions only;
firebase-functions-python's `identity_fn` has blocking functions alone (`before_user_created`,
`before_user_signed_in`, `before_email_sent`, `before_sms_sent`), none for a deletion, and no 2nd-gen
Eventarc event reports a deleted Firebase user. So we ask Auth instead: the sweep walks `users/` in
pages of `BATCH` ids, asks Auth `get_users` for each page (one lookup per 100 users), and erases
every document of the ids Auth reports not found (user_data.erase). An app with its own Node
`onDelete` trigger can have a user erased at once (docs/data-rights.md).

A failing or wrong dependency must never erase a live user's data, so it erases only on Auth's
positive answer "not found", never on an error, and stops the whole run at the first Auth error
(503: the scheduler tries again later). A wrong Auth project or tenant (a misconfiguration, or an
emulator that lost its users) answers "not found" for everyone, which looks exactly like mass
deletion: a page in which more than `MAX_GONE_SHARE` of at least `MIN_PAGE_FOR_SHARE` users are
gone stops the run before erasing anything of that page, and logs why (an operator who did delete
that many sets MYDEVICES_SWEEP_TRUST_MASS_DELETION=1 for one run).

Idempotent (a second run finds nothing to erase) and resumable: after each page it records the last
id done in `maintenance/deletedUsersSweep`, and the next run starts after it until it reaches the
end. Logs carry counts only, never ids.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from . import clock, store, user_data
from .errors import Code, Refusal, unavailable
from .firebase_app import app

log = logging.getLogger(__name__)

BATCH = 100  # get_users takes at most 100 identifiers
MAX_GONE_SHARE = 0.5
MIN_PAGE_FOR_SHARE = 10
CURSOR = ("maintenance", "deletedUsersSweep")


@dataclass
class Swept:
    checked: int = 0
    erased_users: int = 0
    erased_documents: int = 0
    finished: bool = False  # reached the end of users/ (else: out of time, the next run resumes)
    stopped: str | None = None  # why it stopped early and erased nothing more

    def as_dict(self) -> dict[str, Any]:
        """The run's counts, as the function answers and logs them (camelCase, like the API)."""
        return {"checked": self.checked, "erasedUsers": self.erased_users, "erasedDocuments": self.erased_documents,
                "finished": self.finished, **({"stopped": self.stopped} if self.stopped else {})}


def _cursor() -> Any:
    return store.db().collection(CURSOR[0]).document(CURSOR[1])


def gone(uids: list[str]) -> set[str]:
    """The ids Auth positively reports as not found. Any failure raises `unavailable` (503)."""
    from firebase_admin import auth

    try:
        result = auth.get_users([auth.UidIdentifier(uid) for uid in uids], app=app())
    except Exception as failure:  # an outage, a timeout, a credential: none of them means "deleted"
        log.error("deleted-users sweep: Auth lookup failed (%s); nothing erased", type(failure).__name__)
        raise unavailable("Firebase Auth could not be asked; nothing was erased") from None
    found = {user.uid for user in result.users}
    missing = {identifier.uid for identifier in result.not_found if isinstance(identifier, auth.UidIdentifier)}
    return missing - found


MAX_UID_LENGTH = 128  # Firebase Auth's limit: a longer id names no Firebase user, and get_users refuses it


def _pages(after: str | None) -> Any:
    """The ids under users/ (documents or not, as long as they hold a collection), in name order,
    in pages of BATCH, after `after`. An id no Firebase user can have is left alone: it would make
    every run fail at the same page."""
    page: list[str] = []
    for ref in store.db().collection(store.USERS).list_documents(page_size=BATCH):
        if after is not None and ref.id <= after:
            continue
        if len(ref.id) > MAX_UID_LENGTH:
            continue
        page.append(ref.id)
        if len(page) == BATCH:
            yield page
            page = []
    if page:
        yield page


def sweep(budget_seconds: float = 480.0) -> Swept:
    """One run: erase the data of every deleted user from where the last run stopped, until the end
    or `budget_seconds` (a scheduled function's timeout is 540 s)."""
    started = time.monotonic()
    result = Swept()
    trust_mass = os.environ.get("MYDEVICES_SWEEP_TRUST_MASS_DELETION") == "1"
    cursor = store.read(_cursor()) or {}
    after = cursor.get("after") if isinstance(cursor.get("after"), str) else None
    for page in _pages(after):
        missing = gone(page)
        if (not trust_mass and len(page) >= MIN_PAGE_FOR_SHARE
                and len(missing) > MAX_GONE_SHARE * len(page)):
            result.stopped = "mass_deletion"
            log.error("deleted-users sweep: Auth reports %d of %d users gone in one page: a wrong project or "
                      "tenant looks like this; nothing erased (MYDEVICES_SWEEP_TRUST_MASS_DELETION=1 if real)",
                      len(missing), len(page))
            break
        for uid in sorted(missing):
            erased = user_data.erase(uid)
            result.erased_documents += erased
            result.erased_users += 1 if erased else 0
        result.checked += len(page)
        _cursor().set({"after": page[-1], "at": clock.utcnow()})
        if time.monotonic() - started > budget_seconds:
            break
    else:
        result.finished = True
        _cursor().delete()
    log.info("deleted-users sweep: %s", result.as_dict())
    return result


def requested(body: bytes) -> list[str] | None:
    """The uids a caller named (`{"uids": [...]}`, at most BATCH), or None for an empty body (the whole
    sweep, as Cloud Scheduler sends it). Anything else is refused: 400 `invalid_request`."""
    if not body.strip():
        return None
    try:
        uids = json.loads(body)["uids"]
    except (ValueError, TypeError, KeyError, RecursionError):
        uids = None
    if (not isinstance(uids, list) or not 0 < len(uids) <= BATCH
            or not all(isinstance(uid, str) and 0 < len(uid) <= MAX_UID_LENGTH for uid in uids)):
        raise Refusal(Code.INVALID_REQUEST, f'expected {{"uids": [1 to {BATCH} Firebase uids]}} or no body')
    return list(dict.fromkeys(uids))


def erase_named(uids: list[str]) -> Swept:
    """Erase at once the data of the named users that Auth reports as not found (one Auth lookup): for
    an app whose own Node `onDelete` trigger forwards each deletion. A live user named is left alone,
    and an Auth failure erases nothing, exactly as in the sweep."""
    result = Swept(checked=len(uids), finished=True)
    storable = [uid for uid in uids if store.valid_id(uid)]  # no other id can have data here (unsupported_uid)
    for uid in sorted(gone(storable) if storable else ()):
        erased = user_data.erase(uid)
        result.erased_documents += erased
        result.erased_users += 1 if erased else 0
    log.info("deleted-users erasure on request: %s", result.as_dict())
    return result
