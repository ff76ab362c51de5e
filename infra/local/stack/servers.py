"""Our own servers: the functions under functions-framework, the FCM stand-in, and the web page.

The FCM stand-in's handle is also the one client of its control API (infra/local/fcm_standin.py
documents it): the stack, the tests and the benchmark read pushes and inject faults through it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Mapping
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from infra.local.stack.layout import (
    FCM_STANDIN,
    FIREBASE_JSON,
    FUNCTIONS_DIR,
    FUNCTIONS_FRAMEWORK,
    HOST,
    HOSTING_SERVER,
    MAIN_PY,
    PROJECT_ID,
    REPO_ROOT,
    SMTP_STANDIN,
    VENV_PYTHON,
)
from infra.local.stack.processes import ManagedProcess, request_json
from infra.local.tls import Certificate


def _python() -> str:
    """The project's interpreter for our own servers (this one before bootstrap has made it)."""
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


class FunctionServer(ManagedProcess):
    """`functions-framework --target <target>` over functions/main.py (or `source`), cwd functions/.

    functions/ is put on PYTHONPATH, so a `source` elsewhere (another team's main.py) imports mydevices.
    The log is `fn-<target>-<port>.log`.
    """

    def __init__(
        self,
        target: str,
        signature_type: str,
        port: int,
        log_dir: Path,
        env: Mapping[str, str],
        *,
        source: Path = MAIN_PY,
    ) -> None:
        pythonpath = os.pathsep.join(p for p in (str(FUNCTIONS_DIR), env.get("PYTHONPATH", "")) if p)
        super().__init__(
            f"fn-{target}-{port}",
            port,
            log_dir,
            cwd=FUNCTIONS_DIR,
            env={"PYTHONUNBUFFERED": "1", **env, "PYTHONPATH": pythonpath},
            ready_timeout=60,
        )
        self.target = target
        self.signature_type = signature_type
        self.source = Path(source).resolve()

    def argv(self) -> list[str]:
        return [
            str(FUNCTIONS_FRAMEWORK),
            "--source",
            str(self.source),
            "--target",
            self.target,
            "--signature-type",
            self.signature_type,
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]


class FcmStandin(ManagedProcess):
    """infra/local/fcm_standin.py (FCM HTTP v1 `messages:send` on loopback, records messages), and
    the client of its control API."""

    ready_path = "/_standin/messages"

    def __init__(self, port: int, log_dir: Path, *, quiet: bool = False) -> None:
        super().__init__("fcm", port, log_dir, cwd=REPO_ROOT, env={"PYTHONUNBUFFERED": "1"})
        self.quiet = quiet
        self.app_check_jwks: Path | None = None  # App Check's JWKS it serves too (app_check_keys.py)

    def argv(self) -> list[str]:
        argv = [_python(), str(FCM_STANDIN), "--host", HOST, "--port", str(self.port)]
        if self.app_check_jwks is not None:
            argv += ["--app-check-jwks", str(self.app_check_jwks)]
        return [*argv, "--quiet"] if self.quiet else argv

    @property
    def send_url(self) -> str:
        """The MYDEVICES_FCM_URL value: firebase-admin formats `{0}` with the project id."""
        return f"{self.url}/v1/projects/{{0}}/messages:send"

    @property
    def jwks_url(self) -> str:
        """The MYDEVICES_APP_CHECK_JWKS_URL value (Google's is https://firebaseappcheck.googleapis.com/v1/jwks)."""
        return f"{self.url}/v1/jwks"

    def messages(self) -> list[dict[str, Any]]:
        """Every message it accepted since the last clear(), oldest first."""
        return list(request_json("GET", f"{self.url}/_standin/messages")["messages"])

    def failures(self) -> list[dict[str, Any]]:
        """Every send it failed on purpose (fault()) since the last clear()."""
        return list(request_json("GET", f"{self.url}/_standin/failures")["failures"])

    def fault(self, token: str, status: int, error_code: str, times: int = 1) -> None:
        """Fail the next `times` sends to `token` (or "*") as FCM would, with `status` / `error_code`."""
        body = {"token": token, "status": status, "errorCode": error_code, "times": times}
        request_json("POST", f"{self.url}/_standin/faults", body)

    def clear(self) -> None:
        """Forget messages, failures and pending faults."""
        request_json("DELETE", f"{self.url}/_standin/messages")

    def jwks_fetches(self) -> int:
        """How often the functions fetched App Check's JWKS (firebase-admin caches it)."""
        return int(request_json("GET", f"{self.url}/_standin/jwks-fetches", timeout=30)["count"])


