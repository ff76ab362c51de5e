"""The local stack: real emulators, the functions under functions-framework, and the FCM stand-in.

Two users:

* ``infra/local/run`` runs ``python -m infra.local.stack run`` (cli.py): everything on the fixed
  ports of ``firebase.json`` (+ ``FUNCTION_PORTS``/``FCM_PORT``), a walkthrough (walkthrough.txt),
  Ctrl-C stops it all; a pidfile lets ``cleanup`` stop what a hard-killed run left (pidfile.py).
* ``tests/conftest.py`` and the benchmark build a :class:`Stack` on free ports (``Ports.free()``),
  so a test run never clashes with a running dev stack.

The modules, one idea each: ``layout`` (paths, project id), ``ports``, ``processes`` (a child in
its own process group: start, readiness, stop; a started one is a context manager that stops it),
``emulators`` (Firestore, Pub/Sub, Auth, or firebase-tools' whole suite), ``servers`` (functions,
the FCM stand-in and the one client of its control API, the web page), ``stack`` (:class:`Stack`),
``presets`` (example devices and environment presets), ``clock`` (the stack's moved time), ``pidfile``, ``cli``.

``Stack(ports, log_dir, project=PROJECT_ID, keys_file=None, geoip_db=None, env_extra=None,
        firebase_config=None, pidfile=None, firebase_emulators=False, emulator_data=None, clock_offset=0)``
  ``start(plumb=True, functions=())`` -- emulators + FCM stand-in in parallel, ``plumb()`` (trigger,
      topics, push subscription), then the given functions while Auth finishes starting.
  ``stop() -> list[str]`` stops everything (functions first) and names what was running. Context manager.
  Components, each the client of what it runs: ``firestore`` (``host``, ``reset()``, ``set_rules()``,
      ``stop(kill=True)`` / ``start().wait_ready()`` / ``restart(kill=True)``: same port, same rules,
      trigger re-registered, data gone; ``pause()`` / ``resume()``: SIGSTOP/SIGCONT, data kept),
      ``pubsub`` (a restart makes the topics and push subscription again), ``auth`` (``sign_up()``,
      ``sign_in()``), ``fcm`` (``url``, ``send_url``, ``messages()``, ``failures()``, ``fault()``,
      ``clear()``, ``jwks_fetches()``). With ``firebase_emulators=True``, ``suite`` runs the three
      emulators and they cannot be stopped or paused alone (StackError). ``clock`` (``clock.py``): the
      time every function and (with libfaketime) the Auth emulator read: ``advance(days=1)``, ``now()``.
  ``env`` -- the environment a function needs (emulator hosts, project, FCM URL, topic, keys...).
  ``start_function(target, signature_type=None, extra_env=None, port=None, *, source=None)
      -> FunctionServer`` (``.url``, ``.stop()``; ``with stack.start_function("api") as api:`` stops
      it on exit); ``start_functions(targets)``; ``function(target)``. Known targets get their
      signature type and their role's port while it is free.
  ``start_hosting(api_url=None, port=None) -> HostingServer``, ``start_https_hosting()``.
  ``push_endpoint`` -- where the push subscription delivers, with the topic in the path.
"""

from infra.local.stack.emulators import FIRESTORE_WRITTEN as FIRESTORE_WRITTEN
from infra.local.stack.emulators import SESSION_DOCUMENT_PATTERN as SESSION_DOCUMENT_PATTERN
from infra.local.stack.emulators import SESSION_EVENTS_DEAD_TOPIC as SESSION_EVENTS_DEAD_TOPIC
from infra.local.stack.emulators import SESSION_EVENTS_PUSH_SUBSCRIPTION as SESSION_EVENTS_PUSH_SUBSCRIPTION
from infra.local.stack.emulators import SESSION_EVENTS_TOPIC as SESSION_EVENTS_TOPIC
from infra.local.stack.emulators import AuthEmulator as AuthEmulator
from infra.local.stack.emulators import FirebaseEmulatorSuite as FirebaseEmulatorSuite
from infra.local.stack.emulators import FirestoreEmulator as FirestoreEmulator
from infra.local.stack.emulators import PubSubEmulator as PubSubEmulator
from infra.local.stack.layout import FUNCTIONS_DIR as FUNCTIONS_DIR
from infra.local.stack.layout import FUNCTIONS_FRAMEWORK as FUNCTIONS_FRAMEWORK
from infra.local.stack.layout import HOST as HOST
from infra.local.stack.layout import LOCAL_DIR as LOCAL_DIR
from infra.local.stack.layout import MAIN_PY as MAIN_PY
from infra.local.stack.layout import PROJECT_ID as PROJECT_ID
from infra.local.stack.layout import REPO_ROOT as REPO_ROOT
from infra.local.stack.ports import Ports as Ports
from infra.local.stack.ports import free_port as free_port
from infra.local.stack.ports import port_in_use as port_in_use
from infra.local.stack.presets import FRESH_SESSION_WINDOW_OFF as FRESH_SESSION_WINDOW_OFF
from infra.local.stack.presets import IPAD as IPAD
from infra.local.stack.presets import IPHONE as IPHONE
from infra.local.stack.presets import LONDON_EXAMPLE_IP as LONDON_EXAMPLE_IP
from infra.local.stack.presets import PIXEL as PIXEL
from infra.local.stack.presets import RATE_LIMITS_OFF as RATE_LIMITS_OFF
from infra.local.stack.processes import ManagedProcess as ManagedProcess
from infra.local.stack.processes import StackError as StackError
from infra.local.stack.processes import environ as environ
from infra.local.stack.processes import group_alive as group_alive
from infra.local.stack.processes import group_stats as group_stats
from infra.local.stack.processes import stop_group as stop_group
from infra.local.stack.servers import FcmStandin as FcmStandin
from infra.local.stack.servers import FunctionServer as FunctionServer
from infra.local.stack.servers import HostingServer as HostingServer
from infra.local.stack.stack import ENTRY_POINTS as ENTRY_POINTS
from infra.local.stack.stack import Stack as Stack
from infra.local.stack.stack import ensure_dev_keys as ensure_dev_keys
