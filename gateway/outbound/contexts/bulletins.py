"""The context of a Support Update Service bulletin (§3.8, R4.1): one subscriber's copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gateway.outbound.contexts.base import Context


@dataclass(frozen=True, kw_only=True)
class BulletinCustomer(Context):
    """A manufacturer's advisory as one subscriber receives it, in English (R1.11).

    `body` is the bulletin's Markdown: the text part shows it as written, the HTML part has it
    made HTML by the renderer's own safe Markdown filter (workers/markdown_html.py), never as
    markup taken from here.
    """

    bulletin_id: int
    product: str
    kind: str  # patch | upgrade | bulletin
    severity: str  # low | medium | high | critical
    title: str
    body: str
    url: str | None  # the manufacturer's advisory
    contact_name: str
    unsubscribe_url: str  # RFC 8058 one-click, and a page with one button for a person
    sus_address: str  # R4.2: "please contact the SOC": where to write instead

    personal: ClassVar[tuple[str, ...]] = ("contact_name", "unsubscribe_url")
