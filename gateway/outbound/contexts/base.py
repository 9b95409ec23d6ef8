"""The base of every mail context, and the parts many share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from gateway.core.values import plain


class WrongContext(TypeError):
    """A Delivery was given a context that is not its template's."""


@dataclass(frozen=True, kw_only=True)
class Context:
    # The fields that differ between the recipients of one bulk mail. The renderer renders the
    # rest once for all of them (workers/render.py), so a template must show these as they are:
    # no filter, no wrapping.
    personal: ClassVar[tuple[str, ...]] = ()

    def as_json(self) -> dict[str, Any]:
        return dict(plain(self))


@dataclass(frozen=True, kw_only=True)
class AboutRequest(Context):
    sr_id: str
    title: str
    priority: int


@dataclass(frozen=True, kw_only=True)
class InLanguage(Context):
    """A customer-facing mail (R1.11): in English outside Business Hours – Standard, with a line
    in the customer's language saying why."""

    outside_hours: bool
    wanted_language: str
