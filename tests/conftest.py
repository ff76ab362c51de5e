"""The suites' shared fixtures live in tests/support (a package pytest loads as a plugin)."""

pytest_plugins = ["support.plugin", "support.push"]
