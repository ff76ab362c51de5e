"""The benchmark (infra/local/bench) still runs: every section, on tiny sizes, on the test stack.

This checks that each section produces its figures and that the JSON and the table can be
written, not what the figures are (speed is for the benchmark itself). A few counts are exact
facts about the product, though, and are checked: strict validation reads one document and
writes none, and so does each guard for other teams' functions (the Python `require_session` and
the Node `requireSession`) on every call counted; a login and a refresh each make one Firebase
Auth lookup, a genuine refresh writes its secret document and no counter (and `lastActiveAt` once
an interval), a refused stale token writes nothing but the per-address counter, the JWKS is fetched
once however many tokens are verified, and revoke-others commits its writes in batches of at most
500 and sends one force_logout per closed session. docs/capacity.md must hold what capacity.py
makes of these counts. The HTTP section runs only where `wrk` is installed (infra/local/bench
installs it).
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore

from infra.bench import capacity, cost, guards, report, session_events
from infra.bench.counting import Counter
from infra.bench.environment import environment, product_environment
from infra.bench.http_load import wrk_binary
from infra.bench.inproc_api import Device, InProcessApi
from infra.bench.run import SECTIONS, Options, results_document, run_sections
from infra.local.stack import IPHONE, Stack
from support.devices import sign_in_with_custom_token


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _figures(section: dict[str, Any], *paths: str) -> list[str]:
    """The dotted paths of `section` that do not hold a finite, non-negative number."""
    missing = []
    for path in paths:
        value: Any = section
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if not _number(value):
            missing.append(f"{path}={value!r}")
    return missing


FIGURES = {
    "strict_validation": ("ours.medianMs", "ours.p99Ms", "floor.medianMs", "floor.p99Ms", "median.ratio", "p99Ratio"),
    "jwks_verification": ("jwks.medianUs", "fixedKey.medianUs", "median.ratio", "jwksFetches"),
    "firebase_admin": ("ours.medianMs", "firebaseAdmin.medianMs", "oursOverTheirs"),
    "http": ("api.requestsPerSecond", "api.p50Ms", "api.p99Ms", "trivial.requestsPerSecond", "throughput.ratio"),
    "cold_start": ("apiCurrent.medianMs", "apiJwks.medianMs", "baseline.medianMs", "current.ratio", "jwks.ratio"),
    "revoke_to_push": ("medianMs", "worstMs"),
    "cost": ("revokeOthersAtScale.api.writes", "revokeOthersAtScale.fcmReceived"),
    "device_binding": ("bound.medianMs", "unbound.medianMs", "median.ratio", "proofCheck.medianUs",
                       "replayList.medianUs", "nonce.medianUs", "proofDocument.medianMs"),
    "scale": ("seeding.large.documents", "seeding.large.seconds", "validate.small.medianMs", "validate.large.medianMs",
              "validate.median.ratio", "list.small.medianMs", "list.large.medianMs", "list.median.ratio"),
}


@pytest.fixture(scope="module")
def results(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    log_dir = tmp_path_factory.mktemp("bench")
    options = Options.tiny()
    started_at, clock = datetime.now(UTC), time.monotonic()
    with product_environment(stack.env):
        sections = run_sections(stack, options, log_dir, progress=lambda _line: None)
    path = log_dir / "results.json"
    document = results_document(sections, command="infra/local/bench --tiny", started_at=started_at,
                                seconds=time.monotonic() - clock, load=(0.0, 0.0, 0.0), options=options, json_path=path)
    report.write_json(path, document)
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_every_section_has_its_figures(results: dict[str, Any]) -> None:
    sections = results["sections"]
    assert set(sections) == set(SECTIONS)
    failed = {name: section["error"] for name, section in sections.items() if "error" in section}
    assert not failed, failed
    if wrk_binary() is None:
        assert "skipped" in sections["http"]
    problems = {name: _figures(sections[name], *paths) for name, paths in FIGURES.items()
                if "skipped" not in sections[name]}
    assert not any(problems.values()), problems


def test_the_table_and_the_docs_block_are_written(results: dict[str, Any], tmp_path: Path) -> None:
    block = report.render(results)
    for title in ("1. Strict validation", "2. Local verification", "3. Ours / firebase-admin", "5. Scale",
                  "7. Cold start", "8. Revoke returned", "GET /v1/sessions/current", "9. Bound refresh",
                  guards.PYTHON_GUARD, guards.NODE_GUARD, "6. require_session (Python guard) per validated call",
                  "6. requireSession (Node guard, @mydevices/server) per validated call"):
        assert title in block
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nHand-written notes.\n")
    report.update_docs(docs, block, "")
    report.update_docs(docs, block, "")  # a second run replaces the block, keeps the notes
    text = docs.read_text()
    assert text.count(report.BEGIN) == 1 and "Hand-written notes." in text and block in text


def _api_costs(results: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {step["step"]: step["api"] for step in results["sections"]["cost"]["steps"]}


def test_validation_reads_one_document_and_writes_none(results: dict[str, Any]) -> None:
    current = _api_costs(results)[cost.VALIDATE]
    assert (current["reads"], current["writes"], current["authLookups"]) == (1, 0, 0)


def test_each_guard_reads_one_document_and_writes_none_on_every_call(results: dict[str, Any]) -> None:
    """The cost table's two guard rows: every counted call of each guard, not a total or an average."""
    rows = {row["step"]: row for row in results["sections"]["cost"]["guards"]}
    assert set(rows) == {guards.PYTHON_GUARD, guards.NODE_GUARD}
    for name, row in rows.items():
        assert row["calls"] == len(row["perCall"]) >= 2, name
        for call in row["perCall"]:
            assert call["status"] == 200, name  # the live session passed: the row is a validated call
            assert (call["reads"], call["found"], call["writes"], call["commits"], call["transactions"],
                    call["queries"]) == (1, 1, 0, 0, 0, 0), (name, call)
        assert row["settled"] and row["on_session_written"]["invocations"] == 0, name
        assert _number(row["timing"]["ratio"]) and row["timing"]["guard"]["n"] > 0, name


