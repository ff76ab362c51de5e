"""The suites' shared fixtures live in tests/support (a package pytest loads as a plugin).

Test modules' file names must be unique across tests/: the folders are not packages, so pytest
imports each test module by its bare name.
"""

pytest_plugins = ["support.plugin", "support.push"]
