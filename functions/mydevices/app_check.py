"""Firebase App Check: is the request from a genuine install of our app, not a script?

App Check attests the app (Play Integrity, App Attest / DeviceCheck, reCAPTCHA), not the user: the
Firebase SDKs send a short-lived token in `X-Firebase-AppCheck`, and firebase-admin verifies it
locally against Google's JWKS (fetched once, then cached for 6 hours): RS256, issuer
`https://firebaseappcheck.googleapis.com/<project number>`, audience `projects/<project id>`.

`MYDEVICES_APP_CHECK` decides what a failure does, on the API and the callables alike:
- `off` (default): the header is not read;
- `report`: verify and log a failure, but let the request through (see what enforcing would
  refuse before turning it on, as the Firebase console's "unenforced" metrics do);
- `enforce`: refuse a missing, malformed, forged or expired token: 401 `app_check_failed` on the
  API, `UNAUTHENTICATED` with `details.code` `app_check_failed` on the callables (what Firebase's
  own callables answer with `enforceAppCheck`, with our stable code added).
If Google's JWKS cannot be fetched, `enforce` answers 503 `unavailable` (a retry may succeed) and
`report` lets the request through.

Limited-use tokens (`getLimitedUseToken`, replay protection) verify like any other, but are not
consumed: consuming costs a call to Google's App Check API per request, which the API's every call
would pay. A function that needs it can call `firebase_admin.app_check.verify_token(consume=True)`.
"""

from __future__ import annotations

import logging

from . import firebase_app
from .config import settings
from .errors import Code, Refusal, unavailable

log = logging.getLogger(__name__)

HEADER = "X-Firebase-AppCheck"


def failed(message: str) -> Refusal:
    return Refusal(Code.APP_CHECK_FAILED, message)


def check(token: str | None) -> None:
    """Apply MYDEVICES_APP_CHECK to the `X-Firebase-AppCheck` header's value (None: absent)."""
    mode = settings().app_check
    if mode == "off":
        return
    try:
        verify(token)
    except Refusal as failure:  # app_check_failed, or unavailable
        if mode == "enforce":
            raise
        log.warning("App Check failed, let through (MYDEVICES_APP_CHECK=report): %s", failure.message)


def verify(token: str | None) -> None:
    """Raise `app_check_failed` unless `token` is a valid App Check token for this project."""
    if not token or not token.strip():
        raise failed(f"an App Check token is required ({HEADER})")
    from firebase_admin import app_check  # with firebase-admin, not at import: the api's cold start
    from jwt import PyJWKClientConnectionError, PyJWTError

    try:
        app_check.verify_token(token.strip(), app=firebase_app.app())
    except PyJWKClientConnectionError:
        log.exception("App Check: the JWKS could not be fetched")
        raise unavailable("App Check keys cannot be fetched, retry shortly") from None
    except (ValueError, PyJWTError) as error:
        # ValueError: firebase-admin's verdict (bad signature, expired, wrong audience or header);
        # PyJWTError: a key id the JWKS does not hold, or a JWKS without usable keys. The verdict
        # quotes the token's own header: logged, not repeated to whoever sent it.
        log.info("App Check token refused: %r", error)
        raise failed("the App Check token is not valid") from None
    except OSError:  # the JWKS connection broke mid-answer (PyJWT wraps only the connect)
        log.exception("App Check: the JWKS could not be read")
        raise unavailable("App Check keys cannot be fetched, retry shortly") from None
