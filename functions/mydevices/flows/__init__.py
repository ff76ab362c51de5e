"""The flows, one per module, each readable top to bottom: login, validation, refresh, revocation,
the answer to an alert, and the reads a signed-in device makes. They know nothing of HTTP; the
entry points in main.py parse, call one of them, and render (docs/design.md)."""
