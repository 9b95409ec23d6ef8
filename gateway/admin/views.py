"""The admin web's views as plain functions: a `Visit` in (who, what was asked), a result out
(a page, an action's outcome, a document), so that a view reads like the command it mirrors.

`page` and `action` declare them; gateway/admin/site.py makes them Starlette routes, every one
behind the sign-in, every action behind the form's CSRF token.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from gateway.core.runtime import Runtime
from gateway.directory import DirectoryError
from gateway.intake.receipts import NotHeld, TemporaryFailure
from gateway.outbound.retries import NotFailed
from gateway.reports.periods import BadPeriod
from gateway.sus.bulletins import BulletinError
from gateway.sus.requests import RequestError
from gateway.sus.vocabulary import SubscriptionError

# What an action may refuse with: said on the page it came from, nothing changed (each use-case
# rolls back what it began).
REFUSED = (
    DirectoryError,
    SubscriptionError,
    RequestError,
    BulletinError,
    NotHeld,
    NotFailed,
    BadPeriod,
    TemporaryFailure,
)


class MailPreview(Protocol):
    """A bulletin's mail as a subscriber gets it (workers/preview.py `Preview`)."""

    @property
    def subject(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def html(self) -> str: ...


@dataclass(frozen=True)
class Renderings:
    """What the workers render, handed in by the composition root (the gateway does not import
    the workers): a bulletin's Markdown as its mail's HTML, a bulletin's whole mail."""

    markdown: Callable[[str], str]
    bulletin: Callable[[Runtime, int], MailPreview]


@dataclass(frozen=True)
class Visit:
    """One request of a signed-in admin, as a view sees it."""

    rt: Runtime
    admin: str  # the admin's address: what the audit trail records them by
    renderings: Renderings
    path: Mapping[str, Any] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] = field(default_factory=dict)
    checked: tuple[str, ...] = ()  # the form's checkboxes of one name (`kinds`), all values


@dataclass(frozen=True)
class Shown:
    """A page: a template of templates/web/admin/ and its values."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass(frozen=True)
class Done:
    """What an action did, said on the page it sends the admin to."""

    to: str  # a path under /admin
    message: str
    error: bool = False


@dataclass(frozen=True)
class Document:
    """Anything else: a JSON figure, a preview's HTML fragment, a bulletin's mail."""

    body: str
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


Result = Shown | Done | Document
View = Callable[[Visit], Result]


@dataclass(frozen=True)
class Spec:
    """A view at a path. An action's `back` is where a refusal is said, its `{names}` filled
    with the path's parameters and the form's fields; `name` is how the log names the action
    (the command it mirrors)."""

    path: str
    view: View
    method: str
    back: str = ""
    name: str = ""

    def back_for(self, visit: Visit) -> str:
        values = defaultdict(str, {k: quote(v, safe="") for k, v in visit.form.items()})
        values.update({k: quote(str(v), safe="") for k, v in visit.path.items()})
        return self.back.format_map(values)


def page(path: str, view: View) -> Spec:
    return Spec(path, view, "GET")


def action(path: str, view: View, back: str, name: str) -> Spec:
    return Spec(path, view, "POST", back, name)


def missing(what: str) -> Shown:
    return Shown("missing.html.j2", {"what": what}, status=404)


def number(value: str | None, default: int | None = None) -> int | None:
    """A form's or query's whole number; `default` for none or anything else."""
    try:
        return int((value or "").strip())
    except ValueError:
        return default
