"""Step 10 for bulletins (§3.8): their Markdown made safe HTML for the HTML part of the mail.

markdown-it-py in CommonMark mode with raw HTML off, so that `<script>` or `<img onerror=…>` in
a bulletin is shown as text and never becomes markup; links only to http, https and mailto
(markdown-it already refuses javascript:, vbscript:, file: and data:); no images, which a mail
client would fetch from elsewhere. This is the only place whose output the HTML templates take
as markup (the `markdown` filter, workers/render.py).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from markdown_it import MarkdownIt

LINK_SCHEMES = ("http", "https", "mailto")


def _link_allowed(url: str) -> bool:
    try:
        return urlsplit(url.strip()).scheme.lower() in LINK_SCHEMES
    except ValueError:
        return False


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"]).disable("image")
    md.validateLink = _link_allowed  # type: ignore[method-assign]
    return md


_MARKDOWN = _parser()


@lru_cache(maxsize=64)
def to_html(source: str) -> str:
    """The HTML of a bulletin's Markdown. Every recipient's copy is the same: rendered once."""
    return str(_MARKDOWN.render(source))
