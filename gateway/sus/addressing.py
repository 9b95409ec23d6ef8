"""R4.3: what makes each bulletin mail personal: To the subscriber alone, its own Message-ID,
its unsubscribe link and address (RFC 2369, RFC 8058), the list's id (RFC 2919), its VERP
return path (R4.4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from gateway.core.ids import fixed_message_id
from gateway.core.settings import Settings
from gateway.outbound.bulk import BulkMail
from gateway.outbound.contexts.bulletins import BulletinCustomer
from gateway.sus import tokens
from gateway.sus.bulletin_queries import BulletinContent
from gateway.sus.queries import Subscriber

TEMPLATE = "sus_bulletin"  # templates/mail/sus_bulletin_customer.en.*.j2


def slug(name: str) -> str:
    """A product's name as one DNS label: `FortiGate 600E` -> `fortigate-600e`."""
    label = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return label[:63].strip("-") or "product"


def list_id(product: str, domain: str) -> str:
    """RFC 2919: `<fortigate-600e.sus.securecall.example>`, one list per product."""
    return f"<{slug(product)}.sus.{domain}>"


def unsubscribe_url(token: str, settings: Settings) -> str:
    return f"{settings.public_url}/u/{token}"


def headers(product: str, token: str, settings: Settings) -> dict[str, str]:
    """The fields of RFC 2369 (List-Unsubscribe: the one-click https link first, then mailto),
    RFC 8058 (List-Unsubscribe-Post) and RFC 2919 (List-Id), and Precedence: bulk (R6.1: no
    auto-replies, please). compose adds Auto-Submitted: auto-generated (RFC 3834)."""
    mailto = f"mailto:{settings.sus}?subject=unsubscribe%20{token}"
    return {
        "Precedence": "bulk",
        "List-Id": list_id(product, settings.domain),
        "List-Unsubscribe": f"<{unsubscribe_url(token, settings)}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def message_id(
    bulletin_id: int, contact_id: int, settings: Settings, keys: Mapping[str, bytes]
) -> str:
    """The same for every run of a bulletin's fan-out to one contact, and signed (core/ids.py)."""
    seed = f"bulletin:{bulletin_id}:contact:{contact_id}"
    return fixed_message_id(f"bulletin-{bulletin_id}", seed, settings.domain, keys)


def advisory_url(url: str | None) -> str | None:
    """The manufacturer's advisory, if it is an http(s) link (nothing else goes in a mail)."""
    if url is None:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", url.strip()):
        raise ValueError(f"the advisory's URL must be http:// or https://, not {url!r}")
    return url.strip()


def mail_for(
    bulletin: BulletinContent,
    subscriber: Subscriber,
    settings: Settings,
    keys: Mapping[str, bytes],
) -> BulkMail:
    """One subscriber's mail of the bulletin, as the fan-out writes it."""
    token = tokens.sign(subscriber.subscription_id, keys)
    context = BulletinCustomer(
        bulletin_id=bulletin.id,
        product=bulletin.product,
        kind=bulletin.kind,
        severity=bulletin.severity,
        title=bulletin.title,
        body=bulletin.body,
        url=advisory_url(bulletin.url),
        contact_name=subscriber.name or subscriber.address,
        unsubscribe_url=unsubscribe_url(token, settings),
        sus_address=settings.sus,
    )
    return BulkMail(
        recipient=subscriber.address,
        context=context,
        message_id=message_id(bulletin.id, subscriber.contact_id, settings, keys),
        headers=headers(bulletin.product, token, settings),
    )
