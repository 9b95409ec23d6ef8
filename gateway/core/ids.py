"""Identifiers the gateway hands out: SR IDs and signed Message-IDs of outgoing mail."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping

from parsers.signals import SR_ALPHABET

_OUR_MSGID = re.compile(r"^<([a-z0-9-]+)\.([0-9a-z]{16})\.(k\d+)\.([0-9a-f]{20})@([^>]+)>$")


def new_sr_id() -> str:
    """`SR-XXXX-XXXX`: 40 random bits in Crockford base 32, easy to read out on the telephone.

    Random rather than sequential so that no one can guess another customer's SR ID.
    """
    symbols = "".join(secrets.choice(SR_ALPHABET) for _ in range(8))
    return f"SR-{symbols[:4]}-{symbols[4:]}"


def outgoing_message_id(label: str, domain: str, keys: dict[str, bytes]) -> str:
    """A Message-ID that only this gateway can make: `<label.nonce.keyid.mac@domain>`.

    A reply's In-Reply-To can then be verified without trusting the subject, and the gateway
    recognises its own mail coming back (loop defence, RFC 3834 §2).
    """
    key_id, key = next(iter(keys.items()))
    nonce = secrets.token_hex(8)
    label = re.sub(r"[^a-z0-9-]", "-", label.lower())[:40]
    return f"<{label}.{nonce}.{key_id}.{_mac(key, label, nonce, domain)}@{domain}>"


def fixed_message_id(label: str, seed: str, domain: str, keys: Mapping[str, bytes]) -> str:
    """A Message-ID like `outgoing_message_id`'s, whose nonce is derived from `seed` instead of
    drawn: the same seed always gives the same Message-ID (under the same signing key).

    A bulletin's mail to one contact keeps one Message-ID however often its fan-out is run, so
    a mail sent again after a crash is the same message to every client that deduplicates.
    """
    key_id, key = next(iter(keys.items()))
    nonce = hmac.new(key, f"nonce:{seed}".encode(), hashlib.sha256).hexdigest()[:16]
    label = re.sub(r"[^a-z0-9-]", "-", label.lower())[:40]
    return f"<{label}.{nonce}.{key_id}.{_mac(key, label, nonce, domain)}@{domain}>"


def is_our_message_id(message_id: str, keys: dict[str, bytes]) -> bool:
    """True when the Message-ID was made by outgoing_message_id with one of the keys."""
    found = _OUR_MSGID.match(message_id.strip())
    if not found:
        return False
    label, nonce, key_id, mac, domain = found.groups()
    key = keys.get(key_id)
    return key is not None and hmac.compare_digest(mac, _mac(key, label, nonce, domain))


def _mac(key: bytes, label: str, nonce: str, domain: str) -> str:
    message = f"{label}.{nonce}@{domain}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:20]
