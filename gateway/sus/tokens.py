"""Unsubscribe tokens (RFC 8058 one-click, RFC 2369 mailto): a subscription's id, signed.

`<id>.<key id>.<mac>`, the MAC an HMAC of the id under the gateway's keys (GATEWAY_SECRET_KEY,
the first signs and all verify: rotation as for the Message-IDs, core/ids.py). A token names one
subscription and cannot be turned into another's; one signed by a key no longer listed is
refused. Unlike listmonk's, it is not a guessable or eternal secret of the subscriber.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

_TOKEN = re.compile(r"^([0-9]{1,18})\.(k[0-9]{1,6})\.([0-9a-f]{32})$")


def sign(subscription_id: int, keys: Mapping[str, bytes]) -> str:
    key_id, key = next(iter(keys.items()))
    return f"{subscription_id}.{key_id}.{_mac(key, subscription_id)}"


def verify(token: str, keys: Mapping[str, bytes]) -> int | None:
    """The subscription the token names, or None for a malformed, forged or retired token."""
    found = _TOKEN.match(token.strip())
    if not found:
        return None
    number, key_id, mac = found.groups()
    key = keys.get(key_id)
    if key is None or not hmac.compare_digest(mac, _mac(key, int(number))):
        return None
    return int(number)


def _mac(key: bytes, subscription_id: int) -> str:
    message = f"sus-unsubscribe:{subscription_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]
