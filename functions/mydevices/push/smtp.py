"""One email out through the SMTP relay MYDEVICES_SMTP_URL names, with the standard library.

Why SMTP and not Firestore's `mail` collection (the "Trigger Email" extension's convention): every
mail provider speaks SMTP (SendGrid, Mailgun, SES, Postmark, Google Workspace's relay), so there
is nothing more to deploy, and the send happens inside the push function's claim, so "delivered
to the relay" is known before the event is marked done. Firebase Extensions are decommissioned on
2027-03-31, so the `mail` convention would tie the product to something on its way out.

The URL: `smtp://host:port` (plain, loopback and private relays), `smtp+starttls://host:587`
(STARTTLS, required: a relay that does not offer it is refused rather than sent to in clear), or
`smtps://host:465` (TLS from the start); `user:password@` in it logs in. It is a secret (Secret
Manager in production, docs/alert-email.md), never committed.

Errors are split in two, because the caller retries one and not the other: the relay refusing
the recipient for good (5xx) is `Rejected` (retrying cannot help); anything else (connection
refused, timeout, 4xx, a dropped connection, and a 5xx before any recipient: a relay refusing
the connection or the sender is one that is down or misconfigured, not a verdict on this message)
propagates as `smtplib.SMTPException` or `OSError` for the fan-out to retry through Pub/Sub. Once
the relay has accepted the message, nothing it says afterwards is a failure.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

TIMEOUT_SECONDS = 20.0
_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class Rejected(Exception):
    """The relay refused this message for good (a 5xx): sending it again would be refused again."""


def send(message: EmailMessage, url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
    """Hand `message` to the relay; returns once the relay has accepted it."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("MYDEVICES_SMTP_URL must be smtp://, smtp+starttls:// or smtps://host[:port]")
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(parts.hostname, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(parts.hostname, port, timeout=timeout)
    try:
        if parts.scheme == "smtp+starttls":
            client.starttls(context=context)  # raises SMTPNotSupportedError if the relay cannot
        # The greeting now, outside the refusals below: a relay answering EHLO and HELO with 5xx
        # is down or misconfigured, not refusing this message, and its SMTPHeloError is retried.
        client.ehlo_or_helo_if_needed()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        try:
            client.send_message(message)
        except smtplib.SMTPRecipientsRefused as refused:
            codes = [code for code, _ in refused.recipients.values()]
            if codes and all(500 <= code < 600 for code in codes):
                raise Rejected(f"the relay refused the recipient ({codes})") from None
            raise
        except smtplib.SMTPResponseException as failure:
            if 500 <= failure.smtp_code < 600 and not isinstance(failure, smtplib.SMTPSenderRefused):
                raise Rejected(f"the relay refused the message ({failure.smtp_code})") from None
            raise
    finally:
        _quit(client)


def _quit(client: smtplib.SMTP) -> None:
    """Say goodbye. Its answer to QUIT (or none at all) changes nothing: after an accepted message
    the message is the relay's, and failing here would have Pub/Sub send it again (`with client:`
    raises on anything but 221); after a failure, that failure is what counts."""
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()
