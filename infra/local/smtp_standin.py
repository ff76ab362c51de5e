"""A real SMTP server on loopback, so the "Was that you?" email can be read back locally.

There is no mail emulator in the Firebase suite, and a stand-in that only pretends to speak SMTP
would not prove that smtplib, the message and a real server agree. aiosmtpd is a complete SMTP
server (RFC 5321, the one Python's own test suite moved to after smtpd left the standard library);
this wraps it to keep every message it accepted as one file, `<n>.eml` in `--maildir`, written
under a temporary name and renamed, so a reader never sees half a message. The files are the
control API: tests and the stack read them back (`infra/local/stack/servers.py` SmtpStandin) and
delete them to start afresh. "SMTP down" is this process stopped; "up" is it started again on
the same port. A relay that answers but refuses is `fault.json` in `--maildir`: `{"MAIL": "421 ..."}`
answers that reply to every MAIL FROM (likewise EHLO, which also answers HELO, RCPT, DATA, and QUIT,
whose reply comes after the message was accepted); deleting the file ends the fault.

    python infra/local/smtp_standin.py --port P --maildir DIR [--quiet]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import threading
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Maildir:
    """aiosmtpd's handler: each accepted message becomes one file."""

    def __init__(self, directory: Path, *, quiet: bool) -> None:
        self.directory = directory
        self.quiet = quiet
        start = max((int(p.stem) for p in directory.glob("*.eml") if p.stem.isdigit()), default=0) + 1
        self._numbers = itertools.count(start)
        self._lock = threading.Lock()

    def _fault(self, stage: str) -> str | None:
        try:
            reply = json.loads((self.directory / "fault.json").read_text()).get(stage)
        except (OSError, ValueError):
            return None
        return reply if isinstance(reply, str) else None

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,  # noqa: N802
                          responses: list[str]) -> list[str]:
        if (fault := self._fault("EHLO")) is not None:
            return [fault]
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:  # noqa: N802
        if (fault := self._fault("EHLO")) is not None:  # one fault for both greetings
            return fault
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list[str]) -> str:
        if (fault := self._fault("MAIL")) is not None:
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list[str]) -> str:
        if (fault := self._fault("RCPT")) is not None:
            return fault
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return self._fault("QUIT") or "221 Bye"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        if (fault := self._fault("DATA")) is not None:
            return fault
        with self._lock:
            number = next(self._numbers)
        path = self.directory / f"{number:06d}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(envelope.original_content or envelope.content)
        os.replace(tmp, path)
        if not self.quiet:
            parsed = message_from_bytes(envelope.original_content or envelope.content, policy=default)
            print(f"[smtp] {number}: to {', '.join(envelope.rcpt_tos)}: {parsed['Subject']}", flush=True)
        return "250 Message accepted for delivery"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.maildir.mkdir(parents=True, exist_ok=True)
    controller = Controller(Maildir(args.maildir, quiet=args.quiet), hostname=args.host, port=args.port,
                            ready_timeout=30)
    controller.start()
    print(f"SMTP stand-in on {args.host}:{args.port}, messages in {args.maildir}", flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
