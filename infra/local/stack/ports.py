"""Every port of one stack: the dev stack's fixed ones (firebase.json), or free ones for a test run."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, fields
from pathlib import Path

from infra.local.stack.layout import FIREBASE_JSON, HOST

# Ports firebase-tools knows nothing about (the rest live in firebase.json's "emulators" block).
FUNCTION_PORTS = {"api": 8080, "trigger": 8081, "push": 8082, "callables": 8083, "support": 8084}
FCM_PORT = 9199
SMTP_PORT = 2525  # the SMTP stand-in (infra/local/smtp_standin.py): the "Was that you?" email


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that are free on loopback right now (all held open while picking)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def bindable(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class Ports:
    firestore: int
    pubsub: int
    auth: int
    hub: int  # firebase-tools' emulator hub
    logging: int  # firebase-tools' logging emulator
    api: int
    trigger: int  # the Firestore emulator's --functions_emulator (on_session_written)
    push: int  # the push subscription's endpoint (send_session_push)
    callables: int  # the Firebase callables (`callables` serves them all by name)
    fcm: int
    hosting: int  # the web page (infra/local/hosting.py, Firebase Hosting's stand-in)
    firestore_websocket: int  # firebase-tools' Firestore only (--firebase-emulators): the Emulator UI's feed
    smtp: int  # the SMTP stand-in (push/alert_email.py sends to it)
    support: int  # the support API (`support_api`, infra/support/mydevices-support)

    @classmethod
    def dev(cls, firebase_json: Path = FIREBASE_JSON) -> Ports:
        """The fixed ports of `infra/local/run`: firebase.json's emulators block + FUNCTION_PORTS/FCM_PORT."""
        emulators = json.loads(firebase_json.read_text())["emulators"]

        def port(name: str, default: int) -> int:
            return int(emulators.get(name, {}).get("port", default))

        return cls(
            firestore=port("firestore", 8180),
            pubsub=port("pubsub", 8185),
            auth=port("auth", 9099),
            hub=port("hub", 4410),
            logging=port("logging", 4510),
            api=FUNCTION_PORTS["api"],
            trigger=FUNCTION_PORTS["trigger"],
            push=FUNCTION_PORTS["push"],
            callables=FUNCTION_PORTS["callables"],
            fcm=FCM_PORT,
            hosting=port("hosting", 5000),
            firestore_websocket=int(emulators.get("firestore", {}).get("websocketPort", 9150)),
            smtp=SMTP_PORT,
            support=FUNCTION_PORTS["support"],
        )

    @classmethod
    def free(cls) -> Ports:
        return cls(*free_ports(len(fields(cls))))

    def for_role(self, role: str) -> int:
        return int(getattr(self, role))
