"""What tests/project shares: the repository's tracked files, its licence and its version."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

from support import ROOT

SPDX = "Apache-2.0"
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def tracked(pattern: str) -> list[Path]:
    """The files git tracks that match `pattern` (never what an install put in node_modules)."""
    out = subprocess.run(["git", "ls-files", "-z", "--", pattern], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return [ROOT / name for name in out.split("\0") if name]
