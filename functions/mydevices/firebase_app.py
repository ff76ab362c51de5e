"""The one firebase-admin app of the process.

Locally (any emulator host set) it runs on anonymous credentials, so nothing reaches Google and
no service account is needed; in production it uses the runtime's default credentials. The FCM
endpoint can point at a stand-in on loopback (MYDEVICES_FCM_URL, with `{0}` for the project), and
so can App Check's JWKS (MYDEVICES_APP_CHECK_JWKS_URL).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from .config import settings

if TYPE_CHECKING:
    import firebase_admin

_lock = threading.Lock()


def anonymous_credentials() -> Any:
    """Anonymous credentials for firebase-admin, for any app of ours on the emulators or a stand-in.
    firebase_admin is imported here, not at module level: it costs about a fifth of the api's
    imports (docs/benchmarks.md, cold start), and most calls (every validated request) never use it."""
    from firebase_admin import credentials
    from google.auth.credentials import AnonymousCredentials, Credentials

    class Anonymous(credentials.Base):
        def get_credential(self) -> Credentials:
            return AnonymousCredentials()  # type: ignore[no-untyped-call]

    return Anonymous()


def _emulated() -> bool:
    return any(
        os.environ.get(name)
        for name in ("FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "MYDEVICES_FCM_URL")
    )


def use_fcm_endpoint(url: str) -> str:
    """Send FCM messages to `url` (`{0}`: the project id) from every messaging service made after
    this (one per app, on its first send); returns the endpoint it replaces. MYDEVICES_FCM_URL
    points the app at the local stand-in this way.

    No public way: firebase-admin has no setting for FCM's endpoint (nor an FCM emulator); its
    messaging service reads this class attribute when it is created."""
    from firebase_admin import messaging

    previous: str = messaging._MessagingService.FCM_URL
    messaging._MessagingService.FCM_URL = url
    return previous


def app() -> firebase_admin.App:
    import firebase_admin

    with _lock:
        try:
            return firebase_admin.get_app()
        except ValueError:
            pass
        fcm_url = os.environ.get("MYDEVICES_FCM_URL")
        if fcm_url:
            use_fcm_endpoint(fcm_url)
        jwks_url = settings().app_check_jwks_url
        if jwks_url:
            from firebase_admin import app_check

            # firebase-admin has no setting for App Check's JWKS (nor an App Check emulator); its
            # service reads this class attribute when the app first verifies a token. Dev and
            # tests point it at the stand-in's JWKS of a local key (infra/local/app_check_keys.py).
            app_check._AppCheckService._JWKS_URL = jwks_url
        cred = anonymous_credentials() if _emulated() else None
        return firebase_admin.initialize_app(cred, {"projectId": settings().project})
