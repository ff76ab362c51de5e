"""Approximate location of a login, from the client's IP address.

Only the last `trusted_proxies` hops of X-Forwarded-For were written by proxies we run; anything
to their left is whatever the client chose to send, so it is never believed. Private, loopback
and unknown addresses have no place. A missing database turns lookups off with one warning:
location is a courtesy, never a reason to refuse a login. The database may also be a Cloud
Storage object (see geoip_source.py).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from functools import lru_cache
from typing import Any

from . import geoip_source

log = logging.getLogger(__name__)
_warn_once = threading.Event()


def client_ip(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: int) -> str | None:
    if trusted_proxies <= 0 or not forwarded_for:
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    # The right-most hop was added by the proxy nearest to us; each trusted proxy adds one.
    if len(hops) >= trusted_proxies:
        return hops[-trusted_proxies]
    return hops[0] if hops else remote_addr


@lru_cache(maxsize=4)
def _reader(path: str) -> Any:
    import geoip2.database  # imported here: only logins need it, and it is not free to import

    return geoip2.database.Reader(path)


def _public_address(ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if not address.is_global:
        return None
    return str(address)


def locate(ip: str | None, db_setting: str | None) -> str | None:
    """'City, Country' (or just the country) for a public address, else None.

    `db_setting` is MYDEVICES_GEOIP_DB: a file path or gs://BUCKET/OBJECT.
    """
    if not ip or not db_setting:
        return None
    address = _public_address(ip)
    if address is None:
        return None
    db_path = geoip_source.local_path(db_setting)
    if db_path is None:
        return None
    if not os.path.exists(db_path):
        if not _warn_once.is_set():
            _warn_once.set()
            log.warning("GeoIP database %s not found: locations are disabled", db_path)
        return None
    try:
        import geoip2.errors

        response = _reader(db_path).city(address)
    except (geoip2.errors.AddressNotFoundError, ValueError):
        return None
    except Exception:  # a corrupt database must not fail a login
        if not _warn_once.is_set():
            _warn_once.set()
            log.warning("GeoIP database %s could not be read: locations are disabled", db_path, exc_info=True)
        return None
    city = response.city.name
    country = response.country.name
    if city and country:
        return f"{city}, {country}"
    return country or None
