"""The SDK code no compiler on these machines can build: its syntax, checked with tree-sitter's grammars
(PyPI `tree-sitter-kotlin`, `tree-sitter-swift`, pinned in requirements-dev.txt). The Android glue
(clients/kotlin/android) needs the Android SDK, the Swift package (clients/swift) a Swift compiler; the
check finds syntax errors, never type or API errors, and each file says so at its top."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import tree_sitter_kotlin
import tree_sitter_swift
from tree_sitter import Language, Node, Parser

from infra.local.stack import REPO_ROOT

ANDROID = REPO_ROOT / "clients" / "kotlin" / "android"
SWIFT = REPO_ROOT / "clients" / "swift"
GRAMMARS: dict[str, Callable[[], object]] = {".kt": tree_sitter_kotlin.language, ".swift": tree_sitter_swift.language}


def _errors(path: Path) -> list[str]:
    parser = Parser(Language(GRAMMARS[path.suffix]()))
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.is_error or node.is_missing:
            found.append(f"{path}:{node.start_point[0] + 1}:{node.start_point[1] + 1}: "
                         f"{'missing ' + node.type if node.is_missing else 'syntax error'}")
            return
        if node.has_error:
            for child in node.children:
                walk(child)

    walk(parser.parse(path.read_bytes()).root_node)
    return found


def _files(root: Path, suffix: str) -> list[Path]:
    return sorted(root.rglob(f"*{suffix}"))


@pytest.mark.parametrize(("root", "suffix", "least"), [(ANDROID, ".kt", 7), (SWIFT, ".swift", 12)],
                         ids=["android-kotlin", "swift"])
def test_every_file_parses(root: Path, suffix: str, least: int) -> None:
    files = _files(root, suffix)
    assert len(files) >= least, files
    errors = [error for path in files for error in _errors(path)]
    assert errors == [], "\n".join(errors)
    for path in files:
        assert "NOT COMPILED HERE" in path.read_text(encoding="utf-8")[:300], f"{path}: say it at the top"


@pytest.mark.parametrize(("suffix", "broken"), [
    (".kt", "class A {\n  fun f() { val x = }\n}\n"),
    (".kt", "fun f() = listOf(1, 2\n"),
    (".swift", "struct A {\n  func f() -> Int { return }\n  var x: = 1\n}\n"),
    (".swift", "func f() {\n  let x = [1, 2\n}\n"),
])
def test_the_check_finds_syntax_errors(tmp_path: Path, suffix: str, broken: str) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_text(broken)
    assert _errors(path)
