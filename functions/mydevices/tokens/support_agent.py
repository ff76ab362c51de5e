"""Who may use the support API: a Firebase user holding the custom claim `mydevicesSupport: true`,
signed in recently, whose account Firebase Auth still stands behind.

Why a Firebase custom claim rather than IAM: the people who answer an app's customers are the
app's own staff, who already sign in with Firebase Auth; an app grants and withdraws the role with
one firebase-admin call (`auth.set_custom_user_claims(uid, {"mydevicesSupport": True})`), without
Google Cloud accounts for its agents; and the Auth emulator runs it, so the whole path is tested
offline. IAM still has a place beside it: the `support` function is its own Cloud Function, so an
operator may additionally restrict who can invoke it (infra/terraform/support.tf) without
touching the app's API.

The checks, for each call:
- the ID token verifies (signature, expiry, project), as every Firebase ID token of ours does;
- one Auth lookup (account.standing): the agent exists, is not disabled, and signed in after any
  revocation of their credentials (`revoke_refresh_tokens`, a password reset): a stolen agent
  token stops working the moment the agent's credentials are revoked, not an hour later. The claim
  is read from that user record, not from the token, so withdrawing the role also acts at once;
- `auth_time` within MYDEVICES_SUPPORT_MAX_AUTH_AGE_SECONDS (an hour by default): acting on other
  people's accounts needs a recent proof of who the agent is, not a laptop left signed in for weeks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .. import account, clock
from ..config import settings
from ..errors import Code, Refusal
from .sign_in import signed_in_at, uid_of, verify_claims

SUPPORT_CLAIM = "mydevicesSupport"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Agent:
    """A caller allowed to use the support API: who, as the audit records them."""

    uid: str
    email: str | None


def verify(id_token: str | None) -> Agent:
    """The agent behind `id_token`, or the 401/403 refusal that says why not."""
    if not id_token:
        raise Refusal(Code.UNAUTHENTICATED, "a support agent's Firebase ID token is required")
    claims = verify_claims(id_token)
    uid = uid_of(claims)
    auth_time = signed_in_at(claims)
    if auth_time is None:
        raise Refusal(Code.INVALID_TOKEN, "Firebase ID token has no usable auth_time")
    try:
        user = account.standing(uid, auth_time)
        if (user.custom_claims or {}).get(SUPPORT_CLAIM) is not True:
            raise Refusal(Code.FORBIDDEN, f"this user does not hold the {SUPPORT_CLAIM} role")
        max_age = settings().support_max_auth_age
        if clock.now() - auth_time > max_age:
            raise Refusal(Code.RECENT_SIGN_IN_REQUIRED, f"sign in again to use the support API: it needs a "
                          f"sign-in within the last {max_age} seconds", max_age=max_age)
    except Refusal as refusal:
        # A real Firebase user was turned away: kept in the logs, not in the audit collection (which
        # anyone with a Firebase account could otherwise fill).
        log.warning("support API refused Firebase user %s: %s", uid, refusal.code.value)
        raise
    return Agent(uid, user.email)
