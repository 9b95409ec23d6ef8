"""Step 10, render a Delivery's templates (templates/mail/<template>_<audience>.<lang>.*.j2).

The text template sets `subject` with `{% set subject %}…{% endset %}`; the HTML template is
autoescaped, so text from a customer can never become markup (R6.5). The one exception is the
`markdown` filter, whose HTML comes from workers/markdown_html.py (a bulletin's body). An HTML
part with a `<style>` block has its CSS inlined (css-inline), as mail clients want it.
"""

from __future__ import annotations

import re
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
from markupsafe import Markup

from workers.markdown_html import to_html

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
            return self._render(template, audience, language, context)
        except TemplateError as exc:
            raise RenderError(f"{template}_{audience}.{language}: {exc}") from exc

    def _render(
        self, template: str, audience: str, language: str, context: dict[str, Any]
    ) -> Rendered:
        stem = self._stem(template, audience, language)
        module = self.text.get_template(f"{stem}.txt.j2").make_module(dict(context))
        subject = re.sub(r"\s+", " ", str(getattr(module, "subject", ""))).strip()
        try:
            html = self.html.get_template(f"{stem}.html.j2").render(context)
        except TemplateNotFound:
            html = None
        if html is not None and "<style" in html:
            html = _INLINER.inline(html)
        return Rendered(subject=subject, text=str(module).strip() + "\n", html=html)

    def _stem(self, template: str, audience: str, language: str) -> str:
        stem = f"{template}_{audience}.{language}"
        try:
            self.text.get_template(f"{stem}.txt.j2")
        except TemplateNotFound:
            return f"{template}_{audience}.en"
        return stem
