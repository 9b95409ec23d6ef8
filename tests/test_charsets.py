"""Every charset read: each header and body of the corpus is readable text, guesses are defects."""

from __future__ import annotations

import email
import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from gateway.storage.models import Message
from parsers import charsets
from parsers.mail import ParsedMail, parse
from parsers.words import decode_words
from tests.conftest import FIXTURES
from tests.support.harness import Gateway


def _corpus() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(FIXTURES.glob("expected*.json")):
        found.update(json.loads(path.read_text()))
    return found


CORPUS = _corpus()
OURS = json.loads((FIXTURES / "expected.charsets.json").read_text())
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _stored_text(mail: ParsedMail) -> dict[str, str]:
    """Every piece of text a ParsedMail carries, by where it came from."""
    fields = {"subject": mail.subject, "from_name": mail.from_name, "text": mail.text}
    fields["html"] = mail.html or ""
    fields |= {f"header {k}": v for k, v in mail.headers.items()}
    fields |= {f"file {i}": a.filename for i, a in enumerate(mail.attachments)}
    return fields


def _undeclared(raw: bytes) -> list[str]:
    """Where a fixture names no charset for its 8-bit bytes, found with the standard library."""
    message = email.message_from_bytes(raw)
    found = []
    for key, value in message.raw_items():
        octets = str(value).encode("utf-8", "surrogateescape")
        if key.lower() in ("subject", "from") and not _is_utf8(octets):  # RFC 6532: else UTF-8
            found.append(key)
        if re.search(r"=\?(?:unknown-8bit|x-unknown)\?", str(value), re.IGNORECASE):
            found.append(key)
    for part in message.walk():
        if part.get_content_maintype() != "text" or part.get_content_disposition() == "attachment":
            continue
        payload = part.get_payload(decode=True)
        undeclared = part.get_content_charset() is None and isinstance(payload, bytes)
        if undeclared and (not payload.isascii() or b"\x1b$B" in payload):
            found.append(part.get_content_type())
    return found


def _is_utf8(octets: bytes) -> bool:
    try:
        octets.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- the whole corpus ----------------------------------------------------------------------------


