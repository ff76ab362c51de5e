"""The new-login email (push/alert_email.py) when push cannot reach: sent by the real push function
code through smtplib to the stack's real SMTP server (aiosmtpd, infra/local/smtp_standin.py),
addressed from the Auth emulator, once per event whatever the redeliveries and SMTP outages; and
the page its link opens (http/email_page.py) on the running api: GET acts on nothing, the form's
POST answers."""

from __future__ import annotations

import base64
import json
import re
from email.message import EmailMessage
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from firebase_admin import auth
from google.cloud import firestore
from playwright.sync_api import Dialog

from infra.bench.environment import environment
from infra.local.fcm_standin import FcmStandin
from infra.local.stack import Stack
from mydevices import store
from mydevices.firebase_app import app
from mydevices.push import claims, fanout
from mydevices.tokens import action
from support.browser import chromium
from support.devices import GALAXY, PIXEL, error_code, signed_in
from support.push import EventFunctions, put_session
from support.waiting import wait_for

_ids = count(1)
LINK = re.compile(r"https?://\S+")


@pytest.fixture()
def smtp(fresh: Stack) -> Stack:
    fresh.smtp.clear()
    return fresh


def user(verified: bool = True) -> tuple[str, str]:
    """A Firebase Auth user of the emulator, with an address: (uid, email)."""
    uid = f"mail-user-{next(_ids)}"
    email = f"{uid}@example.com"
    auth.create_user(uid=uid, email=email, email_verified=verified, app=app())
    return uid, email


def delivery(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {"message": {"data": base64.b64encode(json.dumps(event).encode()).decode(),
                        "attributes": {"eventId": event_id}, "messageId": event_id}}


def new_login(uid: str, device: str = "Galaxy S24", location: str | None = "Paris, France") -> dict[str, Any]:
    return {"type": "new_login", "uid": uid, "sessionId": "new", "deviceName": device, "location": location}


def mails(stack: Stack) -> list[EmailMessage]:
    return stack.smtp.messages()


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # SMTP sends CRLF


def link_token(message: EmailMessage) -> str:
    [link] = LINK.findall(body(message))
    return parse_qs(urlsplit(link).query)["token"][0]


def event_id() -> str:
    return f"mail-evt-{next(_ids)}"


# --- when it is sent ---------------------------------------------------------------------------


def test_the_only_other_device_has_no_push_token_so_the_user_gets_an_email(smtp: Stack,
                                                                           push_standin: FcmStandin) -> None:
    uid, email = user()
    put_session(store.db(), uid, "laptop", token=None)
    put_session(store.db(), uid, "new", device="Galaxy S24", location="Paris, France")
    counts = fanout.handle(delivery(new_login(uid), event_id()))
    assert counts["emailed"] == 1 and counts["sent"] == 0
    assert push_standin.messages == []
    [message] = mails(smtp)
    assert message["To"] == email
    assert message["Subject"] == "New sign-in to your account"
    assert body(message).startswith("Signed in on “Galaxy S24” from Paris, France. Was that you?\n")
    claims_of = action.verify(link_token(message))
    assert (claims_of["sub"], claims_of["sid"], claims_of["nsid"]) == (uid, "laptop", "new")
    created = (store.read(store.session_ref(uid, "new")) or {})["createdAt"]
    assert link_token(message) == action.pair_token(uid, "laptop", "new", created)[0]  # = the push's token


def test_no_email_when_a_push_reaches_another_device(smtp: Stack, push_standin: FcmStandin) -> None:
    uid, _ = user()
    put_session(store.db(), uid, "phone", token="tok-phone")
    put_session(store.db(), uid, "laptop", token=None)
    put_session(store.db(), uid, "new")
    counts = fanout.handle(delivery(new_login(uid), event_id()))
    assert counts["sent"] == 1 and "emailed" not in counts
    assert mails(smtp) == []


def test_always_emails_even_when_push_reaches(smtp: Stack, push_standin: FcmStandin) -> None:
    uid, email = user()
    put_session(store.db(), uid, "phone", token="tok-phone")
    put_session(store.db(), uid, "new")
    with environment({"MYDEVICES_ALERT_EMAIL": "always"}):
        counts = fanout.handle(delivery(new_login(uid), event_id()))
    assert counts["sent"] == 1 and counts["emailed"] == 1
    assert [m["To"] for m in mails(smtp)] == [email]


def test_a_dead_push_token_is_no_reach_so_the_email_goes(smtp: Stack, push_standin: FcmStandin) -> None:
    uid, email = user()
    put_session(store.db(), uid, "phone", token="tok-dead")
    put_session(store.db(), uid, "new")
    push_standin.fault("tok-dead", 404, "UNREGISTERED")
    counts = fanout.handle(delivery(new_login(uid), event_id()))
    assert counts["dead"] == 1 and counts["emailed"] == 1
    assert [m["To"] for m in mails(smtp)] == [email]


@pytest.mark.parametrize("case", ["off", "unverified", "no earlier session"])
def test_nothing_is_emailed(smtp: Stack, case: str) -> None:
    uid, _ = user(verified=case != "unverified")
    if case != "no earlier session":
        put_session(store.db(), uid, "laptop", token=None)
    put_session(store.db(), uid, "new")
    with environment({"MYDEVICES_ALERT_EMAIL": "off" if case == "off" else None}):
        fanout.handle(delivery(new_login(uid), event_id()))
    assert mails(smtp) == []


# --- hostile device names ----------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "Pixel http://evil.example/login",
    "Go to evil.example now",
    "<a href=\"https://evil.example\">Pixel</a>",
    "write to help@evil.example",
    "Pixel\u202e\nSubject: pwned\r\nBcc: x@evil.example",
])
def test_a_hostile_device_name_makes_no_link_no_header_and_no_markup(smtp: Stack, name: str) -> None:
    uid, _ = user()
    put_session(store.db(), uid, "laptop", token=None)
    put_session(store.db(), uid, "new", device=name)
    fanout.handle(delivery(new_login(uid, device=name), event_id()))
    [message] = mails(smtp)
    text = body(message)
    assert LINK.findall(text) == [LINK.findall(text)[0]] and "evil" not in LINK.findall(text)[0]
    assert "evil.example" not in text and "@evil" not in text and "://evil" not in text
    assert message.get_content_type() == "text/plain"  # no HTML part a name could bend
    assert message["Subject"] == "New sign-in to your account" and message["Bcc"] is None
    assert "pwned" not in str(message["Subject"]) and "\u202e" not in text
    first_line = text.split("\n", 1)[0]
    assert first_line.startswith("Signed in on “") and first_line.endswith("” from Paris, France. "
                                                                          "Was that you?")


