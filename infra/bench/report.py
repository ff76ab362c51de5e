"""The results as tables: printed, and written into docs/benchmarks.md.

The benchmark owns only the part of docs/benchmarks.md between the two markers below; the
prose around it (method, analysis) is written by people and survives every run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.bench.stats import ratio as stats_ratio

BEGIN = "<!-- bench:begin (written by infra/local/bench; edit outside these markers) -->"
END = "<!-- bench:end -->"

Row = list[str]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} µs"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _target(verdict: dict[str, Any] | None) -> tuple[str, str]:
    if not verdict:
        return "-", "-"
    sign = "≥" if verdict.get("targetKind") == "min" else "≤"
    return f"{sign} {verdict['target']}x", "met" if verdict["met"] else "**missed**"


def _row(name: str, ours: str, baseline: str, ratio: float | None, verdict: dict[str, Any] | None = None) -> Row:
    target, met = _target(verdict)
    return [name, ours, baseline, _x(ratio), target, met]


def _section(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    section = results.get("sections", {}).get(key)
    if not isinstance(section, dict) or "error" in section or "skipped" in section:
        return None
    return section


def _skipped(results: dict[str, Any], key: str, title: str) -> Row | None:
    section = results.get("sections", {}).get(key)
    if section is None:
        return None
    if "error" in section:
        return [title, "**failed**: " + str(section["error"]).splitlines()[0][:120], "", "", "", ""]
    if "skipped" in section:
        return [title, "skipped: " + str(section["skipped"]), "", "", "", ""]
    return None


def summary_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    builders: list[tuple[str, str, Callable[[dict[str, Any]], list[Row]]]] = [
        ("strict_validation", "1. Strict validation", _strict_rows),
        ("jwks_verification", "2. Local verification (JWKS)", _jwks_rows),
        ("firebase_admin", "3. vs firebase-admin", _firebase_rows),
        ("http", "4. HTTP", _http_rows),
        ("scale", "5. Scale", _scale_rows),
        ("cold_start", "7. Cold start", _cold_rows),
        ("revoke_to_push", "8. Revoke to push", _push_rows),
        ("device_binding", "9. Device binding", _binding_rows),
        ("cost", "6. Guards", _guard_rows),
    ]
    for key, title, build in builders:
        section = _section(results, key)
        if section is not None:
            rows += build(section)
        else:
            note = _skipped(results, key, title)
            if note is not None:
                rows.append(note)
    return rows


def _binding_rows(s: dict[str, Any]) -> list[Row]:
    return [
        _row("9. Bound refresh (DPoP proof) vs unbound refresh, median, in-process api", _ms(s["bound"]["medianMs"]),
             _ms(s["unbound"]["medianMs"]), s["median"]["ratio"], s["median"]),
        _row("9. Bound vs unbound refresh, p99", _ms(s["bound"]["p99Ms"]), _ms(s["unbound"]["p99Ms"]), s["p99Ratio"]),
        _row("9. dpop.check (ES256 verify, htm/htu/iat, nonce), median", _us(s["proofCheck"]["medianUs"]), "-", None),
        _row("9. Replay list (dpop.remember, 8 recent proofs), median", _us(s["replayList"]["medianUs"]), "-", None),
        _row("9. Nonce (HMAC of the window), median", _us(s["nonce"]["medianUs"]), "-", None),
        _row("9. DBSC registration (POST /v1/sessions/dbsc/register), median", _ms(s["dbsc"]["register"]["medianMs"]),
             "-", None),
        _row("9. DBSC bound-cookie refresh with proof vs web token refresh, median",
             _ms(s["dbsc"]["dbscRefresh"]["medianMs"]), _ms(s["dbsc"]["tokenRefresh"]["medianMs"]),
             s["dbsc"]["refreshRatio"]),
        _row("9. DBSC refresh without proof (403 challenge), median", _ms(s["dbsc"]["challenge"]["medianMs"]),
             "-", None),
        _row("9. Replay list vs a create-if-absent document per proof (the road not taken), median",
             _us(s["replayList"]["medianUs"]), _ms(s["proofDocument"]["medianMs"]), None),
    ]


def _guard_rows(s: dict[str, Any]) -> list[Row]:
    rows = []
    for step in s.get("guards", []):
        timing = step["timing"]
        rows.append(_row(f"6. {step['step'].split(':')[0]} per validated call, median (vs a bare get of the session "
                         "document by the same client, interleaved)", _ms(timing["guard"]["medianMs"]),
                         _ms(timing["bareGet"]["medianMs"]), timing["ratio"]))
    return rows


def _strict_rows(s: dict[str, Any]) -> list[Row]:
    return [
        _row("1. Strict validation, median (vs PyJWT decode + bare get)", _ms(s["ours"]["medianMs"]),
             _ms(s["floor"]["medianMs"]), s["median"]["ratio"], s["median"]),
        _row("1. Strict validation, p99", _ms(s["ours"]["p99Ms"]), _ms(s["floor"]["p99Ms"]), s["p99Ratio"]),
    ]


def _jwks_rows(s: dict[str, Any]) -> list[Row]:
    return [_row(f"2. Local verification with the JWKS, median ({s['jwksFetches']} fetch for {s['calls']} calls; "
                 "vs PyJWT decode, fixed key)", _us(s["jwks"]["medianUs"]), _us(s["fixedKey"]["medianUs"]),
                 s["median"]["ratio"], s["median"])]


def _firebase_rows(s: dict[str, Any]) -> list[Row]:
    return [
        _row("3. Ours / firebase-admin verify_id_token(check_revoked=True), median", _ms(s["ours"]["medianMs"]),
             _ms(s["firebaseAdmin"]["medianMs"]), s["oursOverTheirs"]),
        _row("3. Ours / firebase-admin, p99", _ms(s["ours"]["p99Ms"]), _ms(s["firebaseAdmin"]["p99Ms"]),
             s["p99OursOverTheirs"]),
    ]


def _http_rows(s: dict[str, Any]) -> list[Row]:
    api, trivial = s["api"], s["trivial"]
    load = s["load"]
    return [
        _row(f"4. HTTP GET /v1/sessions/current, req/s ({load['connections']} connections; vs a trivial function)",
             f"{api['requestsPerSecond']:.0f}/s", f"{trivial['requestsPerSecond']:.0f}/s", s["throughput"]["ratio"],
             s["throughput"]),
        _row("4. HTTP req/s vs a bare function doing the same one document read", f"{api['requestsPerSecond']:.0f}/s",
             f"{s['bareRead']['requestsPerSecond']:.0f}/s", s["versusBareRead"]),
        _row("4. HTTP CPU per request, function processes (vs the trivial function)",
             _ms(api["functionCpuMsPerRequest"]), _ms(trivial["functionCpuMsPerRequest"]),
             stats_ratio(api["functionCpuMsPerRequest"], trivial["functionCpuMsPerRequest"])),
        _row("4. HTTP CPU per request, function + Firestore emulator (vs the bare-read function)",
             _ms(api["functionCpuMsPerRequest"] + api["firestoreCpuMsPerRequest"]),
             _ms(s["bareRead"]["functionCpuMsPerRequest"] + s["bareRead"]["firestoreCpuMsPerRequest"]),
             stats_ratio(api["functionCpuMsPerRequest"] + api["firestoreCpuMsPerRequest"],
                         s["bareRead"]["functionCpuMsPerRequest"] + s["bareRead"]["firestoreCpuMsPerRequest"])),
        _row("4. HTTP p50", _ms(api["p50Ms"]), _ms(trivial["p50Ms"]), s["p50Ratio"]),
        _row("4. HTTP p99", _ms(api["p99Ms"]), _ms(trivial["p99Ms"]), s["p99Ratio"]),
    ]


def _scale_rows(s: dict[str, Any]) -> list[Row]:
    large, small = s["seeding"]["large"]["users"], s["seeding"]["small"]["users"]
    rows = []
    for key, title in (("validate", "validation"), ("list", "listing")):
        part = s[key]
        rows.append(_row(f"5. Scale: {title} median, {large:,} vs {small:,} users", _ms(part["large"]["medianMs"]),
                         _ms(part["small"]["medianMs"]), part["median"]["ratio"], part["median"]))
        rows.append(_row(f"5. Scale: bare {'get' if key == 'validate' else 'list query'} alone, same sizes",
                         _ms(part["bareLarge"]["medianMs"]), _ms(part["bareSmall"]["medianMs"]), part["bareRatio"]))
    return rows


def _cold_rows(s: dict[str, Any]) -> list[Row]:
    return [
        _row("7. Cold start to first validated answer (GET current), median (vs bare function importing Firestore)",
             _ms(s["apiCurrent"]["medianMs"]), _ms(s["baseline"]["medianMs"]), s["current"]["ratio"], s["current"]),
        _row("7. Cold start to first answer without Firestore (GET jwks.json), median",
             _ms(s["apiJwks"]["medianMs"]), _ms(s["baseline"]["medianMs"]), s["jwks"]["ratio"], s["jwks"]),
    ]


def _push_rows(s: dict[str, Any]) -> list[Row]:
    return [[f"8. Revoke returned -> force_logout at FCM stand-in ({s['n']} runs): median / worst",
             f"{_ms(s['medianMs'])} / {_ms(s['worstMs'])}", "-", "-", "-", "-"]]


def cost_rows(results: dict[str, Any]) -> list[Row]:
    section = _section(results, "cost")
    if section is None:
        return []
    rows: list[Row] = []
    steps = list(section["steps"]) + [section["revokeOthersAtScale"]] + list(section.get("guards", []))
    for step in steps:
        api = step["api"]
        trigger = step["on_session_written"]
        push = step["send_session_push"]
        name = step["step"] + ("" if step.get("settled", True) else " (fan-out still running at timeout)")
        if "perCall" in step:
            name += (f" ({step['calls']} calls, each alike)" if step["alike"]
                     else f" ({step['calls']} calls that differ: the first shown, all in the JSON)")
        rows.append([
            name, _rw(api), str(api["authLookups"]) if "authLookups" in api else "not counted", _rw_commits(api),
            _calls(trigger) + " / " + _rw(trigger) + f" / {trigger.get('publishes', 0)}",
            _calls(push) + " / " + _rw(push),
            f"{push.get('fcmMessages', 0) + api.get('fcmMessages', 0)} in {push.get('fcmCalls', 0)} calls; "
            f"stand-in got {step['fcmReceived']}",
        ])
    return rows


def activity_rows(results: dict[str, Any]) -> list[Row]:
    """What recording the security activity adds to the steps that publish session events (activity_cost.py)."""
    section = _section(results, "cost")
    rows: list[Row] = []
    for step in (section or {}).get("activity", []):
        relay, activity = step["publish_app_events"], step["activity"]
        rows.append([step["step"], f"{step['events']} / {step['entries']}",
                     _calls(relay) + " / " + _rw(relay) + f" / {relay.get('publishes', 0)}",
                     _rw(activity) + f", {activity.get('commits', 0)} commits", "0"])
    return rows


def session_event_rows(results: dict[str, Any]) -> list[Row]:
    """What session events (the relay, one webhook delivery per endpoint) and the alert email add."""
    section = _section(results, "cost")
    if section is None:
        return []
    rows: list[Row] = []
    for step in section.get("sessionEvents", []):
        trigger, push = step["on_session_written"], step["send_session_push"]
        relay, webhook = step["publish_app_events"], step["deliver_webhook"]
        name = step["step"] + ("" if step.get("settled", True) else " (fan-out still running at timeout)")
        rows.append([
            name, _rw(step["api"]), _calls(trigger) + f" / {trigger.get('publishes', 0)}",
            _calls(relay) + " / " + _rw(relay) + f" / {relay.get('publishes', 0)}",
            _calls(webhook) + " / " + _rw(webhook) + f" / receivers got {step['webhookPosts']}",
            f"{push.get('authLookups', 0)} / {push.get('queries', 0)} / {push.get('smtpSends', 0)}; "
            f"stand-in got {step['smtpReceived']}",
            _calls(push) + " / " + _rw(push),
        ])
    return rows


def _rw(tally: dict[str, int]) -> str:
    return f"{tally.get('reads', 0)} R, {tally.get('writes', 0)} W"


def _rw_commits(tally: dict[str, int]) -> str:
    extras = []
    if tally.get("counterWrites"):
        extras.append(f"{tally['counterWrites']} W to counters")
    if tally.get("aggregations"):
        extras.append(f"{tally['aggregations']} count()")
    if tally.get("queries"):
        extras.append(f"{tally['queries']} quer{'y' if tally['queries'] == 1 else 'ies'}")
    extras.append(f"{tally.get('commits', 0)} commit{'' if tally.get('commits') == 1 else 's'}")
    return ", ".join(extras)


def _calls(tally: dict[str, int]) -> str:
    return f"{tally.get('invocations', 0)}x"


def table(header: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


ACTIVITY_HEADER = ["call", "session events / activity entries", "publish_app_events: runs / R, W / publishes",
                   "of which the activity: R, W", "function runs added"]
EVENTS_HEADER = ["call", "api: reads, writes", "on_session_written: runs / publishes",
                 "publish_app_events: runs / R, W / publishes", "deliver_webhook: runs / R, W / POSTs",
                 "send_session_push: Auth lookups / queries / SMTP sends", "send_session_push: runs / R, W"]
SUMMARY_HEADER = ["measurement", "ours", "baseline", "ratio", "target", ""]
COST_HEADER = ["call", "api: reads, writes", "api: Auth lookups", "api: detail",
               "on_session_written: runs / R, W / publishes", "send_session_push: runs / R, W", "FCM messages"]


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    parts = [
        f"Run of {meta['startedAt']} on {meta['cpus']} CPUs (load average {meta['loadAverage']} at the start), "
        f"{meta['durationSeconds']:.0f} s in all:",
        "",
        "```bash",
        meta["command"],
        "```",
        "",
        table(SUMMARY_HEADER, summary_rows(results)),
    ]
    costs = cost_rows(results)
    if costs:
        parts += ["", "Cost per call, counted at the clients (R = document reads, W = document writes, of which "
                  "\"W to counters\" are abuse-limit counters; Auth lookups = firebase-admin account lookups; FCM "
                  "counted at firebase-admin's send_each and at the stand-in):", "", table(COST_HEADER, costs)]
    activity = activity_rows(results)
    if activity:
        parts += ["", "What recording the security activity adds (docs/activity.md), per step of the cost scenario "
                  "that publishes session events; counted running the relay on that step's own events:", "",
                  table(ACTIVITY_HEADER, activity)]
    events = session_event_rows(results)
    if events:
        parts += ["", "What session events and the alert email add (the relay and one webhook delivery per endpoint, "
                  "here 2 endpoints; the email counted at smtplib and at the SMTP stand-in):", "",
                  table(EVENTS_HEADER, events)]
    parts += ["", f"All figures: `{meta['json']}`."]
    return "\n".join(parts)


def update_docs(path: Path, block: str, skeleton: str, *, begin: str = BEGIN, end: str = END) -> None:
    """Replace the generated block of `path` (the whole file is `skeleton` the first time)."""
    text = path.read_text(encoding="utf-8") if path.exists() else skeleton
    if begin not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{begin}\n{block}\n{end}{tail}", encoding="utf-8")


def generated_block(text: str, *, begin: str = BEGIN, end: str = END) -> str | None:
    """What `update_docs` last wrote between the markers of `text`, or None without them."""
    if begin not in text or end not in text:
        return None
    return text.partition(begin)[2].partition(end)[0].strip("\n")


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
