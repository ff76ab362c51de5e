"""Capacity on paper: the measured per-call counts of the cost table, times a usage model.

    .venv/bin/python -m infra.bench.capacity [--results .local/bench/results.json] [--docs docs/capacity.md]

The per-call counts come from the rows of the cost section of a benchmark run (cost.py names
them), so when the product's cost changes, `infra/local/bench --only cost` and this command carry
it into docs/capacity.md; tests/platform/test_benchmarks.py fails while the document says otherwise. Only
counts enter the tables, never timings, so a `--tiny` run yields the same tables as a full one.

What is assumed rather than measured is a constant below, each stated in the document: the
usage model, the list prices, the peak factor, and the CPU time per call (from the HTTP section
of the last full run, docs/benchmarks.md). The trigger's outbox sweep (at most one read a minute
per instance, however many calls) is left out of the rows on purpose. `lastActiveAt` is written by
the refresh once the recorded one is an interval old: its own row (the scenario sets the recorded
activity back an interval first), used for one refresh per interval of activity.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.bench import cost, report
from infra.local.stack import REPO_ROOT

BEGIN = "<!-- capacity:begin (written by python -m infra.bench.capacity; edit outside these markers) -->"
END = "<!-- capacity:end -->"
DEFAULT_RESULTS = REPO_ROOT / ".local" / "bench" / "results.json"
DEFAULT_DOCS = REPO_ROOT / "docs" / "capacity.md"

DAILY_USERS = (10_000, 1_000_000, 10_000_000)

# --- the usage model, per daily user and day
ACTIVE_HOURS = 2.0
ACCESS_TOKEN_MINUTES = 10  # MYDEVICES_ACCESS_TTL_SECONDS = 600
ACTIVITY_WRITE_MINUTES = 60  # MYDEVICES_LAST_ACTIVE_INTERVAL_SECONDS = 3600: one refresh an hour records it
DEVICES = 50  # MYDEVICES_MAX_ACTIVE_SESSIONS: the fan-out bound


@dataclass(frozen=True)
class Use:
    what: str
    per_day: float
    row: str


REFRESHES = ACTIVE_HOURS * 60 / ACCESS_TOKEN_MINUTES
ACTIVITY_REFRESHES = ACTIVE_HOURS * 60 / ACTIVITY_WRITE_MINUTES  # those that also write lastActiveAt
USAGE = (
    Use(f"refreshes that only rotate ({ACTIVE_HOURS:g} active hours x {60 // ACCESS_TOKEN_MINUTES} an hour, "
        f"less those below)", REFRESHES - ACTIVITY_REFRESHES, cost.REFRESH),
    Use(f"refreshes that also record `lastActiveAt` (one per {ACTIVITY_WRITE_MINUTES} min of activity)",
        ACTIVITY_REFRESHES, cost.REFRESH_RECORDING_ACTIVITY),
    Use("validated API calls (the app's own backend calls)", 60, cost.VALIDATE),
    Use("device-list views", 0.2, cost.LIST),
    Use("logins, each counted as a new device alerting 1 other", 0.1, cost.NEW_DEVICE_LOGIN),
    Use("push-token updates", 0.05, cost.PUSH_TOKEN),
    Use("sessions closed from another device", 0.01, cost.CLOSE),
    Use("logouts", 0.01, cost.LOGOUT),
    Use('alerts answered "no"', 0.001, cost.ALERT_NO),
)

# --- list prices (as of writing; check https://cloud.google.com/firestore/pricing and the others)
READS_PER_100K = 0.06  # Firestore, us-central1, Standard edition
WRITES_PER_100K = 0.18
DELETES_PER_100K = 0.02
REQUESTS_PER_MILLION = 0.40  # Cloud Functions 2nd gen = Cloud Run, request-based billing, tier 1
VCPU_SECOND = 0.000024
GIB_SECOND = 0.0000025
PUBSUB_PER_TIB = 40.0  # publish and delivery each billed, at least 1 KB per message
PUBSUB_MIN_BYTES = 1000

# --- for the limits
PEAK_FACTOR = 3.0  # the busiest hour, against the day's average
CPU_MS_PER_CALL = 2.15  # docs/benchmarks.md, 4.: function CPU per validated request (2026-12-02)
BILLED_MS_PER_CALL = 20.0  # instance time billed per invocation, 1 vCPU and 1 GiB (an upper bound)
API_MAX_INSTANCES = 20  # infra/terraform/variables.tf, api_max_instances
DATABASE_WRITES_PER_SECOND = 10_000  # Firestore's per-database soft limit
SECONDS_PER_DAY = 86_400

Figures = dict[str, float]
KEYS = ("reads", "writes", "counterWrites", "claims", "authLookups", "publishes", "invocations", "apiCalls", "fcm")


def per_call(step: Mapping[str, Any]) -> Figures:
    """What one call of a cost-table row costs, fan-out included (trigger reads left out: see above)."""
    api, trigger, push = (step.get(name) or {} for name in ("api", "on_session_written", "send_session_push"))
    return {
        "reads": api.get("reads", 0) + push.get("reads", 0),
        "writes": api.get("writes", 0) + push.get("writes", 0) + trigger.get("writes", 0),
        "counterWrites": api.get("counterWrites", 0),
        "claims": push.get("writes", 0) / 2,  # processedEvents: a claim and its finish, one document
        "authLookups": api.get("authLookups", 0),
        "publishes": trigger.get("publishes", 0),
        "invocations": sum(part.get("invocations", 0) for part in (api, trigger, push)),
        "apiCalls": api.get("invocations", 0),
        "fcm": push.get("fcmMessages", 0) + api.get("fcmMessages", 0),
    }


def _rows(results: Mapping[str, Any]) -> dict[str, Figures]:
    section = results["sections"]["cost"]
    if "error" in section:
        raise ValueError(f"the cost section failed: {section['error']}")
    return {step["step"]: per_call(step) for step in section["steps"]}


def per_daily_user(rows: Mapping[str, Figures]) -> Figures:
    day = dict.fromkeys(KEYS, 0.0)
    for use in USAGE:
        for key in KEYS:
            day[key] += use.per_day * rows[use.row][key]
    return day


def _linear(one: Figures, other: Figures, n_one: float, n_other: float, n: float) -> Figures:
    """Between two rows that differ only in how many sessions they touch, at `n` sessions."""
    return {key: one[key] + (other[key] - one[key]) * (n - n_one) / (n_other - n_one) for key in KEYS}


# --- formatting


def _n(value: float) -> str:
    for size, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _usd(value: float) -> str:
    """Three significant figures at most: the inputs are estimates, the cents would not be."""
    if value >= 100:
        return f"${float(f'{value:.3g}'):,.0f}"
    return f"${value:.3g}" if value >= 0.01 else ("$0" if value == 0 else "< $0.01")


def _g(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def _per_call_cells(figures: Figures) -> list[str]:
    return [_g(figures["reads"]), f"{_g(figures['writes'])} ({_g(figures['counterWrites'])})",
            _g(figures["authLookups"]), _g(figures["publishes"]), _g(figures["invocations"]), _g(figures["fcm"])]


def _peak(per_day: float) -> float:
    return per_day / SECONDS_PER_DAY * PEAK_FACTOR


def _costs(day: Figures) -> dict[str, float]:
    deletes = day["counterWrites"] + day["claims"]
    message_bytes = day["publishes"] * 2 * PUBSUB_MIN_BYTES
    return {
        "Firestore reads": day["reads"] / 1e5 * READS_PER_100K,
        "Firestore writes": day["writes"] / 1e5 * WRITES_PER_100K,
        "TTL deletes": deletes / 1e5 * DELETES_PER_100K,
        "function requests": day["invocations"] / 1e6 * REQUESTS_PER_MILLION,
        "function CPU + memory": day["invocations"] * BILLED_MS_PER_CALL / 1000 * (VCPU_SECOND + GIB_SECOND),
        "Pub/Sub": message_bytes / 2**40 * PUBSUB_PER_TIB,
    }


def render(results: Mapping[str, Any]) -> str:
    rows = _rows(results)
    day = per_daily_user(rows)
    usage = [[use.what, f"{use.per_day:g}", f"`{use.row}`", *_per_call_cells(rows[use.row])] for use in USAGE]
    usage.append(["**per daily user and day**", "", "", *_per_call_cells(day)])
    per_call_header = ["use", "per day", "cost-table row", "R", "W (counters)", "Auth", "publishes",
                       "invocations", "FCM"]

    totals, money, limits = [], [], []
    for users in DAILY_USERS:
        scaled = {key: value * users for key, value in day.items()}
        deletes = scaled["counterWrites"] + scaled["claims"]
        totals.append([f"{users:,}", _n(scaled["reads"]), f"{_n(scaled['writes'])} ({_n(scaled['counterWrites'])})",
                       _n(deletes), _n(scaled["authLookups"]), _n(scaled["publishes"]), _n(scaled["invocations"]),
                       _n(scaled["fcm"])])
        costs = _costs(scaled)
        total = sum(costs.values())
        money.append([f"{users:,}", *(_usd(value) for value in costs.values()), _usd(total), _usd(total * 30)])
        cpus = _peak(scaled["apiCalls"]) * CPU_MS_PER_CALL / 1000
        limits.append([f"{users:,}", f"{_peak(scaled['apiCalls']):,.0f}/s", f"{cpus:,.1f} (of {API_MAX_INSTANCES})",
                       f"{_peak(scaled['writes']):,.0f}/s (of {DATABASE_WRITES_PER_SECOND:,})",
                       f"{_peak(scaled['authLookups']):,.0f}/s", f"{_peak(scaled['publishes']):,.1f}/s",
                       f"{_peak(scaled['invocations'] - scaled['apiCalls']):,.1f}/s"])

    at_scale = results["sections"]["cost"]["revokeOthersAtScale"]
    others = int(at_scale["others"])
    login_at = _linear(rows[cost.NEW_DEVICE_LOGIN], rows[cost.THIRD_DEVICE_LOGIN], 2, 3, DEVICES)
    revoke_at = _linear(rows[cost.REVOKE_ONE_OTHER], per_call(at_scale), 2, others + 1, DEVICES)
    fan_out = [
        [f"login of device {DEVICES} (alerts {DEVICES - 1})",
         f"`{cost.NEW_DEVICE_LOGIN}` and `{cost.THIRD_DEVICE_LOGIN}`", *_per_call_cells(login_at)],
        [f"revoke-others with {DEVICES} sessions ({DEVICES - 1} closed)",
         f"`{cost.REVOKE_ONE_OTHER}` and the revoke-others row at scale", *_per_call_cells(revoke_at)],
        ["junk at the login endpoint, per request", f"`{cost.MALFORMED_LOGIN}`",
         *_per_call_cells(rows[cost.MALFORMED_LOGIN])],
        ["a stale refresh token replayed, per request", f"`{cost.STALE_REPLAY}`",
         *_per_call_cells(rows[cost.STALE_REPLAY])],
    ]
    return "\n".join([
        "Per call, from the rows named (R = document reads; W = document writes, in brackets those to "
        "abuse-limit counters; Auth = Firebase Auth lookups; invocations = api, trigger and push function runs):",
        "",
        report.table(per_call_header, usage),
        "",
        "Per day (TTL deletes: an upper bound, one per counter write and one per push claim):",
        "",
        report.table(["daily users", "reads", "writes (counters)", "TTL deletes", "Auth lookups",
                      "Pub/Sub messages", "invocations", "FCM messages"], totals),
        "",
        f"Cost per day at list prices, no free tier (function CPU + memory: {BILLED_MS_PER_CALL:g} ms of 1 vCPU and "
        "1 GiB billed per invocation):",
        "",
        report.table(["daily users", *_costs(day), "total / day", "x 30 days"], money),
        "",
        f"Busiest hour at {PEAK_FACTOR:g}x the daily average (api CPU: {CPU_MS_PER_CALL} ms per call; an api "
        "instance has 1 vCPU):",
        "",
        report.table(["daily users", "api calls", "vCPUs busy (api instances)", "Firestore writes",
                      "Auth lookups", "Pub/Sub publishes", "trigger + push runs"], limits),
        "",
        f"Fan-out at {DEVICES} devices (straight-line between the two rows named, which differ only in how "
        "many sessions they touch) and the cost of an attack's request:",
        "",
        report.table(["call", "from the rows", "R", "W (counters)", "Auth", "publishes", "invocations", "FCM"],
                     fan_out),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="a benchmark run's JSON")
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="the markdown file to update")
    parser.add_argument("--no-docs", action="store_true", help="only print the tables")
    args = parser.parse_args(argv)
    block = render(json.loads(args.results.read_text(encoding="utf-8")))
    print(block)
    if not args.no_docs:
        report.update_docs(args.docs, block, "# Capacity\n", begin=BEGIN, end=END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