# --- faults: SMTP down, redelivery --------------------------------------------------------------


def test_smtp_down_then_up_delivers_the_email_once(smtp: Stack, push_standin: FcmStandin) -> None:
    uid, email = user()
    put_session(store.db(), uid, "laptop", token=None)
    put_session(store.db(), uid, "new")
    the_id = event_id()
    smtp.smtp.stop()
    try:
        with pytest.raises(fanout.RetryLater, match="email"):
            fanout.handle(delivery(new_login(uid), the_id))
        claim = store.db().collection(claims.COLLECTION).document(claims.doc_id(the_id)).get().to_dict() or {}
        assert claim["status"] == "sending" and "email" not in claim["sent"]
    finally:
        smtp.smtp.start().wait_ready()
    assert mails(smtp) == []
    assert fanout.handle(delivery(new_login(uid), the_id))["emailed"] == 1  # Pub/Sub's redelivery
    assert fanout.handle(delivery(new_login(uid), the_id)) == {"duplicate": 1}
    assert [m["To"] for m in mails(smtp)] == [email]


def test_a_redelivery_after_a_push_failure_does_not_email_again(smtp: Stack, push_standin: FcmStandin) -> None:
    """always: the email went out in the first attempt, a push failed transiently; the redelivery
    retries the push only."""
    uid, email = user()
    put_session(store.db(), uid, "phone", token="tok-phone")
    put_session(store.db(), uid, "new")
    push_standin.fault("tok-phone", 503, "UNAVAILABLE", times=5)
    the_id = event_id()
    with environment({"MYDEVICES_ALERT_EMAIL": "always"}):
        with pytest.raises(fanout.RetryLater):
            fanout.handle(delivery(new_login(uid), the_id))
        assert fanout.handle(delivery(new_login(uid), the_id))["sent"] == 1
    assert [m["To"] for m in mails(smtp)] == [email]


def test_fallback_waits_for_a_transient_push_failure_and_emails_only_if_it_stays_unreached(
        smtp: Stack, push_standin: FcmStandin) -> None:
    uid, _ = user()
    put_session(store.db(), uid, "phone", token="tok-phone")
    put_session(store.db(), uid, "new")
    push_standin.fault("tok-phone", 503, "UNAVAILABLE", times=5)
    the_id = event_id()
    with pytest.raises(fanout.RetryLater):
        fanout.handle(delivery(new_login(uid), the_id))
    assert mails(smtp) == []  # the push may still get through
    assert fanout.handle(delivery(new_login(uid), the_id))["sent"] == 1
    assert mails(smtp) == []  # it did


# --- the page the link opens -------------------------------------------------------------------