def test_the_charset_corpus_has_a_mail_for_each_case_third_parties_sent() -> None:
    assert len(OURS) >= 11
    assert all((FIXTURES / name).exists() for name in OURS)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_no_fixture_keeps_a_lone_surrogate_or_an_unexplained_replacement(name: str) -> None:
    mail = parse((FIXTURES / name).read_bytes())
    for where, value in _stored_text(mail).items():
        assert not LONE_SURROGATE.search(value), (name, where, value)
        value.encode("utf-8")  # storable in any UTF-8 database
    replaced = any("replaced" in d for d in mail.defects)
    for where in ("subject", "from_name", "text"):
        assert "\ufffd" not in getattr(mail, where) or replaced, (name, where, mail.defects)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_charset_that_had_to_be_guessed_leaves_a_defect(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    undeclared = _undeclared(raw)
    mail = parse(raw)
    if undeclared:
        assert any("read as" in d for d in mail.defects), (name, undeclared, mail.defects)


@pytest.mark.parametrize("name", sorted(OURS))
def test_a_charset_fixture_gives_its_sender_name_and_its_defects(name: str) -> None:
    expected = OURS[name]
    mail = parse((FIXTURES / name).read_bytes())
    assert mail.from_name == expected["from_name"]
    for phrase in expected["defects_contain"]:
        assert any(phrase in defect for defect in mail.defects), (phrase, mail.defects)
    if not expected["defects_contain"]:  # declared, and read as declared
        assert not any("read as" in d or "replaced" in d for d in mail.defects), mail.defects


def test_the_html_alternative_in_iso_2022_jp_is_read_too() -> None:
    mail = parse((FIXTURES / "iso2022jp_outlook_ja.eml").read_bytes())
    assert mail.html is not None
    assert "① 発生時刻" in mail.html
    assert "\x1b" not in mail.html


def test_an_attachment_name_in_a_korean_encoded_word_is_decoded() -> None:
    mail = parse((FIXTURES / "ks_c_5601_outlook_ko.eml").read_bytes())
    assert [a.filename for a in mail.attachments] == ["방화벽_로그.txt"]


# --- bodies --------------------------------------------------------------------------------------


def test_a_declared_charset_that_decodes_is_used_as_declared() -> None:
    assert charsets.decode("Grüße".encode("iso-8859-15"), "iso-8859-15") == charsets.Decoded(
        "Grüße", "iso8859-15"
    )


def test_iso_8859_1_and_us_ascii_labels_mean_windows_1252() -> None:
    # WHATWG: the curly quotes and the euro sign of Windows text under a latin-1 label
    for label in ("iso-8859-1", "us-ascii"):
        assert charsets.decode(b"\x93OK\x94 \x80", label).text == "“OK” €"
        assert charsets.decode(b"\x93OK\x94 \x80", label).defect is None


def test_undeclared_utf8_is_read_as_utf8_before_windows_1252() -> None:
    decoded = charsets.decode("Priorité".encode(), None)
    assert decoded.text == "Priorité"
    assert decoded.defect == "no charset declared: read as utf-8"


def test_undeclared_ascii_is_no_guess() -> None:
    assert charsets.decode(b"plain words", None) == charsets.Decoded("plain words", "ascii")


def test_short_western_text_without_charset_is_read_as_windows_1252_not_its_neighbours() -> None:
    # charset-normalizer finds cp1250 as clean as cp1252 here, and cp1250 turns "à" into "ŕ".
    data = "le pare-feu ne répond plus depuis la mise à jour. Merci d’avance".encode("cp1252")
    decoded = charsets.decode(data, None)
    assert decoded.text.endswith("la mise à jour. Merci d’avance")
    assert decoded.defect == "no charset declared: read as cp1252 (guessed)"


def test_utf8_with_a_broken_byte_keeps_the_rest_and_says_so() -> None:
    decoded = charsets.decode("Grüße aus Köln, Jürgen".encode() + b" \xff", "utf-8")
    assert decoded.text == "Grüße aus Köln, Jürgen \ufffd"
    assert (
        decoded.defect
        == "not in its declared charset 'utf-8': read as utf-8, invalid bytes replaced"
    )


def test_windows_1252_labelled_utf8_is_read_as_windows_1252() -> None:
    decoded = charsets.decode("Störung – Büro Köln".encode("cp1252"), "utf-8")
    assert decoded.text == "Störung – Büro Köln"
    assert "read as cp1252" in (decoded.defect or "")


@pytest.mark.parametrize(
    ("label", "text", "encoding"),
    [
        ("gb2312", "王喆的防火墙", "gbk"),  # 喆 is GBK, not GB2312
        ("ks_c_5601-1987", "완료됬는데", "cp949"),  # 됬 is UHC, not EUC-KR
        ("euc-kr", "완료됬는데", "cp949"),
        ("shift_jis", "①髙橋", "cp932"),  # NEC and IBM extensions
        ("big5", "台灣", "cp950"),
    ],
)
def test_legacy_cjk_labels_are_read_as_the_supersets_their_senders_write(
    label: str, text: str, encoding: str
) -> None:
    assert charsets.decode(text.encode(encoding), label) == charsets.Decoded(
        text, charsets.codec(label) or ""
    )


def test_iso_2022_jp_with_nec_characters_is_read_as_windows_writes_it() -> None:
    # ① (NEC row 13, JIS 0x2D21) and 東京 in JIS X 0208, as Outlook sends them
    data = b"\x1b$B-!El5~\x1b(B VPN"
    assert charsets.decode(data, "iso-2022-jp").text == "①東京 VPN"


def test_escape_sequences_without_a_charset_are_iso_2022_jp() -> None:
    decoded = charsets.decode(b"\x1b$BEl5~\x1b(B", None)
    assert decoded.text == "東京"
    assert decoded.defect is not None


def test_shift_jis_labelled_iso_2022_jp_is_read_as_shift_jis() -> None:
    decoded = charsets.decode("田中 一郎".encode("cp932"), "ISO-2022-JP")
    assert decoded.text == "田中 一郎"
    assert decoded.defect == "not in its declared charset 'ISO-2022-JP': read as cp932"


@pytest.mark.parametrize("label", ["x-unknown", "unknown-8bit", "unicode-escape", "no-such-set"])
def test_a_label_that_names_no_text_charset_is_treated_as_none(label: str) -> None:
    decoded = charsets.decode("Mise à jour".encode(), label)
    assert decoded.text == "Mise à jour"
    assert f"unknown charset {label!r}" in (decoded.defect or "")


def test_a_codec_that_makes_lone_surrogates_gives_replacement_characters() -> None:
    decoded = charsets.decode(b"+2AA-", "utf-7")  # UTF-7 of a lone high surrogate
    assert decoded.text == "\ufffd"
    assert "replaced" in (decoded.defect or "")


def test_a_hint_is_tried_before_detection() -> None:
    data = "Не работает".encode("koi8_r")
    assert charsets.decode(data, None, "koi8-r").text == "Не работает"


# --- header words --------------------------------------------------------------------------------


def test_a_character_split_across_two_encoded_words_is_whole() -> None:
    assert decode_words("=?UTF-8?B?TWlzZSDD?=\r\n =?UTF-8?B?oCBqb3Vy?=") == "Mise à jour"


def test_space_between_encoded_words_goes_and_text_between_them_stays() -> None:
    value = "Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?= =?utf-8?q?_aus?= Köln =?iso-8859-1?q?M=FCller?="
    assert decode_words(value) == "Re: Grüße aus Köln Müller"


def test_a_language_tagged_encoded_word_is_decoded() -> None:
    assert decode_words("=?utf-8*de?q?St=C3=B6rung?=") == "Störung"  # RFC 2231 §5


def test_backslashes_in_a_header_with_encoded_words_stay() -> None:
    value = r"Fehler in C:\users\admin " + "=?utf-8?q?Pr=C3=BCfung?="
    assert decode_words(value) == r"Fehler in C:\users\admin Prüfung"


def test_an_encoded_word_that_cannot_be_read_is_kept_as_sent() -> None:
    found: list[str] = []
    assert (
        decode_words("=?utf-8?b?@@@@@?= rest", found, None, "subject") == "=?utf-8?b?@@@@@?= rest"
    )
    assert found == ["subject: an encoded word that cannot be read, kept as sent"]


@pytest.mark.timeout(20)
def test_a_header_full_of_unfinished_encoded_words_is_read_in_one_pass() -> None:
    # 240 kB, under the header limit; a backtracking pattern would take about a minute here
    value = "=?a?q?x " * 30000
    assert decode_words(value) == value


def test_raw_8bit_header_bytes_that_are_not_utf8_are_guessed_with_a_defect() -> None:
    found: list[str] = []
    raw = "Störung Köln".encode("cp1252").decode("utf-8", "surrogateescape")
    assert decode_words(raw, found, lambda: "iso-8859-1", "subject") == "Störung Köln"
    assert found == ["subject: no charset declared: read as cp1252"]


def test_an_rfc_2231_file_name_in_gb2312_is_read_as_gbk() -> None:
    raw = (
        b"From: alice@example.com\r\nSubject: log\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nsee file\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=gb2312''%CD%F5%86%B4.log\r\n\r\nx\r\n"
        b"--b--\r\n"
    )
    assert [a.filename for a in parse(raw).attachments] == ["王喆.log"]


def test_a_raw_8bit_file_name_never_keeps_a_surrogate() -> None:
    raw = (
        b"From: alice@example.com\r\nSubject: log\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=koi8-r\r\n\r\n%s\r\n--b\r\n"
        b'Content-Type: application/octet-stream; name="%s.txt"\r\n'
        b"Content-Disposition: attachment\r\n\r\nx\r\n--b--\r\n"
    ) % ("Привет".encode("koi8_r"), "Журнал".encode("koi8_r"))
    mail = parse(raw)
    assert mail.text == "Привет"
    assert [a.filename for a in mail.attachments] == ["Журнал.txt"]  # the body's charset
    assert "file name: no charset declared: read as koi8-r" in mail.defects


# --- through the running gateway -----------------------------------------------------------------

THROUGH_THE_LISTENER = (
    "koi8r_raw_subject_ru.eml",
    "iso2022jp_outlook_ja.eml",
    "sjis_labelled_iso2022jp_ja.eml",
    "undecodable_from_name_de.eml",
    "undeclared_utf8_fr.eml",
    "empty_plain_html_en.eml",
)


def _stored_messages(gateway: Gateway) -> None:
    for name in THROUGH_THE_LISTENER:
        expected = OURS[name]
        reply = gateway.send((FIXTURES / name).read_bytes(), mail_from=expected["from"])
        assert reply.code == 250, (name, reply)
        stored_id = int(re.search(r"stored as (\d+)", reply.text).group(1))
        with gateway.runtime.sessions.begin() as session:
            message = session.scalars(select(Message).where(Message.raw_mail_id == stored_id)).one()
            assert message.subject == expected["subject"], name
            assert message.author_name == expected["from_name"], name
            for phrase in expected["text_contains"]:
                assert phrase in message.text, (name, phrase)
            assert not LONE_SURROGATE.search(message.text + message.subject + message.author_name)


def test_mail_in_legacy_charsets_is_stored_readable(gateway: Gateway) -> None:
    _stored_messages(gateway)


def test_mail_in_legacy_charsets_is_stored_readable_in_postgresql(
    make_gateway: Any, postgres_url: str
) -> None:
    # PostgreSQL refuses what is not valid UTF-8: a lone surrogate would fail the transaction.
    _stored_messages(make_gateway(database_url=postgres_url))
