"""@mydevices/server reads a local stack's clock file as the product does (functions/mydevices/clock.py):
the same offset after each of one sequence of writes (a good offset, a write under way, mistyped
text, a number out of range, the file removed), and it refuses the file outside a `demo-` project, as
the Python settings do. tests/guard_cases.json moves a whole stack's clock under both guards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.local.stack import REPO_ROOT
from mydevices import clock, config
from mydevices.tokens import keys

NODE_PACKAGE = REPO_ROOT / "clients" / "node"
SEQUENCE: list[str | None] = ["+3600\n", "", "+90000 seconds", "1_000", " -3.5e2 ", "+1e20", "nan", "_1",
                              "tomorrow", "-60", None, "+7200"]  # None: the file removed

READ_SEQUENCE = """
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { clockFileOffset } from "./dist/index.js";
const { path, sequence } = JSON.parse(readFileSync(0, "utf8"));
const seen = [];
for (const text of sequence) {
  if (text === null) rmSync(path, { force: true });
  else { writeFileSync(path + ".new", text); renameSync(path + ".new", path); }
  seen.push(clockFileOffset(path));
}
console.log(JSON.stringify(seen));
"""

MAKE_GUARD = """
import { readFileSync } from "node:fs";
import { SessionGuard } from "./dist/index.js";
new SessionGuard({ keyring: JSON.parse(readFileSync(0, "utf8")) });
console.log("made");
"""


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    if not (NODE_PACKAGE / "node_modules" / "firebase-admin").exists():
        pytest.fail("clients/node/node_modules is missing: infra/local/bootstrap --js-packages installs it (npm ci)")
    subprocess.run(["npm", "run", "--silent", "build"], cwd=NODE_PACKAGE, check=True, timeout=120)


def node(script: str, stdin: Any, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([shutil.which("node") or "node", "--input-type=module", "-e", script], cwd=NODE_PACKAGE,
                          input=json.dumps(stdin), capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **(env or {})})


def python_offsets(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    monkeypatch.setenv("MYDEVICES_CLOCK_FILE", str(path))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-test")
    config.settings.cache_clear()
    seen = []
    try:
        for text in SEQUENCE:
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.with_name(path.name + ".new").write_text(text, encoding="ascii")
                os.replace(path.with_name(path.name + ".new"), path)
            seen.append(clock._offset_from_file())
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()
    return seen


def test_the_node_guard_reads_the_clock_file_as_the_product_does(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    expected = python_offsets(tmp_path / "python-clock", monkeypatch)
    done = node(READ_SEQUENCE, {"path": str(tmp_path / "node-clock"), "sequence": SEQUENCE})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
    assert expected[:3] == [3600, 3600, 3600] and expected[3:5] == [1000, -350]  # the table says something


def test_the_node_guard_refuses_a_clock_file_outside_a_demo_project(tmp_path: Path) -> None:
    ring = keys.generate_keyring_doc()
    moved = {"MYDEVICES_CLOCK_FILE": str(tmp_path / "clock")}
    refused = node(MAKE_GUARD, ring, {**moved, "GOOGLE_CLOUD_PROJECT": "acme-prod"})
    assert refused.returncode != 0 and "a demo- project only" in refused.stderr, refused.stderr
    assert node(MAKE_GUARD, ring, {**moved, "GOOGLE_CLOUD_PROJECT": "demo-test"}).stdout.strip() == "made"
    assert node(MAKE_GUARD, ring, {"MYDEVICES_CLOCK_FILE": "", "GOOGLE_CLOUD_PROJECT": "acme-prod"}).stdout.strip() \
        == "made"
