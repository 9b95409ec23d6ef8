"""Step 10, render a Delivery's templates (templates/mail/<template>_<audience>.<lang>.*.j2).

The text template sets `subject` with `{% set subject %}…{% endset %}`; the HTML template is
autoescaped, so text from a customer can never become markup (R6.5). The one exception is the
`markdown` filter, whose HTML comes from workers/markdown_html.py (a bulletin's body). An HTML
part with a `<style>` block has its CSS inlined (css-inline), as mail clients want it.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)
from markupsafe import Markup, escape

from gateway.outbound.contexts import CONTEXTS
from workers.markdown_html import to_html

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "mail"


class RenderError(Exception):
    """A template is missing or does not fit its context: the Delivery cannot be rendered."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


def _nowrap(value: str) -> str:
    """Spaces that line wrapping leaves alone (telephone numbers)."""
    return str(value).replace(" ", "\u00a0")


def _markdown(source: str) -> Markup:
    """A bulletin's Markdown as markup: the safe renderer's output, and nothing else, is trusted."""
    return Markup(to_html(str(source)))  # noqa: S704 - made by markdown_html, which lets no HTML in


# Styles into style="" attributes; nothing fetched from elsewhere
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False)


class Renderer:
    def __init__(self, directory: Path = TEMPLATES) -> None:
        self._shared = _Shared(self._render)
        loader = FileSystemLoader(str(directory))
        common: dict[str, Any] = {
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
            "auto_reload": False,  # templates do not change under a running gateway
        }
        self.text = Environment(loader=loader, autoescape=False, **common)  # noqa: S701 - plain text
        self.html = Environment(
            loader=loader, autoescape=select_autoescape(["html.j2"], default=True), **common
        )
        for env in (self.text, self.html):
            env.filters["nowrap"] = _nowrap
        self.html.filters["markdown"] = _markdown

    def render(
        self, template: str, audience: str, language: str, context: dict[str, Any]
    ) -> Rendered:
        """Subject, text and HTML; a language without its own template falls back to English."""
        try:
            personal = PERSONAL.get((template, audience), ())
            if personal:
                return self._shared.render(template, audience, language, context, personal)
            return _finished(self._render(template, audience, language, context))
        except TemplateError as exc:
            raise RenderError(f"{template}_{audience}.{language}: {exc}") from exc

    def _render(
        self, template: str, audience: str, language: str, context: dict[str, Any]
    ) -> Rendered:
        """Rendered, its CSS inlined; the subject and the text not yet trimmed (`_finished`)."""
        stem = self._stem(template, audience, language)
        module = self.text.get_template(f"{stem}.txt.j2").make_module(dict(context))
        subject = str(getattr(module, "subject", ""))
        try:
            html = self.html.get_template(f"{stem}.html.j2").render(context)
        except TemplateNotFound:
            html = None
        if html is not None and "<style" in html:
            html = _INLINER.inline(html)
        return Rendered(subject=subject, text=str(module), html=html)

    def _stem(self, template: str, audience: str, language: str) -> str:
        stem = f"{template}_{audience}.{language}"
        try:
            self.text.get_template(f"{stem}.txt.j2")
        except TemplateNotFound:
            return f"{template}_{audience}.en"
        return stem


def _finished(rendered: Rendered) -> Rendered:
    subject = re.sub(r"\s+", " ", rendered.subject).strip()
    return Rendered(subject=subject, text=rendered.text.strip() + "\n", html=rendered.html)


# (template, audience) -> the fields that differ between the recipients of one bulk mail
PERSONAL = {(t, str(a)): c.personal for (t, a), c in CONTEXTS.items() if c.personal}
# long enough to move any wrapping, with nothing to escape: escaped characters come out of the
# CSS inliner spelled another way (&#39; or '), the same text in either spelling
_CHECK_VALUES = ("Dr Annabel Marie Example-Longname of Example", "https://check.example/u/AbC-1_x")
_KEPT = 64  # bulletins being sent at once, at most, whose shared rendering is kept


def _frozen(value: Any) -> Any:
    """A context as a hashable key, equal only for contexts that render alike: strings as they
    are (most of a bulletin's, its body among them; hashing one is a tenth of writing it out as
    JSON, which each mail did), every other value with its type, so that 1, 1.0 and True differ
    as their renderings do."""
    if type(value) is str:  # not Markup, which renders otherwise
        return value
    if isinstance(value, dict):
        items = ((str(k), _frozen(v)) for k, v in value.items())
        return ("dict", tuple(sorted(items, key=lambda item: item[0])))  # values never compared
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_frozen(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return ("json", json.dumps(value, sort_keys=True, default=str))
    return (type(value).__name__, value)


class _Shared:
    """The mails of one bulletin rendered once for all its recipients (markdown, wrapping, CSS
    inlining: two thirds of the time of composing one), with placeholders where the personal
    fields go, then filled in for each recipient: the text as it is, the HTML escaped as Jinja
    escapes it. Each kept rendering is first tried with awkward values against a full
    rendering; one that differs (a template that filters a personal field) is not kept, and
    its mails are rendered whole."""

    def __init__(self, render: Callable[[str, str, str, dict[str, Any]], Rendered]) -> None:
        self._render = render
        self._marks = [f"zq{secrets.token_hex(6)}p{i}qz" for i in range(8)]
        self._kept: OrderedDict[tuple[str, ...], Rendered | None] = OrderedDict()
        self._lock = threading.Lock()

    def render(
        self,
        template: str,
        audience: str,
        language: str,
        context: dict[str, Any],
        personal: tuple[str, ...],
    ) -> Rendered:
        shared = {k: v for k, v in context.items() if k not in personal}
        key = (template, audience, language, _frozen(shared))
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                marked = self._kept[key]
            else:
                marked = self._prepared(template, audience, language, shared, personal)
                self._kept[key] = marked
                if len(self._kept) > _KEPT:
                    self._kept.popitem(last=False)
        if marked is None:
            return _finished(self._render(template, audience, language, context))
        return _finished(self._filled(marked, [str(context[f]) for f in personal]))

    def _prepared(
        self,
        template: str,
        audience: str,
        language: str,
        shared: dict[str, Any],
        personal: tuple[str, ...],
    ) -> Rendered | None:
        marks = dict(zip(personal, self._marks, strict=False))
        marked = self._render(template, audience, language, shared | marks)
        values = [_CHECK_VALUES[i % len(_CHECK_VALUES)] for i in range(len(personal))]
        whole = self._render(
            template, audience, language, shared | dict(zip(personal, values, strict=True))
        )
        if _finished(self._filled(marked, values)) != _finished(whole):
            log.warning(
                "%s_%s: a personal field is not shown as it is; rendered whole", template, audience
            )
            return None
        return marked

    def _filled(self, marked: Rendered, values: list[str]) -> Rendered:
        subject, text, html = marked.subject, marked.text, marked.html
        for mark, value in zip(self._marks, values, strict=False):
            subject, text = subject.replace(mark, value), text.replace(mark, value)
            if html is not None:
                html = html.replace(mark, str(escape(value)))
        return Rendered(subject=subject, text=text, html=html)