def test_the_guards_counts_see_a_write_when_the_guard_makes_one(stack: Stack) -> None:
    """The counting behind the guard rows is live on both sides: a Firebase ID token, whose session's
    activity the guard records (our access tokens' refresh records theirs), with activity written on every
    call (an interval of 0 s): each guard's count shows that write, in both languages, and it moves the
    session's idle deadline as a refresh does (documents.activity)."""
    with product_environment(stack.env), environment({"MYDEVICES_LAST_ACTIVE_INTERVAL_SECONDS": "0"}):
        counter = Counter()
        with counter.installed():
            device = Device(InProcessApi(), dict(IPHONE))
            uid, id_token = stack.auth.sign_up()
            custom = device.login(id_token).body["firebaseCustomToken"]
            firebase_id_token, _ = sign_in_with_custom_token(stack, custom)
            headers = {"Authorization": f"Bearer {firebase_id_token}"}
            document = f"users/{uid}/sessions/{device.session_id}"
            reference = firestore.Client(project=stack.project).document(document)
            guards.build_node_guard()
            python = guards.count_python(counter, headers, document, stack.project, 2, 1, 0)
            before = (reference.get().to_dict() or {})["idleExpiresAt"]
            node = guards.count_node(headers, document, 2, 1, 0)
            after = (reference.get().to_dict() or {})["idleExpiresAt"]
    for name, measured in (("python", python), ("node", node)):
        for call in measured["perCall"]:
            assert (call["status"], call["reads"], call["writes"], call["commits"]) == (200, 1, 1, 1), (name, call)
    assert after > before  # the Node guard's write moved the idle deadline too


def test_login_and_refresh_make_one_auth_lookup_each(results: dict[str, Any]) -> None:
    steps = _api_costs(results)
    assert steps[cost.NEW_DEVICE_LOGIN]["authLookups"] == 1
    assert steps[cost.LOGIN_AFTER_CLOSURE]["authLookups"] == 1
    assert steps[cost.REFRESH]["authLookups"] == 1


def test_lifetimes_add_no_read_or_write_to_validation_or_refresh(results: dict[str, Any]) -> None:
    """A session with both deadlines costs what a session costs: the deadlines ride on the document
    validation reads anyway, and a refresh moves the idle one in the write it makes anyway."""
    steps = _api_costs(results)
    for lifetimes, plain in ((cost.LIFETIMES_VALIDATE, cost.VALIDATE), (cost.LIFETIMES_REFRESH, cost.REFRESH)):
        counted = ("reads", "writes", "commits", "queries", "aggregations", "authLookups")
        assert {k: steps[lifetimes][k] for k in counted} == {k: steps[plain][k] for k in counted}, lifetimes


