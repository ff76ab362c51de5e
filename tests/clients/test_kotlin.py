"""The Kotlin SDK core (clients/kotlin): compiled here with the Kotlin distribution npm's
`kotlin-compiler` package ships (installed by infra/local/bootstrap --kotlin), its tests run over the
shared client contract, and an end-to-end program run against the real local stack.

The compiled jar is cached in .local/kotlin-build/ under a hash of the sources and the compiler's
version, so a second run does not compile again; the compile time is printed (and kept beside the jar).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.stack import REPO_ROOT, Stack
from support.client_contract import CONTRACT
from support.push import StackFcm
from support.serving import serving

SDK = REPO_ROOT / "clients" / "kotlin"
DIST = SDK / "node_modules" / "kotlin-compiler"
LIB = DIST / "lib"
RUNTIME = [LIB / "kotlin-stdlib.jar", LIB / "kotlinx-coroutines-core-jvm.jar", LIB / "kotlin-test.jar"]
CACHE = REPO_ROOT / ".local" / "kotlin-build"
SOURCE_SETS = ("main", "test", "e2e")
# The Android glue, but its Compose screen, compiled against hand-written stand-ins of the Android APIs it
# calls (tests/clients/android_stubs/README.md): its calls into the core type-check; Android itself is not here.
GLUE = SDK / "android" / "src" / "main" / "kotlin"
STUBS = REPO_ROOT / "tests" / "clients" / "android_stubs"
ACCESS_TTL = 8  # seconds: the program waits for tokens to run out, twice; the 50 calls must fit in one token's life
JAVA = shutil.which("java") or "java"


def _sources() -> list[Path]:
    core = [p for name in SOURCE_SETS for p in (SDK / "src" / name).rglob("*.kt")]
    glue = [p for p in GLUE.rglob("*.kt") if p.name != "ActiveSessionsScreen.kt"]
    return sorted(core + glue + list(STUBS.glob("*.kt")))


@pytest.fixture(scope="module")
def kotlin_jar() -> Path:
    kotlinc = DIST / "bin" / "kotlinc"
    if not kotlinc.exists():
        pytest.fail(f"{kotlinc} is missing: infra/local/bootstrap --kotlin installs it (npm ci in clients/kotlin)")
    digest = hashlib.sha256((DIST / "build.txt").read_bytes())
    for source in _sources():
        digest.update(str(source.relative_to(REPO_ROOT)).encode() + b"\0" + source.read_bytes())
    jar = CACHE / f"mydevices-{digest.hexdigest()[:16]}.jar"
    timing = jar.with_suffix(".json")
    if not jar.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = jar.with_suffix(".partial.jar")
        started = time.monotonic()
        run = subprocess.run(
            [str(kotlinc), "-nowarn", "-cp", os.pathsep.join(str(p) for p in RUNTIME[1:]),
             *(str(p) for p in _sources()), "-d", str(partial)],
            capture_output=True, text=True, timeout=600, check=False)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
        partial.rename(jar)
        timing.write_text(json.dumps({"compileSeconds": round(time.monotonic() - started, 1),
                                      "sources": len(_sources())}))
    print(f"\nkotlinc: {json.loads(timing.read_text())} ({jar.name})")
    return jar


def _java(jar: Path, main: str, *args: str, env: dict[str, str] | None = None,
          timeout: float = 180) -> subprocess.CompletedProcess[str]:
    classpath = os.pathsep.join(str(p) for p in [jar, *RUNTIME])
    return subprocess.run([JAVA, "-cp", classpath, main, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def test_the_android_glue_type_checks_against_the_core(kotlin_jar: Path) -> None:
    """The glue is in the jar: its calls into the core compiled (against the stand-ins, not Android)."""
    import zipfile

    with zipfile.ZipFile(kotlin_jar) as jar:
        names = set(jar.namelist())
    for glue in ("AlertNotifier", "AlertAnswerReceiver", "KeystoreDeviceKey", "KeystoreTokenStore", "MyDevices",
                 "MyDevicesMessagingService"):
        assert f"dev/mydevices/android/{glue}.class" in names


def test_the_core_passes_the_contract_and_its_unit_checks(kotlin_jar: Path) -> None:
    run = _java(kotlin_jar, "dev.mydevices.ContractTestKt", str(CONTRACT))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    closing = run.stdout.strip().splitlines()[-1]
    passed, failed, skipped = (int(closing.split(", ")[i].split()[0]) for i in range(3))
    print(closing)
    api, push, screen = (len(json.loads((CONTRACT / name).read_text())["vectors"])
                         for name in ("api.json", "push.json", "sessions_screen.json"))
    assert (failed, skipped) == (0, 0), closing
    assert passed >= api + push + screen + 5, closing  # every vector, and the unit checks


@pytest.fixture(scope="module")
def short_ttl_api(stack: Stack) -> Iterator[str]:
    with serving(stack, "api", {"MYDEVICES_ACCESS_TTL_SECONDS": str(ACCESS_TTL)}, own_port=True) as server:
        yield server.url


def test_end_to_end_against_the_local_stack(kotlin_jar: Path, stack: Stack, short_ttl_api: str, fcm: StackFcm) -> None:
    env = {**os.environ, "MYDEVICES_API_URL": short_ttl_api, "MYDEVICES_AUTH_URL": f"http://{stack.auth.host}",
           "MYDEVICES_FCM_URL": stack.fcm.url, "MYDEVICES_CLOCK_OFFSET": str(stack.clock.offset)}
    run = _java(kotlin_jar, "dev.mydevices.EndToEndKt", env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    seen: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps(seen))
    assert seen["bound"] == [True, True, True]
    assert seen["listed"] == ["Kotlin phone", "Galaxy S24", "Pixel 8"]
    assert seen["firstRefresh"] == {"refreshes": 1, "withProof": 1}
    assert seen["concurrent"]["calls"] == seen["concurrent"]["ok"] == 50
    assert seen["concurrent"]["refreshes"] == 1, seen["concurrent"]
    assert seen["alert"]["text"] == "Signed in on \u201cGalaxy S24\u201d from an unknown location. Was that you?"
    assert seen["alert"]["locArgs"] == ["Galaxy S24"]
    assert 0 < seen["alert"]["timeoutMillis"] <= 86_400_000
    assert seen["answer"] == {"closed": True, "advice": "change_password"}
    assert seen["intruderPush"] == "rejected_by_user"
    assert seen["intruderSignedOut"] == ["force_logout"]
    assert seen["intruderAfter"] == "not_signed_in"
    assert seen["pixelCall"] == "SessionRevoked session_revoked"
    assert seen["pixelSignedOut"] == ["session_revoked"]
    assert seen["pixelKeptDeviceId"] is True
    assert seen["remaining"] == ["Kotlin phone"]
    assert seen["phoneSignedOut"] == ["logout"]


def test_the_contract_runner_fails_on_a_wrong_expectation(kotlin_jar: Path, tmp_path: Path) -> None:
    """The runner bites: the same jar over a copy of the vectors with three expectations changed."""
    shutil.copytree(CONTRACT, tmp_path / "contract")
    api = json.loads((CONTRACT / "api.json").read_text())
    api["vectors"][0]["expect"]["stored"]["deviceId"] = "another device"
    (tmp_path / "contract" / "api.json").write_text(json.dumps(api))
    push = json.loads((CONTRACT / "push.json").read_text())
    push["vectors"][0]["expect"]["notification"]["id"] += 1
    push["vectors"][1]["expect"]["handled"]["event"] = None
    (tmp_path / "contract" / "push.json").write_text(json.dumps(push))
    run = _java(kotlin_jar, "dev.mydevices.ContractTestKt", str(tmp_path / "contract"))
    assert run.returncode == 1
    assert run.stdout.strip().splitlines()[-1].split(", ")[1] == "3 failed", run.stdout[-3000:]