@pytest.fixture()
def emailed(smtp: Stack, api: str) -> tuple[str, str, str]:
    """(uid, the link as mailed, the api's URL) for a login with a hostile name."""
    uid, address = user()
    name = "<script>alert(1)</script> & \"Pixel\""
    put_session(store.db(), uid, "laptop", token=None)
    put_session(store.db(), uid, "new", device=name)
    fanout.handle(delivery(new_login(uid, device=name), event_id()))
    [message] = [m for m in mails(smtp) if m["To"] == address]  # this user's: a stray one of another test may land too
    [link] = LINK.findall(body(message))
    return uid, link, api


def status(uid: str, sid: str) -> str:
    return str((store.db().document(f"users/{uid}/sessions/{sid}").get().to_dict() or {}).get("status"))


def test_opening_the_link_acts_on_nothing(emailed: tuple[str, str, str], db: firestore.Client) -> None:
    uid, link, api = emailed
    assert link.startswith(f"{api}/v1/alerts/email?token=")
    for _ in range(3):  # a scanner, a preview, the user
        page = requests.get(link, timeout=30)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in page.text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Pixel" in page.text
    assert "No, close this session" in page.text
    assert status(uid, "new") == "active"
    assert list(db.collection("usedActionTokens").where(
        filter=firestore.FieldFilter("uid", "==", uid)).stream()) == []


def test_the_button_closes_the_new_session_once(emailed: tuple[str, str, str]) -> None:
    uid, link, api = emailed
    token = parse_qs(urlsplit(link).query)["token"][0]
    answer = requests.post(f"{api}/v1/alerts/email", data={"token": token, "answer": "no"}, timeout=30)
    assert answer.status_code == 200 and "The session has been closed" in answer.text
    assert status(uid, "new") == "revoked" and status(uid, "laptop") == "active"
    again = requests.post(f"{api}/v1/alerts/email", data={"token": token, "answer": "no"}, timeout=30)
    assert again.status_code == 409 and "already been answered" in again.text
    assert "already been answered" in requests.get(link, timeout=30).text


def test_a_bad_link_gets_a_page_saying_so(emailed: tuple[str, str, str]) -> None:
    _, _, api = emailed
    page = requests.get(f"{api}/v1/alerts/email", params={"token": "<b>forged</b>"}, timeout=30)
    assert page.status_code == 401 and "not valid" in page.text and "<b>forged" not in page.text


# --- end to end: a real login through the api, the trigger, Pub/Sub, the push function, SMTP ----


def test_a_login_through_the_pipeline_emails_and_the_emailed_button_signs_the_intruder_out(
        api: str, stack: Stack, event_functions: EventFunctions, sign_up: Any) -> None:
    stack.smtp.clear()
    uid, id_token = sign_up()
    auth.update_user(uid, email_verified=True, app=app())
    email = auth.get_user(uid, app=app()).email
    signed_in(api, id_token, PIXEL)  # the owner's only device: no push token
    intruder = signed_in(api, id_token, GALAXY)
    [message] = wait_for(lambda: mails(stack), timeout=30)
    assert message["To"] == email
    assert body(message).startswith(f"Signed in on “{GALAXY['name']}” from ")
    [link] = LINK.findall(body(message))
    assert intruder.get("/v1/sessions/current").status_code == 200
    page = requests.get(link, timeout=30)
    assert page.status_code == 200 and intruder.get("/v1/sessions/current").status_code == 200  # GET did nothing
    token = parse_qs(urlsplit(link).query)["token"][0]
    answer = requests.post(f"{api}/v1/alerts/email", data={"token": token, "answer": "no"}, timeout=30)
    assert answer.status_code == 200, answer.text
    closed = intruder.get("/v1/sessions/current")
    assert (closed.status_code, error_code(closed)) == (401, "session_revoked")
    assert len(mails(stack)) == 1


def test_in_chromium_the_page_runs_no_script_and_its_button_closes_the_session(
        emailed: tuple[str, str, str]) -> None:
    """A real browser: the page's CSP and escaping hold (the hostile name's script never runs),
    and pressing the button posts the form that closes the session."""
    uid, link, _ = emailed
    with chromium() as browser:
        page = browser.new_page()
        dialogs: list[str] = []

        def seen(dialog: Dialog) -> None:  # a script that ran would open alert(1)
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", seen)
        page.goto(link)
        assert "<script>alert(1)</script>" in page.inner_text("#alert-text")  # shown as text
        assert status(uid, "new") == "active"
        page.get_by_role("button", name="No, close this session").click()
        page.wait_for_selector("#outcome")
        assert "The session has been closed" in page.inner_text("#outcome")
        browser_dialogs = list(dialogs)
    assert browser_dialogs == []
    assert status(uid, "new") == "revoked"