def test_step_up_auto_close_and_expiry_cost_what_they_change_and_push_nothing(results: dict[str, Any]) -> None:
    rows = {row["step"]: row for row in results["sections"]["cost"]["steps"]}
    reauthenticated = rows[cost.REAUTHENTICATE]["api"]
    # the session's authTime, besides its abuse-limit counter; no query
    assert (reauthenticated["writes"] - reauthenticated["counterWrites"], reauthenticated["queries"]) == (1, 0)
    auto_close = rows[cost.AUTO_CLOSE]["api"]
    assert auto_close["writes"] - auto_close["counterWrites"] == 3  # the user's choice, then each of 2 sessions
    expired = rows[cost.EXPIRED_FIRST_SEEN]["api"]
    assert expired["writes"] - expired["counterWrites"] == 1 and expired["authLookups"] == 0  # closed, no lookup
    for name in (cost.REAUTHENTICATE, cost.AUTO_CLOSE, cost.EXPIRED_FIRST_SEEN):
        assert rows[name]["settled"] and rows[name]["fcmReceived"] == 0, name  # nobody is told to log out


def test_refused_requests_write_only_the_per_address_counter(results: dict[str, Any]) -> None:
    steps = _api_costs(results)
    for name in (cost.STALE_REPLAY, cost.MALFORMED_LOGIN):
        assert (steps[name]["writes"], steps[name]["counterWrites"], steps[name]["authLookups"]) == (1, 1, 0), name


def test_a_genuine_refresh_writes_its_secret_document_only_and_records_activity_once_an_interval(
    results: dict[str, Any],
) -> None:
    """Issue 24: no abuse-limit counter on a genuine refresh (the per-address limit counts failures,
    the session's budget lives in its secret document), and `lastActiveAt` in the rotation's
    transaction once the recorded activity is an interval old: one more write, one trigger run."""
    steps = {step["step"]: step for step in results["sections"]["cost"]["steps"]}
    plain, recording = steps[cost.REFRESH], steps[cost.REFRESH_RECORDING_ACTIVITY]
    assert (plain["api"]["writes"], plain["api"]["counterWrites"], plain["api"]["commits"]) == (1, 0, 1)
    assert plain["on_session_written"]["invocations"] == 0
    assert (recording["api"]["writes"], recording["api"]["counterWrites"], recording["api"]["commits"]) == (2, 0, 1)
    trigger = recording["on_session_written"]
    assert (trigger["invocations"], trigger.get("publishes", 0)) == (1, 0)


def test_the_capacity_doc_matches_the_measured_counts(results: dict[str, Any]) -> None:
    written = report.generated_block(capacity.DEFAULT_DOCS.read_text(encoding="utf-8"),
                                     begin=capacity.BEGIN, end=capacity.END)
    assert written == capacity.render(results), (
        "docs/capacity.md is out of date: infra/local/bench --only cost, then .venv/bin/python -m infra.bench.capacity")


def test_the_jwks_is_fetched_once(results: dict[str, Any]) -> None:
    section = results["sections"]["jwks_verification"]
    assert section["calls"] > 1
    assert section["jwksFetches"] == 1


def test_revoke_others_commits_in_batches_and_pushes_each_closed_session(results: dict[str, Any]) -> None:
    at_scale = results["sections"]["cost"]["revokeOthersAtScale"]
    others = at_scale["others"]
    assert at_scale["settled"]
    # and one more write, in a commit of its own before them: the account's fresh-sign-in mark
    assert at_scale["api"]["writes"] == others + 1
    assert at_scale["api"]["commits"] == math.ceil(others / 500) + 1
    assert at_scale["fcmReceived"] == others
    assert at_scale["send_session_push"]["fcmMessages"] == others


