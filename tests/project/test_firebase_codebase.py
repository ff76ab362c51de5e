"""`firebase deploy --only functions,firestore,hosting`: what it would ship, as firebase-tools reads it,
and the codebase served by firebase-tools' own functions emulator, with the walkthrough run against it.

Offline here: firebase-tools' own discovery (functions.yaml, detectFromYaml), backend resolution and
packaging (the archive deploy uploads), and its emulators. Not offline: everything after that in
`firebase deploy` talks to Google with the caller's credentials (enabling APIs, the Firestore
database's location for the trigger's region, Secret Manager, the upload, Cloud Build, Cloud Run,
Eventarc); `test_deploy_itself_stops_at_google_sign_in` shows it stops there, and nowhere before.
About 45 s, most of it the emulator suite starting.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.stack.cli import walkthrough
from infra.local.stack.emulators import FIRESTORE_WRITTEN, SESSION_DOCUMENT_PATTERN, SESSION_EVENTS_TOPIC
from infra.local.stack.layout import FIREBASE_BIN, FIREBASE_JSON, FUNCTIONS_DIR, JDK_JAVA, MAIN_PY, PROJECT_ID
from infra.local.stack.ports import Ports
from infra.local.stack.servers import FcmStandin
from mydevices.tokens import keys
from support import ROOT
from support.firebase_codebase import FIREBASE_FUNCTIONS_DISCOVERY, FirebaseCodebaseSuite
from support.project import tracked

FIREBASE_TOOLS_LIB = ROOT / "infra" / "local" / "node_modules" / "firebase-tools" / "lib"
REGION = "us-central1"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
# main.py's entry points that only the local stack serves (infra/terraform/functions.tf says the same).
LOCAL_ONLY = {"callables"}
# ... and those only Terraform deploys: a manifest cannot declare the push subscription per webhook
# endpoint that deliver_webhook serves (infra/terraform/events.tf).
TERRAFORM_ONLY = {"deliver_webhook"}
# ... and the deleted-users sweep, whose Cloud Scheduler job and private invoker Terraform declares
# (infra/terraform/deleted_users.tf; docs/data-rights.md gives the gcloud commands for the CLI's users).
TERRAFORM_ONLY |= {"sweep_deleted_users"}


def entry_points() -> dict[str, str]:
    """main.py: function name -> its functions_framework decorator (`http` or `cloud_event`)."""
    tree = ast.parse(MAIN_PY.read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Attribute) and ast.unparse(decorator.value) == "functions_framework":
                    found[node.name] = decorator.attr
    return found


@pytest.fixture(scope="module")
def discovered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("firebase-discovery")
    done = subprocess.run(["node", str(FIREBASE_FUNCTIONS_DISCOVERY), str(FIREBASE_TOOLS_LIB), str(ROOT),
                           "mydevices-deploy-check", str(out)], check=False, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    (codebase,) = json.loads(done.stdout)["codebases"]
    return dict(codebase)


def endpoints(discovered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {endpoint["id"]: endpoint for endpoint in discovered["endpoints"]}


def test_firebase_json_declares_one_python_codebase_beside_firestore_and_hosting(discovered: dict[str, Any]) -> None:
    config = json.loads(FIREBASE_JSON.read_text(encoding="utf-8"))
    assert {"functions", "firestore", "hosting"} <= config.keys()  # --only functions,firestore,hosting
    assert discovered["codebase"]["source"] == "functions"
    assert discovered["language"] == "python" and discovered["runtime"] == "python311"
    assert (FUNCTIONS_DIR / "requirements.txt").is_file()  # what makes firebase-tools take it for Python


def test_every_entry_point_is_deployed_with_its_trigger(discovered: dict[str, Any]) -> None:
    found = endpoints(discovered)
    kinds = entry_points()
    assert {endpoint["entryPoint"] for endpoint in found.values()} == kinds.keys() - LOCAL_ONLY - TERRAFORM_ONLY
    for endpoint in found.values():
        assert endpoint["region"] == REGION and endpoint["platform"] == "gcfv2", endpoint["id"]
        # an HTTP function gets an HTTPS trigger, a CloudEvent function an event trigger
        assert ("httpsTrigger" in endpoint) == (kinds[endpoint["entryPoint"]] == "http"), endpoint["id"]
        if "httpsTrigger" in endpoint:
            assert endpoint["httpsTrigger"]["invoker"] == ["public"]  # each call authenticates itself
            assert endpoint["ingressSettings"] == "ALLOW_ALL"
        else:
            assert endpoint["ingressSettings"] == "ALLOW_INTERNAL_ONLY"
            assert endpoint["eventTrigger"]["retry"] is True, f"{endpoint['id']}: a failure must be retried"
        assert [secret["key"] for secret in endpoint.get("secretEnvironmentVariables", [])] == (
            [] if endpoint["entryPoint"] in ("on_session_written", "publish_app_events")  # they sign nothing
            else ["MYDEVICES_KEYS_JSON"])
    trigger = found["on-session-written"]["eventTrigger"]
    assert trigger["eventType"] == FIRESTORE_WRITTEN
    assert trigger["eventFilters"] == {"database": "(default)", "namespace": "(default)"}
    assert trigger["eventFilterPathPatterns"] == {"document": SESSION_DOCUMENT_PATTERN}
    push = found["send-session-push"]["eventTrigger"]
    assert push["eventType"] == PUBSUB_PUBLISHED
    assert push["eventFilters"] == {"topic": f"projects/mydevices-deploy-check/topics/{SESSION_EVENTS_TOPIC}"}
    # the web page reaches the api through Hosting: rewrites name a function of this codebase
    for rewrite in json.loads(FIREBASE_JSON.read_text(encoding="utf-8"))["hosting"]["rewrites"]:
        target = rewrite["function"]
        assert target["functionId"] in found and target["region"] == REGION


def test_deploy_uploads_the_functions_source_and_nothing_else(discovered: dict[str, Any]) -> None:
    with zipfile.ZipFile(discovered["upload"]) as archive:
        names = set(archive.namelist())
    expected = {path.relative_to(FUNCTIONS_DIR).as_posix() for path in tracked("functions/*")}
    assert names == expected  # not its venv, caches, local secrets or .env.local


def test_deploy_itself_stops_at_google_sign_in(tmp_path: Path) -> None:
    """The rest of `firebase deploy` needs a Google account: without credentials (a fresh HOME, none
    in the environment) its dry run stops at authentication, before any other step fails."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "CI": "1", "NO_UPDATE_NOTIFIER": "1"}
    done = subprocess.run([str(FIREBASE_BIN), "deploy", "--only", "functions,firestore,hosting", "--project",
                           "mydevices-deploy-check", "--non-interactive", "--dry-run"], cwd=ROOT, env=env,
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Failed to authenticate, have you run firebase login?" in done.stdout + done.stderr


# --- firebase-tools' functions emulator ----------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FirebaseCodebaseSuite, FcmStandin, Path]]:
    if not JDK_JAVA.exists():
        pytest.fail("firebase-tools' emulators need Java 21+: run infra/local/bootstrap --firebase-emulators")
    log_dir = tmp_path_factory.mktemp("firebase-codebase")
    ports = Ports.free()
    clock = log_dir / "clock"
    with FcmStandin(ports.fcm, log_dir, quiet=True).start() as fcm:
        fcm.wait_ready()
        suite = FirebaseCodebaseSuite(ports, log_dir, keyring_json=json.dumps(keys.generate_keyring_doc()),
                                      functions_env={"MYDEVICES_FCM_URL": fcm.send_url,
                                                     "MYDEVICES_CLOCK_FILE": str(clock)})
        with suite.start():
            suite.wait_ready(180)
            yield suite, fcm, clock


def test_the_emulator_discovers_every_function_with_its_trigger(
        served: tuple[FirebaseCodebaseSuite, FcmStandin, Path], discovered: dict[str, Any]) -> None:
    suite, _, _ = served
    log = suite.log_path.read_text(encoding="utf-8", errors="replace")
    started = dict(re.findall(rf"functions\[{REGION}-([\w-]+)\]: (\w+) function initialized", log))
    expected = {endpoint["id"]: ("http" if "httpsTrigger" in endpoint else
                                 "firestore" if endpoint["eventTrigger"]["eventType"] == FIRESTORE_WRITTEN else
                                 "pubsub")
                for endpoint in discovered["endpoints"]}
    assert started == expected, log[-3000:]


def test_the_walkthrough_runs_against_the_emulated_codebase(
        served: tuple[FirebaseCodebaseSuite, FcmStandin, Path], tmp_path: Path) -> None:
    """The README's walkthrough, on the product's defaults, with the api and the callables where the
    functions emulator serves them: the trigger, Pub/Sub and the push function deliver both pushes."""
    suite, fcm, clock = served
    base = suite.functions_url
    script = walkthrough(suite.ports, api=f"{base}/{PROJECT_ID}/{REGION}/api", callables=base, clock=clock)
    script = script[script.index("# --- Walkthrough"):]
    # The emulator starts each function's process on its first event, seconds after the walkthrough
    # has moved on: wait for the Pixel's "Was that you?" alert before a day passes (step 6), or the
    # alert, good for 24 h, would have expired before it was sent (and rightly not be sent).
    wait = (f"for _ in $(seq 120); do curl -s {fcm.url}/_standin/messages | grep -q new_login_alert && break; "
            "sleep 0.5; done\n")
    script = script.replace("# 5. ", wait + "# 5. ", 1)
    path = tmp_path / "walkthrough.sh"
    path.write_text("set -u\n" + script, encoding="utf-8")
    done = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=180, cwd=ROOT, check=False)
    out = done.stdout
    assert re.findall(r"<- HTTP (\d+)", out) == ["403", "401", "401"], out + done.stderr
    assert '"session_too_new"' in out and '"session_revoked"' in out and '"reauthentication_required"' in out
    assert '"revoked": true' in out.replace('"revoked":true', '"revoked": true'), out
    callable_answer = json.loads(out[out.rindex('{\n    "result"'):])  # step 11: sessions_list, as the SDK calls it
    assert [session["isCurrentDevice"] for session in callable_answer["result"]["sessions"]] == [True], out
    deadline = time.monotonic() + 30
    kinds: set[str] = set()
    while time.monotonic() < deadline and kinds != {"force_logout", "new_login_alert"}:
        kinds = {str(sent["message"]["data"].get("action")) for sent in fcm.messages()}
        time.sleep(0.5)
    assert kinds == {"force_logout", "new_login_alert"}, fcm.messages()
    answer = requests.get(f"{base}/{PROJECT_ID}/{REGION}/api/.well-known/jwks.json", timeout=30)
    assert answer.ok and answer.json()["keys"]
