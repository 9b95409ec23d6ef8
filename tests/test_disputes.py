"""§3.11.7: an answer to a session completion statement is a query, or feedback
(parsers/disputes.py): QUERY in the first line, or a word of contesting not negated."""

from __future__ import annotations

import pytest

from parsers.disputes import is_query


@pytest.mark.parametrize(
    "text",
    [
        "QUERY\nThe session was shorter.",
        "Query: we stopped at 12:00.",
        "Hello,\n\nwe would like to query the units of this session.",
        "We dispute the out-of-hours part.",
        "The hours are not correct, we finished at 17:00.",
        "We do not agree with 5 units.",
        "We don't accept this charge.",
        "I think we were overcharged.",
        "Reklamation: die Sitzung war kürzer.",
        "Wir sind mit der Abrechnung nicht einverstanden.",
        "Das ist falsch berechnet.",
        "Nous contestons le nombre d'unités.",
        "Réclamation : la session a duré deux heures.",
        "Nous ne sommes pas d'accord avec ce décompte.",
        "The units charged are wrong.",
        "Hello, the statement is wrong: we finished at 17:00.",
        "Die Abrechnung ist falsch.",
        "Le décompte est faux, nous avons fini à 11 h.",
    ],
)
def test_a_query_is_read_as_one(text: str) -> None:
    assert is_query(text)


@pytest.mark.parametrize(
    "text",
    [
        "Thank you, all good!",
        "Thanks, no queries from our side.",
        "Great session, the upgrade went fine. No complaints.",
        "Vielen Dank, keine Reklamation.",
        "Merci, aucune contestation, tout est parfait.",
        "Could you send the documentation of the changes?",
        "Nothing incorrect here, thanks.",
        "Nothing went wrong, thank you for the quick work.",
        "Das ist nicht falsch, danke.",
        "Rien de faux, merci.",
        "",
    ],
)
def test_feedback_is_not_a_query(text: str) -> None:
    assert not is_query(text)
