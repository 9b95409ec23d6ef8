"""R6.1: the addresses a notice may go to, when the address was taken from a mail."""

from __future__ import annotations

import re
import string

# RFC 5322 §3.2.3 atext: what a local part may hold without quoting.
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")  # RFC 1035 §2.3.1, RFC 5890 A-labels


def addressable(address: str) -> bool:
    """An address a notice may go to: a plain mailbox, `dot-atom@domain` (RFC 5321 §4.1.2).

    Taken from a mail, an address may be anything its sender wrote: a quoted local part
    (`"system administrator"@host`), spaces, control characters, an IP literal, a bare host, parts
    beyond RFC 5321 §4.5.3.1's limits. A notice to it would bounce or go astray: none is written.
    Local parts in UTF-8 (RFC 6531) and internationalised domains (RFC 5890) are mailboxes too.
    """
    local, at, domain = address.rpartition("@")
    if not at or len(address.encode("utf-8", "surrogatepass")) > 254:
        return False
    return _plain_local(local) and _plain_domain(domain)


def _plain_local(local: str) -> bool:
    if not 0 < len(local.encode("utf-8", "surrogatepass")) <= 64:
        return False
    return all(
        atom and all(ch in _ATEXT or (ord(ch) > 127 and ch.isprintable()) for ch in atom)
        for atom in local.split(".")
    )


def _plain_domain(domain: str) -> bool:
    try:
        labels = [label.encode("idna").decode("ascii").lower() for label in domain.split(".")]
    except UnicodeError:  # an empty label, or one no A-label can spell
        return False
    return (
        len(labels) >= 2
        and len(".".join(labels)) <= 253
        and all(_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()  # 192.0.2.1 is no domain; a top-level domain has a letter
    )