class SmtpStandin(ManagedProcess):
    """infra/local/smtp_standin.py (a real SMTP server, aiosmtpd, on loopback), and the reader of the
    messages it keeps: one `.eml` file each in `maildir`. Stopping it is "SMTP down"."""

    def __init__(self, port: int, log_dir: Path, *, quiet: bool = True) -> None:
        super().__init__("smtp", port, log_dir, cwd=REPO_ROOT, env={"PYTHONUNBUFFERED": "1"})
        self.quiet = quiet
        self.maildir = self.log_dir / "mail"

    def argv(self) -> list[str]:
        argv = [_python(), str(SMTP_STANDIN), "--host", HOST, "--port", str(self.port), "--maildir", str(self.maildir)]
        return [*argv, "--quiet"] if self.quiet else argv

    def is_ready(self) -> bool:
        try:  # SMTP, not HTTP: its greeting is enough
            with socket.create_connection((HOST, self.port), timeout=2) as conn:
                return conn.recv(3) == b"220"
        except OSError:
            return False

    @property
    def url(self) -> str:
        """The MYDEVICES_SMTP_URL value."""
        return f"smtp://{HOST}:{self.port}"

    def messages(self) -> list[EmailMessage]:
        """Every message it accepted since the last clear(), oldest first."""
        found = sorted(self.maildir.glob("*.eml")) if self.maildir.exists() else []
        return [message_from_bytes(path.read_bytes(), policy=policy.default) for path in found]

    def clear(self) -> None:
        for path in self.maildir.glob("*.eml") if self.maildir.exists() else []:
            path.unlink(missing_ok=True)

    def fault(self, stage: str | None, reply: str = "") -> None:
        """From now on answer `reply` (say "421 4.3.2 Service not available") to every `stage`
        command (MAIL, RCPT, DATA, or QUIT after accepting the message); None ends the fault."""
        path = self.maildir / "fault.json"
        if stage is None:
            path.unlink(missing_ok=True)
            return
        self.maildir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({stage: reply}))
        os.replace(tmp, path)


class HostingServer(ManagedProcess):
    """infra/local/hosting.py: the web page and its rewrites to the api function, on one origin."""

    ready_path = "/__/firebase/init.json"

    def __init__(self, port: int, log_dir: Path, *, api_url: str, auth_url: str, project: str = PROJECT_ID,
                 tls: Certificate | None = None) -> None:
        super().__init__(f"hosting-{port}", port, log_dir, cwd=REPO_ROOT, env={"PYTHONUNBUFFERED": "1"})
        self.api_url = api_url
        self.auth_url = auth_url
        self.project = project
        self.tls = tls

    def argv(self) -> list[str]:
        tls = ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)] if self.tls is not None else []
        return [
            _python(), str(HOSTING_SERVER), "--host", HOST, "--port", str(self.port), "--api", self.api_url,
            "--auth-emulator", self.auth_url, "--project", self.project, "--config", str(FIREBASE_JSON), *tls,
        ]

    def is_ready(self) -> bool:
        if self.tls is None:
            return super().is_ready()
        try:  # HTTPS with our self-signed certificate: listening is enough
            socket.create_connection((HOST, self.port), timeout=2).close()
        except OSError:
            return False
        return True

    @property
    def page_url(self) -> str:
        """Where a browser opens the page: `localhost`, which browsers treat as a secure context."""
        return f"{'https' if self.tls is not None else 'http'}://localhost:{self.port}"
