"""Cloud Functions entry points. Each route parses, calls one core function, shapes the answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flask
import functions_framework
import msgspec
from werkzeug.exceptions import HTTPException

from mydevices import bodies, dbsc, dpop, web_cookies
from mydevices.config import settings
from mydevices.errors import Code, Refusal
from mydevices.flows import (
    account_settings,
    activity,
    alert_answer,
    export,
    listing,
    login,
    pending_alerts,
    push_token,
    refresh,
    revocation,
    support,
)
from mydevices.http import callables as callable_protocol
from mydevices.http import email_page, render
from mydevices.http.callables import Call
from mydevices.http.render import ApiResponse, issued_response, signed_out
from mydevices.http.request import ApiRequest
from mydevices.http.routing import dispatch, routes
from mydevices.tokens import support_agent
from mydevices.tokens.keys import keyring

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent


def log_in(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    body = bodies.decode(req.json(), bodies.Login)
    key = body.device_public_key
    device_key = dpop.parse_public_jwk(key) if key is not None else None
    web = body.device.platform == "web"
    # web: only when asked, script sees no credential else
    wanted = not web if body.firebase_custom_token is msgspec.UNSET else body.firebase_custom_token
    cookies = web and not req.from_cors_origin  # a page on another origin holds bearer tokens
    issued = login.login(req.bearer, req.client_ip(), req.did, req.signed_did, body.device, body.push,
                         firebase_token=wanted, holds=req.cookie(web_cookies.ACCESS),
                         bound_cookie=req.bound_cookie, device_key=device_key,
                         lifetime=body.lifetime)
    response = issued_response(issued, web=cookies, status=201)
    response.headers[dpop.NONCE_HEADER] = dpop.nonce()  # for the bound session's first refresh
    if cookies and settings().web_cookie == "host":  # a browser without DBSC ignores it (dbsc.py)
        response.headers[dbsc.REGISTRATION_HEADER] = dbsc.registration_header(issued.sid)
    return response


def refresh_session(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    raw = req.json(required=False)
    token = bodies.decode(raw, bodies.Refresh).refresh_token if raw else req.cookie(web_cookies.REFRESH)
    issued = refresh.refresh(token, req.known_did, req.signed_did, req.client_ip(), req.dpop_input, req.bound_cookie)
    response = issued_response(issued, web=not raw)
    response.headers[dpop.NONCE_HEADER] = dpop.nonce()  # for the next one
    return response


def dbsc_register(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    caller = req.authenticate()
    instructions = dbsc.register(caller.uid, caller.sid, req.dbsc_response, req.origin())
    return ApiResponse(instructions, bound_cookie=dbsc.cookie_value(caller.sid))


def dbsc_refresh(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    sid = req.dbsc_session_id
    verdict = refresh.dbsc_refresh(req.cookie(web_cookies.REFRESH), sid, req.dbsc_response, req.client_ip())
    if verdict == "challenge":
        raise Refusal(Code.DBSC_CHALLENGE, "sign this challenge with the session's key", dbsc_session=sid)
    return ApiResponse(dbsc.instructions(sid, req.origin()), bound_cookie=dbsc.cookie_value(sid),
                       headers={dbsc.CHALLENGE_HEADER: dbsc.challenge_header(sid)})  # kept for the next one


def current(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    return ApiResponse(listing.current_session(req.authenticate()))


def held_cookies(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    """Which of the web session's cookies the request carries: never their values, and nothing is
    checked or granted. A page loaded in a browser that holds none is signed out, and learns it
    without a 401 in its console (the JS client's resume)."""
    return ApiResponse({part: req.cookie(cookie) is not None
                        for part, cookie in (("access", web_cookies.ACCESS), ("refresh", web_cookies.REFRESH))})


def list_sessions(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    return ApiResponse(listing.list_sessions(req.authenticate()))


def close_session(req: ApiRequest, params: dict[str, str]) -> ApiResponse:
    revocation.close_other(req.authenticate(), params["sid"])
    return ApiResponse({"sessionId": params["sid"], "revoked": True})


def revoke_others(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    return ApiResponse({"revoked": revocation.revoke_others(req.authenticate())})


def logout(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    revocation.logout(req.authenticate())
    return signed_out({"loggedOut": True})


def update_push_token(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    caller = req.authenticate()
    push_token.set_push_token(caller, bodies.decode(req.json(), bodies.PushTarget, "push"))
    return ApiResponse({"updated": True})


def respond_to_alert(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    body = bodies.decode(req.json(), bodies.AlertAnswer)
    return ApiResponse(alert_answer.respond(body.action_token, body.answer))


def show_email_alert(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    """The new-login email's link: the question and a form (HTML); acts on nothing."""
    return email_page.show(req)


def answer_email_alert(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    """The email page's form: "No, close this session" or "Yes" (HTML)."""
    return email_page.answer(req)


def reauthenticate(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    caller = req.authenticate()
    body = bodies.decode(req.json(), bodies.Reauthenticate)
    return ApiResponse(account_settings.reauthenticate(caller, body.id_token))


def set_auto_close(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    caller = req.authenticate()
    body = bodies.decode(req.json(), bodies.AutoClose)
    return ApiResponse(account_settings.set_auto_close(caller, body.after_days))


def list_alerts(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    """The alerts the caller's session may answer: the web page's "Was that you?" (no push there)."""
    return ApiResponse(pending_alerts.pending(req.authenticate()))


def export_account(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    """Everything we keep about the caller, secrets left out (docs/data-rights.md); a recent sign-in."""
    return ApiResponse(export.export(req.authenticate()), headers={"Cache-Control": "no-store"})


def list_activity(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    """The user's security activity of the last 30 days, newest first (flows/activity.py)."""
    caller = req.authenticate()
    return ApiResponse(activity.list_activity(caller, activity.page_size(req.query("limit")),
                                              activity.cursor_of(req.query("cursor"))))


def jwks(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    return ApiResponse(keyring().jwks(), headers={"Cache-Control": "public, max-age=300"})


ROUTES = routes(
    ("POST", "/v1/sessions", log_in),
    ("GET", "/v1/sessions", list_sessions),
    ("POST", "/v1/sessions/refresh", refresh_session),
    ("GET", "/v1/sessions/current", current),
    ("GET", "/v1/sessions/cookies", held_cookies),
    ("POST", "/v1/sessions/revoke-others", revoke_others),
    ("POST", "/v1/sessions/logout", logout),
    ("PUT", "/v1/sessions/current/push-token", update_push_token),
    ("POST", "/v1/sessions/current/reauthenticate", reauthenticate),
    ("PUT", "/v1/sessions/auto-close", set_auto_close),
    ("DELETE", "/v1/sessions/<sid:sid>", close_session),
    ("GET", "/v1/alerts", list_alerts),
    ("POST", "/v1/alerts/respond", respond_to_alert),
    ("GET", email_page.PATH, show_email_alert),
    ("POST", email_page.PATH, answer_email_alert),
    ("GET", "/.well-known/jwks.json", jwks),
    ("GET", "/v1/account/export", export_account),
    ("GET", "/v1/activity", list_activity),
    ("POST", dbsc.REGISTER_PATH, dbsc_register),
    ("POST", dbsc.REFRESH_PATH, dbsc_refresh),
)


# The JWKS is for other backends, not our app: it carries no App Check token (mydevices/app_check.py).
# Nor do the email link's page and its form: a mail client's browser runs no app.
WITHOUT_APP_CHECK = frozenset({jwks, show_email_alert, answer_email_alert})


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    return dispatch(request, ROUTES, without_app_check=WITHOUT_APP_CHECK)


# --- the support API (flows/support.py): a function of its own, for the app's support agents and
# its operators' command line (infra/support/mydevices-support), so that it can be locked down apart
# from the app's API (IAM invoker, ingress). Callers are Firebase users with the `mydevicesSupport`
# custom claim (tokens/support_agent.py says why a claim). No App Check: no app makes these calls.

def _support_call(req: ApiRequest) -> support_agent.Agent:
    return support_agent.verify(req.bearer())


def support_find_user(req: ApiRequest, _: dict[str, str]) -> ApiResponse:
    return ApiResponse(support.find_user(_support_call(req), req.query("email")))


def support_sessions(req: ApiRequest, params: dict[str, str]) -> ApiResponse:
    agent = _support_call(req)
    closed = req.query("closed") in ("1", "true")
    return ApiResponse(support.sessions(agent, support.target_uid(params["uid"]), closed=closed))


def support_close(req: ApiRequest, params: dict[str, str]) -> ApiResponse:
    agent = _support_call(req)
    reason = bodies.decode(req.json(), bodies.SupportClosure).reason
    return ApiResponse(support.close(agent, support.target_uid(params["uid"]), params["sid"], reason))


def support_close_all(req: ApiRequest, params: dict[str, str]) -> ApiResponse:
    agent = _support_call(req)
    reason = bodies.decode(req.json(), bodies.SupportClosure).reason
    return ApiResponse(support.close_all(agent, support.target_uid(params["uid"]), reason))


def support_incidents(req: ApiRequest, params: dict[str, str]) -> ApiResponse:
    return ApiResponse(support.incidents(_support_call(req), support.target_uid(params["uid"])))


SUPPORT_PATHS = (
    ("GET", "", support_find_user),
    ("GET", "/<uid>/sessions", support_sessions),
    ("POST", "/<uid>/sessions/close-all", support_close_all),
    ("POST", "/<uid>/sessions/<sid:sid>/close", support_close),
    ("GET", "/<uid>/incidents", support_incidents),
)
SUPPORT_ROUTES = routes(*((method, f"/v1/support/users{path}", route) for method, path, route in SUPPORT_PATHS))


@functions_framework.http
def support_api(request: flask.Request) -> flask.Response:
    return dispatch(request, SUPPORT_ROUTES, without_app_check=frozenset(route for _, _, route in SUPPORT_PATHS))


# --- Firebase callables (the protocol: mydevices/http/callables.py), for apps that sign in to Firebase
# with the custom token of their login. One function per name, as the Firebase SDK calls
# https://<region>-<project>.cloudfunctions.net/<name>; `callables` serves them all by name.

def list_call(call: Call) -> Any:
    call.arguments(bodies.NoArguments)
    return listing.list_sessions(call.caller)


def revoke_call(call: Call) -> Any:
    sid = call.arguments(bodies.RevokeArguments).session_id
    revocation.close_other(call.caller, sid)
    return {"sessionId": sid, "revoked": True}


def revoke_others_call(call: Call) -> Any:
    call.arguments(bodies.NoArguments)
    return {"revoked": revocation.revoke_others(call.caller)}


def logout_call(call: Call) -> Any:
    call.arguments(bodies.NoArguments)
    revocation.logout(call.caller)
    return {"loggedOut": True}


def reauthenticate_call(call: Call) -> Any:
    """Re-verification for a Firebase-native app: the callables answer `recent_sign_in_required`
    (PERMISSION_DENIED), and this is its answer in the same protocol (`data.idToken`: a fresh sign-in's)."""
    return account_settings.reauthenticate(call.caller, call.arguments(bodies.Reauthenticate).id_token)


def auto_close_call(call: Call) -> Any:
    return account_settings.set_auto_close(call.caller, call.arguments(bodies.AutoClose).after_days)


def export_call(call: Call) -> Any:
    call.arguments(bodies.NoArguments)
    return export.export(call.caller)


def activity_call(call: Call) -> Any:
    arguments = bodies.decode({} if call.data is None else call.data, bodies.ActivityArguments, "data")
    return activity.list_activity(call.caller, arguments.limit, activity.cursor_of(arguments.cursor))


CALLABLES = {
    "sessions_list": list_call,
    "sessions_revoke": revoke_call,
    "sessions_revoke_others": revoke_others_call,
    "sessions_logout": logout_call,
    "sessions_reauthenticate": reauthenticate_call,
    "sessions_auto_close": auto_close_call,
    "account_export": export_call,
    "sessions_activity": activity_call,
}


@functions_framework.http
def sessions_list(request: flask.Request) -> flask.Response:
    return callable_protocol.serve(request, list_call)


@functions_framework.http
def sessions_revoke(request: flask.Request) -> flask.Response:
    return callable_protocol.serve(request, revoke_call)


@functions_framework.http
def sessions_revoke_others(request: flask.Request) -> flask.Response:
    return callable_protocol.serve(request, revoke_others_call)


@functions_framework.http
def sessions_logout(request: flask.Request) -> flask.Response:
    return callable_protocol.serve(request, logout_call)


@functions_framework.http
def sessions_reauthenticate(request: flask.Request) -> flask.Response:
    return callable_protocol.serve(request, reauthenticate_call)


@functions_framework.http
def sessions_auto_close(request: flask.Request) -> flask.Response:
    return callable_protocol.serve(request, auto_close_call)


@functions_framework.http
def account_export(request: flask.Request) -> flask.Response:
    return callable_protocol.serve(request, export_call)


@functions_framework.http
def sessions_activity(request: flask.Request) -> flask.Response:
    return callable_protocol.serve(request, activity_call)


@functions_framework.http
def callables(request: flask.Request) -> flask.Response:
    """All of them, by the last path segment: `/<name>`, or `/<project>/<region>/<name>` where the
    SDK's connectFunctionsEmulator sends them (the local stack serves this one function)."""
    return callable_protocol.serve(request, CALLABLES.get(request.path.rstrip("/").rpartition("/")[2]))


CALLABLE_TARGETS = frozenset({"callables", *CALLABLES})


def _framework_error(error: HTTPException) -> flask.Response | HTTPException:
    """What werkzeug refuses before the function runs, answered as the function served (the Flask
    app functions-framework makes is named after its target) would answer it; the event
    functions keep the framework's own answers."""
    target = flask.current_app.name
    if target in ("api", "support_api"):
        return render.render_framework_error(error)
    if target in CALLABLE_TARGETS:
        return callable_protocol.render_framework_error(error)
    return error


# functions-framework points `errorhandler` at its Flask app's while it imports this module;
# anywhere else it is a stand-in that registers nothing (so never rebind a name to its result).
functions_framework.errorhandler(HTTPException)(_framework_error)


# --- event entry points: the push fan-out. Their modules are imported on first use, so the
# API function's cold start does not pay for Pub/Sub and FCM clients it never uses.


@functions_framework.cloud_event
def on_session_written(event: CloudEvent) -> None:
    """Firestore trigger (document.v1.written on users/{uid}/sessions/{sid}): classify, publish."""
    from mydevices.push import events

    events.handle(event["id"], event.data)


@functions_framework.cloud_event
def send_session_push(event: CloudEvent) -> None:
    """Pub/Sub trigger (messagePublished on session-events): force_logout and new-login alerts."""
    from mydevices.push import fanout

    fanout.handle(event.data)


@functions_framework.cloud_event
def publish_app_events(event: CloudEvent) -> None:
    """Pub/Sub trigger (a second subscription on session-events): the app's own events topic."""
    from mydevices.app_events import relay

    relay.handle(event.data)


@functions_framework.http
def deliver_webhook(request: flask.Request) -> flask.Response:
    """Pub/Sub push target of each `webhook-<name>` subscription: one signed POST to that endpoint.
    A 204 acknowledges the message; a 503 has Pub/Sub retry it with back-off (app_events/webhooks.py)."""
    from mydevices.app_events import webhooks

    return flask.Response(status=204 if webhooks.handle(request.get_json(silent=True)) else 503)


@functions_framework.http
def sweep_deleted_users(request: flask.Request) -> flask.Response:
    """Cloud Scheduler's target (private): erase the data of deleted Firebase users (deleted_users.py).
    200 with the counts; 503 with Retry-After when Auth or Firestore failed (an Auth failure erases
    nothing), so the job's retry policy tries again. POST only, as Cloud Scheduler sends it: a GET
    (a health check, a crawler) runs nothing. A body `{"uids": [...]}` checks and erases those users
    only (an app's own Node onDelete trigger forwarding a deletion)."""
    from mydevices import deleted_users

    if request.method != "POST":
        return render.render(None, render.refused(Refusal(Code.METHOD_NOT_ALLOWED, "POST runs the sweep")))
    try:
        named = deleted_users.requested(request.get_data())  # {"uids": [...]}: those only, at once
        swept = deleted_users.sweep() if named is None else deleted_users.erase_named(named)
        return render.render(None, ApiResponse(swept.as_dict()))
    except Exception as failure:
        refusal = render.refusal_for(failure)
        if refusal is None:
            raise
        return render.render(None, render.refused(refusal))
