"""R4.4: VERP return paths (`bounces+TOKEN@DOMAIN`) that name the Delivery a bounce is about.

A bulletin goes out with the envelope sender `bounces+<delivery id>.<key id>.<mac>@<domain>`;
a DSN comes back to that address, and the Delivery (and so its subscriber) is found without
reading the DSN's text. Signed like the unsubscribe tokens, so that nobody can make the gateway
count a bounce against another subscriber.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

LOCAL_PART = "bounces"
_ADDRESS = re.compile(r"^bounces\+([0-9]{1,18})\.(k[0-9]{1,6})\.([0-9a-f]{20})@(.+)$", re.I)


def return_path(delivery_id: int, keys: Mapping[str, bytes], domain: str) -> str:
    key_id, key = next(iter(keys.items()))
    return f"{LOCAL_PART}+{delivery_id}.{key_id}.{_mac(key, delivery_id)}@{domain}"


def delivery_of(address: str, keys: Mapping[str, bytes], domain: str) -> int | None:
    """The Delivery a VERP address names, or None (not ours, malformed, forged, retired key)."""
    found = _ADDRESS.match(address.strip().strip("<>"))
    if not found:
        return None
    number, key_id, mac, host = found.groups()
    key = keys.get(key_id.lower())  # some MTAs change the case of the local part
    if host.lower() != domain.lower() or key is None:
        return None
    return int(number) if hmac.compare_digest(mac.lower(), _mac(key, int(number))) else None


def is_verp(address: str, domain: str) -> bool:
    """Whether RCPT TO names a VERP address of ours (accepted at the listener, R4.4)."""
    local, _, host = address.strip().strip("<>").lower().rpartition("@")
    return host == domain.lower() and local.startswith(f"{LOCAL_PART}+")


def _mac(key: bytes, delivery_id: int) -> str:
    return hmac.new(key, f"verp:{delivery_id}".encode(), hashlib.sha256).hexdigest()[:20]
