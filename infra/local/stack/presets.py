"""What the walkthrough, the tests and the benchmark share: example devices and environment presets."""

from __future__ import annotations

LONDON_EXAMPLE_IP = "81.2.69.142"  # MaxMind's documented test address; London in DB-IP City Lite too

# The abuse limits (mydevices/config.py), turned off: the test suite and the benchmark log in from
# one address far more often than people do. tests/api/test_abuse_limits.py runs its own api with limits.
RATE_LIMITS_OFF = dict.fromkeys(
    ("MYDEVICES_LOGIN_RATE_PER_IP", "MYDEVICES_LOGIN_RATE_PER_USER_ADDRESS", "MYDEVICES_LOGIN_RATE_PER_USER",
     "MYDEVICES_REFRESH_RATE_PER_IP", "MYDEVICES_REFRESH_RATE_PER_SESSION"),
    "off",
)
# The fresh-session window (a session younger than 24 h cannot close others), turned off where
# sessions are opened and closed within seconds: the suite, the benchmark and the walkthrough.
# tests/api/test_takeover.py runs its own api with the window on.
FRESH_SESSION_WINDOW_OFF = {"MYDEVICES_FRESH_SESSION_HOURS": "0"}

# The example devices of the walkthrough, the tests and the benchmark.
IPHONE = {"name": "iPhone 15 Pro", "model": "iPhone16,1", "platform": "ios", "osVersion": "17.4", "appVersion": "2.3.0"}
PIXEL = {"name": "Pixel 8", "model": "shiba", "platform": "android", "osVersion": "14", "appVersion": "2.3.0"}
IPAD = {"name": "iPad Air", "model": "iPad13,16", "platform": "ios", "osVersion": "17.4", "appVersion": "2.3.0"}
