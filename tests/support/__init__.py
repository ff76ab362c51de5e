"""What the test suites share, registered as a pytest plugin by tests/conftest.py.

pytest finds the fixtures (`plugin`, `push`); test modules import only helpers and constants.
`TESTS` names the data other tests use where it has always been (tests/js, tests/guarded_app,
tests/webcrypto_client.mjs), wherever the suite that uses it sits.
"""

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
GUARDED_APP = TESTS / "guarded_app" / "main.py"
