"""One local stack: the emulators, the FCM stand-in, the functions and the web page, started,
plumbed and stopped together.

``Stack`` owns its components and hands them out: faults and clients go through them
(``stack.firestore.pause()``, ``stack.pubsub.stop(kill=True)``, ``stack.auth.sign_up()``,
``stack.fcm.messages()``); what only the stack knows (ports by role, the environment of a function,
the push endpoint) stays here.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from infra.local.stack import pidfile
from infra.local.stack.clock import StackClock
from infra.local.stack.emulators import (
    APP_EVENTS_TOPIC,
    FIRESTORE_TRIGGER_ID,
    SESSION_DOCUMENT_PATTERN,
    SESSION_EVENTS_TOPIC,
    AuthEmulator,
    FirebaseEmulatorSuite,
    FirestoreEmulator,
    PubSubEmulator,
)
from infra.local.stack.layout import (
    DEV_KEYS_FILE,
    FIRESTORE_RULES,
    FUNCTIONS_DIR,
    HOST,
    MAIN_PY,
    PROJECT_ID,
    VENV_PYTHON,
)
from infra.local.stack.ports import Ports, bindable, free_port, port_in_use
from infra.local.stack.processes import ManagedProcess, StackError, wait_all_ready
from infra.local.stack.servers import FcmStandin, FunctionServer, HostingServer, SmtpStandin
from infra.local.tls import ensure_certificate

HTTPS_HOSTING_PORT = 5443  # the page over HTTPS, for DBSC (Stack.start_https_hosting)

# target -> (signature type, role); the role names the port the stack reserves for it.
ENTRY_POINTS: dict[str, tuple[str, str]] = {
    "api": ("http", "api"),
    "on_session_written": ("cloudevent", "trigger"),
    "send_session_push": ("cloudevent", "push"),
    "callables": ("http", "callables"),  # the six Firebase callables, by name (sessions_list, ...)
    "support_api": ("http", "support"),  # the support API (flows/support.py)
}

# Roles nothing else delivers to, so their functions may move when the reserved port is taken: a
# port reserved but not yet bound can meanwhile be the local end of some outgoing connection.
# The trigger and push functions may not: the emulators deliver to their reserved ports.
MOVABLE_ROLES = frozenset({"api", "callables", "support"})


def ensure_dev_keys(path: Path = DEV_KEYS_FILE) -> Path:
    """`python -m mydevices.tokens.keys generate PATH` (writes only when absent)."""
    if not path.exists():
        subprocess.run(  # noqa: S603
            [str(VENV_PYTHON), "-m", "mydevices.tokens.keys", "generate", str(path)], cwd=FUNCTIONS_DIR, check=True
        )
    return path


class Stack:
    """All the local pieces of one stack (the package docstring lists what it offers)."""

    def __init__(
        self,
        ports: Ports,
        log_dir: Path,
        *,
        project: str = PROJECT_ID,
        rules: Path | None = FIRESTORE_RULES,
        keys_file: Path | None = None,
        geoip_db: Path | None = None,
        env_extra: Mapping[str, str] | None = None,
        firebase_config: Path | None = None,
        fcm_quiet: bool = True,
        pidfile: Path | None = None,
        firebase_emulators: bool = False,
        emulator_data: Path | None = None,
        clock_offset: int = 0,
    ) -> None:
        if not project.startswith("demo-"):
            raise ValueError("the local project id must start with demo- (nothing then reaches Google)")
        self.ports = ports
        self.log_dir = Path(log_dir)
        self.project = project
        self.keys_file = keys_file
        self.geoip_db = geoip_db
        self.env_extra = dict(env_extra or {})
        self.pidfile = pidfile
        self.clock = StackClock(self.log_dir / "clock", clock_offset)
        self.firestore = FirestoreEmulator(
            ports.firestore, self.log_dir, rules=rules, functions_emulator=f"{HOST}:{ports.trigger}", project=project
        )
        self.pubsub = PubSubEmulator(ports.pubsub, self.log_dir)
        self.auth = AuthEmulator(
            ports.auth,
            self.log_dir,
            project=project,
            config=firebase_config,
            hub_port=ports.hub,
            logging_port=ports.logging,
            env=self.clock.faketime_env(),
        )
        # --firebase-emulators: one `firebase emulators:start` runs all three; the three objects above
        # stay as its clients (trigger registration, topics, sign-up) and cannot be stopped alone.
        self.suite: FirebaseEmulatorSuite | None = None
        if emulator_data is not None and not firebase_emulators:
            raise ValueError("emulator_data needs firebase_emulators=True (firebase-tools' --import/--export-on-exit)")
        if firebase_emulators:
            self.suite = FirebaseEmulatorSuite(
                ports,
                self.log_dir,
                functions_emulator=self.firestore.functions_emulator or "",
                project=project,
                config=firebase_config,
                rules=rules,
                data_dir=emulator_data,
            )
            for client in (self.firestore, self.pubsub, self.auth):
                client.owner = self.suite
        self.fcm = FcmStandin(ports.fcm, self.log_dir, quiet=fcm_quiet)
        self.functions: list[FunctionServer] = []
        self._extra_processes: list[ManagedProcess] = []
        self.hosting: HostingServer | None = None
        self.https_hosting: HostingServer | None = None
        for proc in self.emulators:
            proc.on_change = self._record
        self.fcm.on_change = self._record
        self.smtp = SmtpStandin(ports.smtp, self.log_dir, quiet=fcm_quiet)
        self.smtp.on_change = self._record

    # --- what runs

    @property
    def emulators(self) -> list[ManagedProcess]:
        """The emulator processes this stack starts and stops."""
        if self.suite is not None:
            return [self.suite]
        return [self.firestore, self.pubsub, self.auth]

    def processes(self) -> list[ManagedProcess]:
        return [*self.emulators, self.fcm, self.smtp, *self.functions, *self._extra_processes]

    def mint_app_check_token(self, **options: Any) -> str:
        """An App Check token the functions accept (signed with the stand-in's key): see
        infra/local/app_check_keys.mint for `options` (ttl, app_id, claims that make it wrong)."""
        from infra.local import app_check_keys  # PyJWT and cryptography: the venv's

        return app_check_keys.mint(self.log_dir, self.project, **options)

    @property
    def env(self) -> dict[str, str]:
        """The environment every function gets (plus `env_extra` and per-function extras)."""
        env = {
            "FIRESTORE_EMULATOR_HOST": self.firestore.host,
            "PUBSUB_EMULATOR_HOST": self.pubsub.host,
            "FIREBASE_AUTH_EMULATOR_HOST": self.auth.host,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "GCLOUD_PROJECT": self.project,
            "MYDEVICES_FCM_URL": self.fcm.send_url,
            "MYDEVICES_APP_CHECK_JWKS_URL": self.fcm.jwks_url,
            "MYDEVICES_SESSION_EVENTS_TOPIC": SESSION_EVENTS_TOPIC,
            "MYDEVICES_EVENTS_TOPIC": APP_EVENTS_TOPIC,
            "MYDEVICES_CLOCK_FILE": str(self.clock.path),
            "MYDEVICES_SMTP_URL": self.smtp.url,
            "MYDEVICES_EMAIL_FROM": "My Devices <no-reply@mydevices.localhost>",
            "MYDEVICES_EMAIL_PAGE_URL": f"http://{HOST}:{self.ports.api}/v1/alerts/email",
        }
        if self.keys_file is not None:
            env["MYDEVICES_KEYS_FILE"] = str(self.keys_file)
        if self.geoip_db is not None:
            env["MYDEVICES_GEOIP_DB"] = str(self.geoip_db)
        env.update(self.env_extra)
        return env

    # --- lifecycle

    def start(self, *, plumb: bool = True, functions: Iterable[str] = ()) -> Stack:
        """Start the emulators and the FCM stand-in side by side, plumb events, start `functions`.

        The Auth emulator is the slow one (firebase-tools compiles its OpenAPI validators: 10-25 s
        of CPU), so plumbing and the functions happen while it is still starting.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        from infra.local import app_check_keys  # PyJWT and cryptography: the venv's

        self.fcm.app_check_jwks = app_check_keys.ensure_keys(self.log_dir)
        # The slow one starts first; plumbing needs Firestore and Pub/Sub, which the suite runs.
        slow: list[ManagedProcess] = [self.suite] if self.suite is not None else [self.auth]
        quick = [self.fcm, self.smtp] if self.suite is not None else [self.firestore, self.pubsub, self.fcm, self.smtp]
        try:
            for proc in [*slow, *quick]:  # Popen from this thread (pdeathsig follows the starting thread)
                proc.start()
            wait_all_ready(quick)
            if plumb and self.suite is None:
                self.plumb()
            self.start_functions(functions)
            wait_all_ready(slow)
            if plumb and self.suite is not None:
                self.plumb()
        except BaseException:
            self.stop()
            raise
        return self

    def plumb(self) -> None:
        """Register the Firestore trigger and create the session-events topic / push subscription."""
        self.firestore.register_trigger(FIRESTORE_TRIGGER_ID, SESSION_DOCUMENT_PATTERN)
        self.pubsub.ensure_session_events(self.project, self.push_endpoint)

    @property
    def push_endpoint(self) -> str:
        """Where the push subscription delivers: the push function's port, with the topic in the path.

        functions-framework serves every path, and it reads the topic from a path shaped like
        `projects/P/topics/T` into the CloudEvent's `source`, as in production
        (`//pubsub.googleapis.com/projects/P/topics/T`); with a bare `/` the source has no topic.
        """
        return f"http://{HOST}:{self.ports.push}/projects/{self.project}/topics/{SESSION_EVENTS_TOPIC}"

    def start_function(
        self,
        target: str,
        signature_type: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        port: int | None = None,
        *,
        source: Path | str | None = None,
        wait: bool = True,
    ) -> FunctionServer:
        """Serve `target` from functions/main.py (or `source`) with `env` + `extra_env`; returns its handle.

        A known entry point defaults to its signature type and to the port reserved for its role
        (`ports.api`, `ports.trigger` -- where the Firestore emulator sends events --, `ports.push` --
        where the push subscription delivers --) while that port is free; otherwise a free port.
        The handle has `.url` and `.stop()`, and stops on leaving a `with` block; `Stack.stop()` stops
        whatever is still running.
        """
        known = ENTRY_POINTS.get(target) if source is None else None
        if signature_type is None:
            if known is None:
                raise ValueError(f"say the signature type of {target!r} (http or cloudevent)")
            signature_type = known[0]
        if port is None:
            role = known[1] if known is not None else None
            reserved = self.ports.for_role(role) if role is not None else None
            taken = {server.port for server in self.functions if server.running}
            # `run`'s stack (the one with a pidfile) keeps the ports its walkthrough printed.
            movable = role in MOVABLE_ROLES and self.pidfile is None
            if reserved in taken or (movable and reserved is not None and not bindable(reserved)):
                reserved = None
            port = reserved if reserved is not None else free_port()
        server = FunctionServer(
            target,
            signature_type,
            port,
            self.log_dir,
            {**self.env, **(extra_env or {})},
            source=Path(source) if source is not None else MAIN_PY,
        )
        server.on_change = self._record
        self.functions = [fn for fn in self.functions if fn.running]
        self.functions.append(server)
        server.start()
        if wait:
            try:
                server.wait_ready()
            except BaseException:
                server.stop(kill=True)
                raise
        return server

    def start_functions(self, targets: Iterable[str]) -> list[FunctionServer]:
        """Start several known entry points side by side (each ~1-2 s to import)."""
        servers = [self.start_function(target, wait=False) for target in targets]
        try:
            wait_all_ready(servers)
        except BaseException:
            for server in servers:
                server.stop(kill=True)
            raise
        return servers

    def function(self, target: str) -> FunctionServer | None:
        """The running server of `target` (the latest started), if any."""
        running = [server for server in self.functions if server.target == target and server.running]
        return running[-1] if running else None

    def start_https_hosting(self, port: int = HTTPS_HOSTING_PORT) -> HostingServer:
        """The same page over HTTPS (the certificate of infra/local/tls.py, in .local/tls/), for
        Chromium with Device Bound Session Credentials, which run over HTTPS only."""
        if self.hosting is None:
            raise StackError("start_https_hosting: start_hosting first")
        taken = {proc.port for proc in self._extra_processes if proc.running}
        port = port if port not in taken and not port_in_use(port) else free_port()
        server = HostingServer(port, self.log_dir, api_url=self.hosting.api_url, auth_url=self.auth.url,
                               project=self.project, tls=ensure_certificate())
        server.on_change = self._record
        self._extra_processes.append(server)
        self.https_hosting = server
        server.start().wait_ready()
        return server

    def start_hosting(self, api_url: str | None = None, port: int | None = None) -> HostingServer:
        """Serve the web page on `ports.hosting` (or `port`, or a free one), rewrites going to `api_url`.

        `api_url` defaults to the running `api` function. Like Firebase Hosting in production, this
        gives the page and the API one origin, which the SameSite=Strict `__Host-` cookies need.
        """
        if api_url is None:
            api = self.function("api")
            if api is None:
                raise StackError("start_hosting: the api function is not running (start it, or pass api_url)")
            api_url = api.url
        self._extra_processes = [proc for proc in self._extra_processes if proc.running]
        if port is None:
            taken = {proc.port for proc in self._extra_processes}
            port = self.ports.hosting if self.ports.hosting not in taken else free_port()
        server = HostingServer(port, self.log_dir, api_url=api_url, auth_url=self.auth.url, project=self.project)
        server.on_change = self._record
        self._extra_processes.append(server)
        self.hosting = server
        try:
            server.start().wait_ready()
        except BaseException:
            server.stop(kill=True)
            raise
        return server

    def stop(self) -> list[str]:
        """Stop functions, then the stand-in, then the emulators, in parallel within each tier."""
        stopped: list[str] = []
        tiers: list[list[ManagedProcess]] = [
            self.functions + self._extra_processes,
            [self.fcm, self.smtp],
            self.emulators,
        ]
        for tier in tiers:
            live = [proc for proc in tier if proc.pid is not None]
            if not live:
                continue
            with concurrent.futures.ThreadPoolExecutor(len(live)) as pool:
                for proc, was_running in zip(live, pool.map(lambda p: p.stop(), live), strict=True):
                    if was_running:
                        stopped.append(proc.name)
        return stopped

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self) -> None:
        """Keep `run`'s pidfile naming what runs (for `cleanup` after a hard kill)."""
        if self.pidfile is not None:
            pidfile.record(self.pidfile, self.processes())
