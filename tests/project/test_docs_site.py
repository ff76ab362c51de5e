"""The docs: a README of at most 200 lines whose links resolve, and a MkDocs Material site built with
`mkdocs build --strict` (offline; a broken link or anchor fails it), whose configuration table is held
to `Settings` and whose API table to docs/openapi.yaml, so neither can go stale. About 5 s."""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mydevices import config
from support import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
CONFIG_PY = ROOT / "functions" / "mydevices" / "config.py"


def mkdocs_build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's notice of its end of life (May 2027)
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=project, env=env, check=False, capture_output=True, text=True, timeout=120)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    built = mkdocs_build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "WARNING" not in built.stderr
    for page in ("index", "getting-started/index", "concepts/trust-rules/index", "api/index", "configuration/index",
                 "push-messages/index", "guides/python/index", "deploy/index", "operations/index", "security/index",
                 "contributing/index"):
        assert (tmp_path / "site" / f"{page}.html").is_file(), page


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    """The control: strict really refuses a link to a page that does not exist."""
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    with (tmp_path / "docs" / "deploy.md").open("a", encoding="utf-8") as page:
        page.write("\nSee [the runbook](runbook.md).\n")
    built = mkdocs_build(tmp_path, tmp_path / "site")
    assert built.returncode != 0 and "runbook.md" in built.stderr


def test_the_readme_is_a_front_page_whose_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert "docs/my-devices.png" in local and "docs/getting-started.md" in local
    for link in local:
        assert (ROOT / link).exists(), link
    for platform in ("Web", "React", "Android", "iOS", "Node backend", "Python backend"):
        assert f"**{platform}** ([guide](docs/guides/" in text, platform


# --- the configuration table, held to Settings ------------------------------------------------------


def settings_variables() -> dict[str, str]:
    """Settings.from_env: variable -> the field it sets (through the locals it assigns first, too)."""
    function = next(node for node in ast.walk(ast.parse(CONFIG_PY.read_text(encoding="utf-8")))
                    if isinstance(node, ast.FunctionDef) and node.name == "from_env")

    def names(node: ast.AST) -> set[str]:
        return {c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)
                and re.fullmatch(r"(MYDEVICES|GOOGLE_CLOUD|GCLOUD)_[A-Z0-9_]+", c.value)}

    local = {target.id: names(node.value) for node in ast.walk(function) if isinstance(node, ast.Assign)
             for target in node.targets if isinstance(target, ast.Name)}
    found: dict[str, str] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.keyword) and node.arg:
            used = names(node.value) | {n for name in ast.walk(node.value) if isinstance(name, ast.Name)
                                        for n in local.get(name.id, set())}
            found.update(dict.fromkeys(used, node.arg))
    return found


def other_variables() -> set[str]:
    """MYDEVICES_* read with os.environ.get outside config.py (each must be documented too)."""
    found = set()
    for path in (ROOT / "functions").rglob("*.py"):
        if path == CONFIG_PY or "venv" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and str(first.value).startswith("MYDEVICES_"):
                    found.add(str(first.value))
    return found


def documented() -> dict[str, tuple[str | None, str]]:
    """docs/configuration.md's table: variable -> (field or None, default cell)."""
    rows = {}
    for cells in re.findall(r"^\| (`[A-Z].*?) \| (.*?) \| (.*) \|$", (DOCS / "configuration.md").read_text(), re.M):
        field = re.fullmatch(r"`(\w+)`", cells[1])
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            rows[name] = (field.group(1) if field else None, cells[2])
    return rows


def shown(value: Any) -> str:
    """A default as the table writes it."""
    if value is None:
        return "unset"
    if isinstance(value, frozenset):
        assert not value
        return "empty"
    if isinstance(value, config.Rate):
        return f"`{value.count}/{value.seconds}`"
    if isinstance(value, str):
        return f"`{value}`"
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_the_configuration_table_is_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("MYDEVICES_", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT")):
            monkeypatch.delenv(name)
    defaults = config.Settings.from_env()
    variables = settings_variables()
    rows = documented()
    assert {field.name for field in dataclasses.fields(config.Settings)} == set(variables.values())
    assert rows.keys() == variables.keys() | other_variables(), "a setting is missing from the table, or gone"
    for name, (field, default) in rows.items():
        assert field == variables.get(name), f"{name}: the table says field {field}, the code {variables.get(name)}"
        if field is not None:
            assert default.startswith(shown(getattr(defaults, field))), f"{name}: default {default!r}"


# --- the API table, held to the OpenAPI description ----------------------------------------------


def test_the_api_table_lists_every_operation_of_openapi() -> None:
    spec = yaml.safe_load((DOCS / "openapi.yaml").read_text(encoding="utf-8"))
    operations = {f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item
                  if method in ("get", "post", "put", "delete", "patch")}
    table = set(re.findall(r"^\| `([A-Z]+ /\S*)` \|", (DOCS / "api.md").read_text(encoding="utf-8"), re.M))
    assert table == operations
