"""`infra/local/run` installs requirements-run.txt only (the test tools come with `bootstrap --dev`): every
module the stack, the functions and the benchmark import must come from that file's closure, or a
first run from a clean clone fails where the suite (on the dev venv) cannot see it."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from support import ROOT

# What runs without `--dev`: the stack (`infra/local/run`), the functions, the benchmark (`infra/local/bench`).
RUN_CODE = [ROOT / "functions", ROOT / "infra" / "local", ROOT / "infra" / "bench"]
FIRST_PARTY = {"infra", "mydevices", "main"}


def requirement_names(path: Path) -> set[str]:
    names: set[str] = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#")[0].strip()
        if line.startswith("-r"):
            names |= requirement_names(path.parent / line[2:].strip())
        elif line:
            names.add(Requirement(line).name.lower())
    return names


def closure(names: set[str]) -> set[str]:
    """The distributions installing these brings in (read from this environment's metadata)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        for requirement in metadata.requires(name) or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                todo.append(parsed.name)
    return seen


def imported_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in RUN_CODE:
        for path in folder.rglob("*.py"):
            if {"node_modules", "venv", "__pycache__"} & set(path.parts):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    found.setdefault(module.partition(".")[0], path)
    return found


def test_everything_run_imports_is_installed_by_requirements_run() -> None:
    installed = closure(requirement_names(ROOT / "requirements-run.txt"))
    providers = metadata.packages_distributions()
    missing = {}
    for module, where in imported_modules().items():
        if module in sys.stdlib_module_names or module in FIRST_PARTY or module == "__future__":
            continue
        distributions = {re.sub(r"[-_.]+", "-", name).lower() for name in providers.get(module, [])}
        if not distributions & installed:
            missing[module] = where.relative_to(ROOT).as_posix()
    assert not missing, f"imported by what `run` runs, but not installed by requirements-run.txt: {missing}"


def test_run_bootstraps_without_the_test_tools_and_test_with_them() -> None:
    assert "infra/local/bootstrap --dev" in (ROOT / "infra" / "local" / "test").read_text(encoding="utf-8")
    for script in ("run", "bench"):
        assert "--dev" not in (ROOT / "infra" / "local" / script).read_text(encoding="utf-8"), script
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert "-r requirements-run.txt" in dev  # --dev installs everything run has, and the test tools
