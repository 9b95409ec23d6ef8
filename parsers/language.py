"""Step 5, language (§3.2, R1.11): English, German or French, by the common words a text uses."""

from __future__ import annotations

import re
from collections import Counter

_STOPWORDS = {
    "en": {
        "the",
        "and",
        "is",
        "are",
        "to",
        "of",
        "for",
        "on",
        "with",
        "we",
        "our",
        "you",
        "your",
        "please",
        "this",
        "that",
        "not",
        "have",
        "has",
        "it",
        "be",
        "since",
        "can",
        "from",
        "thanks",
        "regards",
        "hello",
        "hi",
        "dear",
        "would",
        "could",
        "there",
        "been",
        "was",
        "were",
        "any",
    },
    "de": {
        "der",
        "die",
        "das",
        "und",
        "ist",
        "sind",
        "nicht",
        "mit",
        "wir",
        "unser",
        "unsere",
        "bitte",
        "ein",
        "eine",
        "für",
        "auf",
        "von",
        "zu",
        "den",
        "dem",
        "es",
        "haben",
        "hat",
        "seit",
        "kann",
        "danke",
        "grüße",
        "gruß",
        "hallo",
        "sehr",
        "geehrte",
        "ich",
        "sie",
        "wird",
        "wurde",
        "noch",
        "auch",
        "keine",
        "kein",
        "leider",
        "freundlichen",
    },
    "fr": {
        "le",
        "la",
        "les",
        "et",
        "est",
        "sont",
        "pas",
        "avec",
        "nous",
        "notre",
        "nos",
        "vous",
        "votre",
        "merci",
        "un",
        "une",
        "pour",
        "sur",
        "du",
        "dans",
        "il",
        "elle",
        "ce",
        "cette",
        "depuis",
        "peut",
        "bonjour",
        "cordialement",
        "je",
        "qui",
        "que",
        "ne",
        "au",
        "aux",
        "été",
        "avons",
        "pouvez",
        "madame",
        "monsieur",
    },
}
# each stop word with the languages it belongs to: one lookup a word of the text
_LANGUAGES_OF: dict[str, tuple[str, ...]] = {
    word: tuple(lang for lang, stop in _STOPWORDS.items() if word in stop)
    for words in _STOPWORDS.values()
    for word in words
}
_WORD = re.compile(r"[a-zäöüßàâçéèêëîïôûùüÿœæ]+")


# The signature delimiter (RFC 3676 §4.3, "-- "; many clients drop its space): what follows is a
# signature, and often a legal disclaimer in another language than the mail's
_SIGNATURE = re.compile(r"^--[ \t]?$", re.MULTILINE)


def detect_language(text: str) -> str | None:
    """en, de or fr by common-word counts, of the text above its signature delimiter; None when
    the text is too short to tell."""
    found = _SIGNATURE.search(text)
    if found and _WORD.search(text[: found.start()].lower()):
        text = text[: found.start()]
    words = _WORD.findall(text.lower()[:5000])
    counts = Counter(lang for word in words for lang in _LANGUAGES_OF.get(word, ()))
    if not counts:
        return None
    (best, hits), *rest = counts.most_common()
    runner_up = rest[0][1] if rest else 0
    return best if hits >= 2 and hits > runner_up else None
