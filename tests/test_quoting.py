"""Quoted history under an attribution line, in any position, and Russian attributions."""

from __future__ import annotations

from parsers.replies import latest_reply

QUOTE = """> Dear customer,
>
> your request SR-7KQM-29XD has been logged at Priority 3.
> SecureCall SOC"""


def test_a_bottom_posted_answer_is_kept_without_the_quote_above_it() -> None:
    text = f"On 21/11/2026 10:02, SecureCall SOC wrote:\n{QUOTE}\n\nThe tunnel is up again.\n"
    assert latest_reply(text) == "The tunnel is up again."


def test_a_top_posted_answer_is_kept_without_the_quote_below_it() -> None:
    text = f"The tunnel is up again.\n\nOn 21/11/2026 10:02, SecureCall SOC wrote:\n{QUOTE}\n"
    assert latest_reply(text) == "The tunnel is up again."


def test_a_short_bottom_posted_answer_that_looks_like_a_signature_is_still_the_answer() -> None:
    text = f"On 21/11/2026 10:02, SecureCall SOC wrote:\n{QUOTE}\n\nThanks, done.\n"
    assert latest_reply(text) == "Thanks, done."


def test_a_german_thunderbird_bottom_post_loses_its_quote() -> None:
    text = f"Am 21.11.26 um 10:02 schrieb SecureCall SOC:\n{QUOTE}\n\nDer Tunnel läuft wieder.\n"
    assert latest_reply(text) == "Der Tunnel läuft wieder."


def test_a_russian_attribution_without_quote_marks_ends_the_reply() -> None:
    # what remains of an HTML-only reply whose quote was a <blockquote>
    text = "Туннель снова работает.\n\n21.11.2026 10:02, SecureCall SOC пишет:\nDear customer,\n"
    assert latest_reply(text) == "Туннель снова работает."


def test_gmail_in_russian_names_no_verb_and_still_ends_the_reply() -> None:
    text = (
        "Туннель снова работает.\n\n"
        "сб, 21 нояб. 2026 г. в 10:02, SecureCall SOC <soc@securecall.example>:\n\n"
        f"{QUOTE}\n"
    )
    assert latest_reply(text) == "Туннель снова работает."


def test_quoted_lines_that_no_attribution_introduces_are_left_as_sent() -> None:
    text = "As you wrote:\n> send the log\nHere it is.\n\nAlice"
    assert "> send the log" in latest_reply(text)


def test_a_sentence_that_mentions_writing_is_not_an_attribution() -> None:
    text = "Мой коллега пишет отчёт, пришлю завтра.\nСпасибо."
    assert latest_reply(text) == text
