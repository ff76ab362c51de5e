"""A device-shaped HTTP client, the devices the tests log in with, and a tiny GeoIP City database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from infra.local.stack import IPAD, IPHONE, LONDON_EXAMPLE_IP, PIXEL, Stack  # noqa: F401 - the tests' devices too

GALAXY = {"name": "Galaxy S24", "model": "SM-S921B", "platform": "android", "osVersion": "14", "appVersion": "2.3.0"}
CHROME = {"name": "Chrome on macOS", "platform": "web", "osVersion": "14.5", "appVersion": "web-1"}

LONDON_IP = LONDON_EXAMPLE_IP


def build_city_db(path: str) -> str:
    """A real MaxMind-format City database with two networks, written by mmdb-writer."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {"city": {"names": {"en": "London"}}, "country": {"names": {"en": "United Kingdom"}, "iso_code": "GB"}},
    )
    writer.insert_network(IPSet(["2001:db9::/32"]), {"country": {"names": {"en": "Sweden"}, "iso_code": "SE"}})
    writer.to_db_file(path)
    return path


@dataclass
class Device:
    """One app install talking to the API as a mobile client would (header device id, bearer token)."""

    base: str
    device: dict[str, Any] = field(default_factory=lambda: dict(IPHONE))
    device_id: str = ""
    access_token: str = ""
    refresh_token: str = ""
    session_id: str = ""
    http: requests.Session = field(default_factory=requests.Session)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {}
        if self.device_id:
            headers["X-Device-Id"] = self.device_id
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        headers.update(extra or {})
        return headers

    def login(self, id_token: str, push_token: str | None = None, headers: dict[str, str] | None = None,
              expect: int | tuple[int, ...] = 201) -> requests.Response:
        body: dict[str, Any] = {"device": self.device}
        if push_token:
            body["push"] = {"token": push_token, "provider": "fcm"}
        sent = {"Authorization": f"Bearer {id_token}"}
        if self.device_id:
            sent["X-Device-Id"] = self.device_id
        sent.update(headers or {})
        response = self.http.post(f"{self.base}/v1/sessions", json=body, headers=sent, timeout=30)
        assert response.status_code in ((expect,) if isinstance(expect, int) else expect), response.text
        if response.status_code == 201:
            data = response.json()
            self.device_id = data["deviceId"]
            self.access_token = data.get("accessToken", "")
            self.refresh_token = data.get("refreshToken", "")
            self.session_id = data["session"]["sessionId"]
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.base}{path}", headers=self.headers(kwargs.pop("headers", None)), timeout=30,
                             **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.post(f"{self.base}{path}", headers=self.headers(kwargs.pop("headers", None)), timeout=30,
                              **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.put(f"{self.base}{path}", headers=self.headers(kwargs.pop("headers", None)), timeout=30,
                             **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.delete(f"{self.base}{path}", headers=self.headers(kwargs.pop("headers", None)), timeout=30,
                                **kwargs)

    def refresh(self, token: str | None = None) -> requests.Response:
        return self.http.post(f"{self.base}/v1/sessions/refresh", json={"refreshToken": token or self.refresh_token},
                              headers={"X-Device-Id": self.device_id}, timeout=30)

    def adopt(self, response: requests.Response) -> None:
        data = response.json()
        self.access_token = data["accessToken"]
        self.refresh_token = data["refreshToken"]


def error_code(response: requests.Response) -> str:
    return str(response.json()["error"]["code"])


def signed_in(base: str, id_token: str, spec: dict[str, Any] = IPHONE, push: str | None = None) -> Device:
    """A device of `spec`, logged in (with `push` as its FCM token, if given)."""
    device = Device(base, dict(spec))
    device.login(id_token, push_token=push)
    return device


def sign_in_with_custom_token(stack: Stack, custom_token: str) -> tuple[str, str]:
    """(ID token, Firebase refresh token), as the Firebase SDK's signInWithCustomToken gets them
    from the `firebaseCustomToken` a login returns: the ID token carries `sid` and `did`."""
    answer = requests.post(
        f"http://{stack.auth.host}/identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken?key=any",
        json={"token": custom_token, "returnSecureToken": True}, timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["idToken"], answer.json()["refreshToken"]


def doc_url(stack: Stack, path: str) -> str:
    """A document on the stack's Firestore emulator, as a client's REST call names it."""
    return f"http://{stack.firestore.host}/v1/projects/{stack.project}/databases/(default)/documents/{path}"
