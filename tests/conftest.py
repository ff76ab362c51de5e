"""The suites' shared fixtures live in tests/support (a package pytest loads as a plugin).

pytest imports test modules by path (`--import-mode=importlib`, pyproject.toml) and mypy names them
from tests/ (`explicit_package_bases`), so two folders may hold test files of the same name.
"""

pytest_plugins = ["support.plugin", "support.push"]
