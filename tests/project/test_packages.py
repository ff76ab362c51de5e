"""What the project publishes: the `mydevices` Python distribution (built with `python -m build`, offline,
then installed into a fresh virtual environment, where another functions codebase would use
`require_session`) and every npm package (what `npm pack` would publish). One version for all, with
its CHANGELOG entry.

About 10 s, offline: the fresh venv takes the dependencies from the test venv (functions/requirements.txt's
pins) rather than resolving them from the index again (about 60 s).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from support import ROOT
from support.project import PYPROJECT, SPDX, tracked

PROJECT = PYPROJECT["project"]
VERSION = PROJECT["version"]
REQUIREMENTS = ROOT / "functions" / "requirements.txt"


def pinned_requirements() -> dict[str, Requirement]:
    """functions/requirements.txt: name -> its `name==version` line."""
    lines = (line.split("#")[0].strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines())
    return {(req := Requirement(line)).name.lower(): req for line in lines if line}


def npm_packages() -> list[tuple[Path, dict[str, Any]]]:
    """Every package.json git tracks that is not `private`: what the project would publish."""
    manifests = ((path, json.loads(path.read_text(encoding="utf-8"))) for path in tracked("*package.json"))
    return [(path, doc) for path, doc in manifests if not doc.get("private")]


# --- one version ------------------------------------------------------------------------------


def test_one_version_for_the_project_with_its_changelog_entry() -> None:
    Version(VERSION)  # a valid version
    for path, doc in npm_packages():
        assert doc["version"] == VERSION, f"{path}: {doc['version']} is not the project's {VERSION}"
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    released = re.findall(r"^## \[(\d[^\]]*)\]", changelog, flags=re.M)
    assert released and released[0] == VERSION, "the newest CHANGELOG.md entry is not the project's version"
    assert f"[{VERSION}]: https://" in changelog


# --- the Python distribution ------------------------------------------------------------------


def test_the_distribution_allows_exactly_what_functions_deploys() -> None:
    """Same names as functions/requirements.txt, and each deployed pin inside the allowed range,
    which reaches no further than the pin's next major version."""
    allowed = {(req := Requirement(line)).name.lower(): req for line in PROJECT["dependencies"]}
    pins = pinned_requirements()
    assert allowed.keys() == pins.keys()
    for name, pin in pins.items():
        version = Version(next(iter(pin.specifier)).version)
        assert allowed[name].specifier.contains(version), f"{name}: the deployed {version} is outside {allowed[name]}"
        assert not allowed[name].specifier.contains(Version(f"{version.major + 1}")), f"{name}: no upper bound"
        assert allowed[name].extras == pin.extras, name


def succeeds(command: list[str], **options: Any) -> str:
    """Run it; its stdout, or a failure showing its last output."""
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, **options)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build`: the sdist, then the wheel built from it, with the pinned backend, offline."""
    out = tmp_path_factory.mktemp("dist")
    succeeds([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    return out


def test_build_gives_a_wheel_of_the_package_and_an_sdist_with_licence_and_changelog(dist: Path) -> None:
    (wheel,) = dist.glob(f"mydevices-{VERSION}-py3-none-any.whl")
    (sdist,) = dist.glob(f"mydevices-{VERSION}.tar.gz")
    package = ROOT / "functions" / "mydevices"
    sources = {path.relative_to(package.parent).as_posix() for path in package.rglob("*")
               if path.is_file() and "__pycache__" not in path.parts}
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"mydevices-{VERSION}.dist-info/METADATA").decode()
    assert {name for name in names if not name.startswith("mydevices-")} == sources  # mydevices/, nothing else
    assert "mydevices/py.typed" in names
    assert {f"mydevices-{VERSION}.dist-info/licenses/{name}" for name in ("LICENSE", "NOTICE")} <= names
    assert f"License-Expression: {SPDX}" in metadata
    with tarfile.open(sdist) as archive:
        members = {name.partition("/")[2] for name in archive.getnames()}
    assert {"LICENSE", "NOTICE", "CHANGELOG.md", "README.md", "pyproject.toml", "PKG-INFO"} <= members
    assert {f"functions/{name}" for name in sources} <= members
    assert not any(name.startswith(("tests/", "infra/", "functions/main.py")) for name in members)


def test_the_wheel_installs_into_a_fresh_venv_and_serves_require_session(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    succeeds([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    # The dependencies come from this test venv (the same pins, functions/requirements.txt), seen through
    # a .pth file: offline, and `pip check` below still holds the wheel's declared ranges to them.
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "deps-from-the-test-venv.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    (wheel,) = dist.glob("*.whl")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]  # this venv's pip, installing into that one
    succeeds([*pip, "install", "--disable-pip-version-check", "--no-input", "--no-index", "--no-deps", str(wheel)])
    succeeds([*pip, "check"])  # every Requires-Dist of mydevices met
    # Another functions codebase's main.py, run from elsewhere so that only the installed package can answer.
    app = tmp_path / "main.py"
    app.write_text("import functions_framework\n"
                   "from mydevices.http.require_session import require_session\n\n"
                   "@functions_framework.http\n@require_session\n"
                   "def orders(request, caller):\n    return {'uid': caller.uid}\n\n"
                   "import mydevices, importlib.metadata as m\n"
                   "print(mydevices.__file__, m.version('mydevices'), m.metadata('mydevices')['License-Expression'])\n",
                   encoding="utf-8")
    out = succeeds([str(python), str(app)], cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    where, version, spdx = out.split()
    assert where.startswith(str(venv)) and version == VERSION and spdx == SPDX


# --- npm ----------------------------------------------------------------------------------------


def packed(directory: Path) -> dict[str, Any]:
    """`npm pack --dry-run --json`: what `npm publish` would upload, computed without writing it."""
    (pack,) = json.loads(succeeds(["npm", "pack", "--dry-run", "--json", "--ignore-scripts"], cwd=directory))
    return dict(pack)


@pytest.mark.parametrize("manifest", [path for path, _ in npm_packages()],
                         ids=lambda path: path.parent.relative_to(ROOT).as_posix())
def test_npm_package_declares_and_packs_what_it_exports(manifest: Path) -> None:
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    directory = manifest.parent
    assert doc["license"] == SPDX
    assert doc["repository"]["url"].endswith(".git") and doc["repository"]["directory"] == directory.relative_to(
        ROOT).as_posix()
    assert doc["files"], "without `files`, npm packs the whole folder (tests included)"
    assert (directory / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    pack = packed(directory)
    files = {entry["path"] for entry in pack["files"]}
    assert {"package.json", "LICENSE", "README.md"} <= files
    assert not any(path.startswith(("test/", "node_modules/")) for path in files)

    def targets(value: Any) -> list[str]:  # every file an `exports` entry, `main` or `types` points at
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [path for item in value.values() for path in targets(item)]
        return []

    exports = targets(doc["exports"])
    assert any(path.endswith(".d.ts") for path in exports), "exports without types"
    for target in [*exports, doc["types"], doc.get("main", doc["types"])]:
        assert target.removeprefix("./") in files, f"{target} is declared but not packed"
    assert pack["name"] == doc["name"] and pack["version"] == VERSION
