"""The one firebase-admin app of the process.

Locally (any emulator host set) it runs on anonymous credentials, so nothing reaches Google and
no service account is needed; in production it uses the runtime's default credentials. The FCM
endpoint can point at a stand-in on loopback (MYDEVICES_FCM_URL, with `{0}` for the project).
"""

from __future__ import annotations

import os
import threading

import firebase_admin
from firebase_admin import credentials
from google.auth.credentials import AnonymousCredentials, Credentials

from .config import settings

_lock = threading.Lock()


class _Anonymous(credentials.Base):
    def get_credential(self) -> Credentials:
        return AnonymousCredentials()  # type: ignore[no-untyped-call]


def _emulated() -> bool:
    return any(
        os.environ.get(name)
        for name in ("FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "MYDEVICES_FCM_URL")
    )


def app() -> firebase_admin.App:
    with _lock:
        try:
            return firebase_admin.get_app()
        except ValueError:
            pass
        fcm_url = os.environ.get("MYDEVICES_FCM_URL")
        if fcm_url:
            from firebase_admin import messaging

            messaging._MessagingService.FCM_URL = fcm_url
        cred = _Anonymous() if _emulated() else None
        return firebase_admin.initialize_app(cred, {"projectId": settings().project})