def test_recording_the_activity_adds_one_write_per_entry_and_no_function_run(results: dict[str, Any]) -> None:
    """The security activity (docs/activity.md) rides on the relay: per login 1 write, per closure 1
    (2 with its "No" or its copied-token incident), 1 read more for a closure by the user (the acting
    device's name), nothing on the request path and no function run of its own. Per delivered event:
    Firestore may deliver a change twice, and the second run rewrites the same documents."""
    rows = {row["step"]: row for row in results["sections"]["cost"]["activity"]}
    expected = {cost.NEW_DEVICE_LOGIN: (1, 0, 1), cost.CLOSE: (1, 1, 1), cost.ALERT_NO: (2, 0, 2),
                cost.COPIED_TOKEN: (2, 0, 2), cost.LOGOUT: (1, 0, 1), cost.EXPIRED_FIRST_SEEN: (1, 0, 1)}
    for step, (entries, reads, writes) in expected.items():
        row = rows[step]
        activity, relay, events = row["activity"], row["publish_app_events"], row["events"]
        assert row["entries"] == entries, step
        assert (activity["reads"], activity["writes"]) == (reads * events, writes * events), step
        assert relay["invocations"] == events, step  # the relay's one run per event, as before
        assert relay["writes"] == activity["writes"], step  # the relay writes nothing else
    copied = rows[cost.COPIED_TOKEN]
    assert copied["publish_app_events"]["reads"] == copied["events"]  # the incident's record, as before


def test_session_events_cost_one_relay_run_and_one_post_per_endpoint_per_event_and_no_firestore(
        results: dict[str, Any]) -> None:
    """What session events add, measured: per session change, one relay run publishing one app event,
    then one webhook run and one POST per endpoint, with no read or write while receivers answer 2xx."""
    rows = {row["step"]: row for row in results["sections"]["cost"]["sessionEvents"]}
    assert set(rows) == set(session_events.ROWS)
    for name, row in rows.items():
        relay, webhook = row["publish_app_events"], row["deliver_webhook"]
        assert row["settled"], name
        assert row["on_session_written"]["publishes"] == relay["invocations"] == 1, name
        assert relay["publishes"] == relay["appEventPublishes"] == 1, name
        assert webhook["invocations"] == row["webhookPosts"] == row["endpoints"] == 2, name
        assert (webhook["reads"], webhook["writes"], webhook["authLookups"]) == (0, 0, 0), name
        # The relay's Firestore work is the security activity's, whose own test above counts it.
        assert (relay["authLookups"], relay["writes"]) == (0, row["activityEntries"]), name


def test_a_mailed_login_adds_one_auth_lookup_and_one_smtp_send_and_no_firestore(results: dict[str, Any]) -> None:
    """Against the same login whose alert a push carries (the second device's row): the email needs
    the address from Firebase Auth and the send, nothing more; the session it speaks for comes from
    the reads the push makes anyway. A login with nobody to alert (the first device) costs no more."""
    rows = {row["step"]: row for row in results["sections"]["cost"]["sessionEvents"]}
    mailed = rows[session_events.EMAILED_LOGIN]["send_session_push"]
    pushed = {row["step"]: row for row in results["sections"]["cost"]["steps"]}[cost.NEW_DEVICE_LOGIN]
    by_push = pushed["send_session_push"]
    assert (mailed["authLookups"], mailed["smtpSends"], mailed["fcmMessages"]) == (1, 1, 0), mailed
    assert (by_push["authLookups"], by_push["smtpSends"], by_push["fcmMessages"]) == (0, 0, 1), by_push
    assert (mailed["reads"], mailed["queries"], mailed["writes"]) == \
        (by_push["reads"], by_push["queries"], by_push["writes"]), (mailed, by_push)
    assert rows[session_events.EMAILED_LOGIN]["smtpReceived"] == 1
    first = rows[session_events.FIRST_LOGIN]["send_session_push"]
    assert (first["authLookups"], first["smtpSends"], first["queries"]) == (0, 0, 1), first
    for name in (session_events.FIRST_LOGIN, session_events.CLOSE):
        assert rows[name]["smtpReceived"] == 0, name


def test_a_support_closure_costs_the_agents_auth_lookup_and_its_audit_record(results: dict[str, Any]) -> None:
    """Against the user's own DELETE: no caller session to read, one Auth lookup (the agent's standing
    and claim), one more write (the audit record); the same fan-out (one force_logout)."""
    rows = {row["step"]: row for row in results["sections"]["cost"]["steps"]}
    own, support = rows[cost.CLOSE], rows[cost.SUPPORT_CLOSE]
    assert (support["api"]["reads"], support["api"]["writes"], support["api"]["authLookups"]) == (
        own["api"]["reads"] - 1, own["api"]["writes"] + 1, own["api"]["authLookups"] + 1)
    for function in ("on_session_written", "send_session_push"):
        assert support[function] == own[function], function
    assert support["settled"] and support["fcmReceived"] == own["fcmReceived"] == 1
