"""The page the new-login email links to (push/alert_email.py): `GET /v1/alerts/email?token=...`
shows the question, and only its form's `POST /v1/alerts/email` answers it.

Why a page served by the api and not the web page in infra/hosting: it must work in whatever
browser the mail client opens, signed in or not, with no script (mail apps' in-app browsers,
locked-down ones), and the api already holds what it needs (the token's keys, the flows).

Why GET never acts: mail scanners (Microsoft Defender's Safe Links, Gmail's and corporate
gateways) and link previews fetch every link in a message, some with a headless browser that runs
script. They do not fill in and submit forms. So the link carries the capability, the page shows
what it is about (flows/alert_preview.py, which writes nothing), and the answer is a POST of a
plain HTML form holding the token, sent when a person presses "No, close this session". The
answer is the push's (flows/alert_answer.py): single use, same expiry, the same trust rules.

Everything that comes from outside is escaped (html.escape, quotes included) and the page runs no
script: a Content-Security-Policy with `default-src 'none'` forbids any, and `form-action 'self'`
keeps the form posting here. No referrer leaves the page (the token is in its URL), nothing is
cached, and our logs never print the token; the platform's request log keeps URLs, so the token
there is single use and expires (MYDEVICES_ACTION_TOKEN_TTL_SECONDS).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from ..errors import Code, Refusal
from ..flows import alert_answer, alert_preview
from .render import WIRE, ApiResponse, Page
from .request import ApiRequest

PATH = "/v1/alerts/email"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Frame-Options": "DENY",
}
# What a person is told when the token cannot be used: the wire codes alert_answer and action raise.
_REFUSED = {
    Code.TOKEN_EXPIRED: "This link has expired. Open \u201cMy devices\u201d in the app to review your sessions.",
    Code.ALREADY_ANSWERED: "This alert has already been answered.",
    Code.SESSION_REVOKED: "The device this alert was about has been signed out since, so this link no "
                          "longer answers for your account. Open \u201cMy devices\u201d in the app.",
    Code.SESSION_CLOSED: "That session has already been closed.",
    Code.SESSION_TOO_NEW: "This alert can only be answered from a session that is at least a day old. "
                          "Open \u201cMy devices\u201d on a device you have used for longer.",
}
_INVALID = "This link is not valid. Open \u201cMy devices\u201d in the app to review your sessions."


def _page(title: str, body: str, status: int = 200) -> ApiResponse:
    document = (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}"
        "button{font:inherit;padding:.6rem 1rem;margin:.3rem .3rem 0 0}"
        ".no{background:#b3261e;color:#fff;border:0;border-radius:4px}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )
    return ApiResponse(Page(document), status, dict(HEADERS))


def _refused(refusal: Refusal) -> ApiResponse:
    return _page("New sign-in", f"<p>{html.escape(_REFUSED.get(refusal.code, _INVALID))}</p>",
                 WIRE[refusal.code].http)


def show(req: ApiRequest) -> ApiResponse:
    """GET: the question and the form. Acts on nothing, whoever fetches it and however often."""
    token = req.query("token")
    try:
        facts = alert_preview.preview(token)
    except Refusal as refusal:
        return _refused(refusal)
    said = f"<p id=\"alert-text\">{html.escape(facts['text'])}</p>"
    if facts["answered"]:
        return _page("New sign-in", said + "<p>This alert has already been answered.</p>")
    if not facts["active"]:
        return _page("New sign-in", said + "<p>That session has already been closed.</p>")
    until = datetime.fromtimestamp(facts["expiresAt"], UTC).strftime("%d %B %Y, %H:%M UTC")
    form = (
        f"<form method=\"post\" action=\"email\"><input type=\"hidden\" name=\"token\" "
        f"value=\"{html.escape(token or '', quote=True)}\">"
        "<button class=\"no\" type=\"submit\" name=\"answer\" value=\"no\">No, close this session</button>"
        "<button type=\"submit\" name=\"answer\" value=\"yes\">Yes, it was me</button></form>"
        f"<p>You can answer once, until {html.escape(until)}.</p>"
    )
    return _page("New sign-in", said + form)


def answer(req: ApiRequest) -> ApiResponse:
    """POST (the form): the answer, exactly as the push's "No" / "Yes" give it."""
    fields = req.form()
    try:
        result = alert_answer.respond(fields.get("token"), fields.get("answer"))
    except Refusal as refusal:
        if refusal.code is Code.INVALID_REQUEST:
            raise  # not the form's doing: a malformed post gets the API's own answer
        return _refused(refusal)
    if result["answer"] == "no":
        return _page("Session closed", "<p id=\"outcome\">The session has been closed and that device signed out.</p>"
                     "<p>If you did not sign in, change your password now: whoever signed in knows it.</p>")
    return _page("Thank you", "<p id=\"outcome\">The session stays signed in.</p>")
