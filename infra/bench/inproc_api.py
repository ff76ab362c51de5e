"""The `api` function inside this process, called through functions-framework's own Flask app.

`create_app` builds exactly the app the `functions-framework` server would serve, so a request
here takes the product's real path (routing, parsing, validation, Firestore) while every client
call it makes happens in this process, where the cost counters (counting.py) can see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flask
import functions_framework

from infra.local.stack import IPHONE, MAIN_PY


class CallFailed(RuntimeError):
    """The api answered something other than what the benchmark's scenario expects."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def error_code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None


class InProcessApi:
    def __init__(self, target: str = "api") -> None:
        """`target`: the HTTP function of main.py to call (`support_api`: the support API)."""
        app: flask.Flask = functions_framework.create_app(  # type: ignore[no-untyped-call]
            target=target, source=str(MAIN_PY), signature_type="http")
        self._client = app.test_client()

    def call(self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
             expect: int = 200, code: str | None = None) -> Answer:
        """The answer, which must have status `expect` (and, if given, error code `code`): a row of
        the cost table is only worth its name if the call did what the name says."""
        response = self._client.open(path, method=method, json=body, headers=headers or {})
        answer = Answer(response.status_code, response.get_json(silent=True))
        if answer.status != expect or (code is not None and answer.error_code != code):
            wanted = f"{expect} {code}" if code else str(expect)
            raise CallFailed(f"{method} {path} answered {answer.status} (expected {wanted}): {answer.body}")
        return answer


@dataclass
class Device:
    """One app install on the in-process api, as a mobile client (header device id, bearer token)."""

    api: InProcessApi
    info: dict[str, str] = field(default_factory=lambda: dict(IPHONE))
    device_id: str = ""
    access_token: str = ""
    refresh_token: str = ""
    session_id: str = ""

    def headers(self) -> dict[str, str]:
        return {"X-Device-Id": self.device_id, "Authorization": f"Bearer {self.access_token}"}

    def login(self, id_token: str, push_token: str | None = None, *, expect: int = 201,
              code: str | None = None, **extra: Any) -> Answer:
        """Sign in (`extra`: more of the login body); a refused login (`expect` other than 201) leaves the
        device as it was."""
        body: dict[str, Any] = {"device": self.info, **extra}
        if push_token:
            body["push"] = {"token": push_token, "provider": "fcm"}
        headers = {"Authorization": f"Bearer {id_token}"}
        if self.device_id:
            headers["X-Device-Id"] = self.device_id
        answer = self.api.call("POST", "/v1/sessions", body=body, headers=headers, expect=expect, code=code)
        if answer.status != 201:
            return answer
        self.device_id = answer.body["deviceId"]
        self.access_token = answer.body["accessToken"]
        self.refresh_token = answer.body["refreshToken"]
        self.session_id = answer.body["session"]["sessionId"]
        return answer

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Answer:
        return self.api.call(method, path, body=body, headers=self.headers(), expect=expect)

    def refresh(self, token: str | None = None, *, expect: int = 200, code: str | None = None) -> Answer:
        """Rotate (with `token`: replay that one); a refused refresh leaves the device as it was."""
        answer = self.api.call("POST", "/v1/sessions/refresh", body={"refreshToken": token or self.refresh_token},
                               headers={"X-Device-Id": self.device_id}, expect=expect, code=code)
        if answer.status != 200:
            return answer
        self.access_token = answer.body["accessToken"]
        self.refresh_token = answer.body["refreshToken"]
        return answer
