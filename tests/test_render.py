"""Rendering: a bulletin's mails rendered once for all recipients and filled in for each equal
the same mails rendered whole; a template that does not show a personal field as it is gets
every mail rendered whole."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from gateway.outbound.contexts.bulletins import BulletinCustomer
from tests.support.bulletins import BODY
from workers import render
from workers.render import Renderer

NAMES = [
    "Ann Example",
    "Zoë O'Connor & <Partners>",
    "A very long name that would change any wrapping of the line it sits in, if it were wrapped",
    "  spaced   out  ",
    "{{ not a template }}",
]


def context(name: str, token: str) -> dict[str, object]:
    return BulletinCustomer(
        bulletin_id=7,
        product="FortiGate 600E",
        kind="patch",
        severity="critical",
        title="FortiOS 7.4.5 fixes CVE-2026-1234",
        body=BODY,
        url="https://fortiguard.example/psirt/FG-IR-26-123",
        contact_name=name,
        unsubscribe_url=f"https://gw.example/u/{token}",
        sus_address="sus@securecall.example",
    ).as_json()


def visible(markup: str) -> str:
    """The HTML's text and links, whatever spelling its escapes have."""
    return html.unescape(re.sub(r"\s+", " ", markup))


def test_each_recipients_mail_is_the_mail_rendered_whole() -> None:
    shared, whole = Renderer(), Renderer()
    for n, name in enumerate(NAMES):
        values = context(name, f"tok{n}-AbC_{n}")
        got = shared.render("sus_bulletin", "customer", "en", values)
        want = render._finished(whole._render("sus_bulletin", "customer", "en", values))
        assert (got.subject, got.text) == (want.subject, want.text)
        assert visible(got.html or "") == visible(want.html or "")
        assert f"https://gw.example/u/tok{n}-AbC_{n}" in got.text
        assert f'href="https://gw.example/u/tok{n}-AbC_{n}"' in (got.html or "")
    # the markup of a name is escaped, never taken as markup
    assert "<Partners>" not in (
        shared.render("sus_bulletin", "customer", "en", context(NAMES[1], "t")).html or ""
    )
    assert len(shared._shared._kept) == 1


def renderer_of(
    template: str, text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Renderer:
    """A renderer of one text template to customers, `contact_name` its personal field."""
    (tmp_path / f"{template}_customer.en.txt.j2").write_text(text)
    monkeypatch.setitem(render.PERSONAL, (template, "customer"), ("contact_name",))
    return Renderer(tmp_path)


def test_a_template_that_filters_a_personal_field_is_rendered_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        "{% set subject %}Hello {{ contact_name | upper }}{% endset %}"
        "Dear {{ contact_name | upper }}, {{ news }}\n"
    )
    renderer = renderer_of("shout", text, tmp_path, monkeypatch)
    for name in ("ann", "bob"):
        got = renderer.render("shout", "customer", "en", {"contact_name": name, "news": "hi"})
        assert (got.subject, got.text) == (f"Hello {name.upper()}", f"Dear {name.upper()}, hi\n")


def test_contexts_that_render_otherwise_are_kept_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = "{% set subject %}For {{ contact_name }}{% endset %}"
    text = subject + "{{ contact_name }}: {{ n }} {{ tags }}\n"
    renderer = renderer_of("count", text, tmp_path, monkeypatch)
    # equal under == (1, True, 1.0) or under json.dumps (the list and the tuple), but each
    # rendered otherwise: each its own kept rendering
    for n, tags in ((1, ["a"]), (True, ["a"]), (1.0, ["a"]), ("1", ["a"]), (1, ("a",))):
        context = {"contact_name": "ann", "n": n, "tags": tags}
        assert renderer.render("count", "customer", "en", context).text == f"ann: {n} {tags}\n"
    assert len(renderer._shared._kept) == 5
    # the same shared context in new objects, for other recipients: one rendering kept
    for name in ("bob", "cy"):
        context = {"contact_name": name, "n": 2, "tags": ["a"]}
        got = renderer.render("count", "customer", "en", context)
        assert (got.subject, got.text) == (f"For {name}", f"{name}: 2 ['a']\n")
    assert len(renderer._shared._kept) == 6
