"""Step 3, charsets: the bytes of a header or a body as text a person can read.

A declared charset that decodes is used as declared. Otherwise, or without one: strict UTF-8,
UTF-8 with a few broken bytes replaced, the charset charset-normalizer detects, Windows-1252.
Whatever was not read as declared says why in `Decoded.defect`.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from functools import lru_cache

# Labels Python lacks, or reads as a smaller set than the senders' software writes. First the
# WHATWG Encoding Standard's: iso-8859-1 and us-ascii are decoded as windows-1252, which is what
# senders mean by them. Then the legacy CJK labels as the mail clients that write them mean
# them: GB2312 text from Windows is GBK (gb18030 is its superset), Korean "ks_c_5601-1987" is
# Windows code page 949, Shift_JIS is code page 932.
ALIASES = {
    **dict.fromkeys(
        ("iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819", "ibm819"),
        "cp1252",
    ),
    **dict.fromkeys(("us-ascii", "ascii", "ansi_x3.4-1968", "windows-1252"), "cp1252"),
    **dict.fromkeys(("iso-8859-9", "latin5", "windows-1254"), "cp1254"),
    **dict.fromkeys(("iso-8859-11", "tis-620", "windows-874"), "cp874"),
    **dict.fromkeys(
        ("gb2312", "gbk", "cp936", "x-gbk", "euc-cn", "csgb2312", "gb_2312-80"), "gb18030"
    ),
    **dict.fromkeys(("big5", "x-x-big5", "cn-big5", "csbig5"), "cp950"),
    **dict.fromkeys(
        ("ks_c_5601-1987", "ks_c_5601", "ksc5601", "ksc_5601", "euc-kr", "windows-949", "korean"),
        "cp949",
    ),
    **dict.fromkeys(
        ("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "windows-31j", "csshiftjis"),
        "cp932",
    ),
    "iso-8859-8-i": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-cyrillic": "mac_cyrillic",
}
# Labels that say no more than "8-bit, charset unknown" (RFC 1428 "unknown-8bit").
UNKNOWN = frozenset({"unknown-8bit", "x-unknown", "unknown", "x-user-defined", "8bit", "default"})
# Codecs that are not a text encoding a mail can be in (escapes, IDNA): such a label is unknown.
_NOT_MAIL = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"})
_ISO2022JP = frozenset({"iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_ext"})
# What a label of the ISO-2022-JP family means when the bytes are 8-bit: Shift_JIS, mislabelled.
_MISLABELLED = dict.fromkeys(_ISO2022JP, ("cp932",))
# ISO-2022-JP escape sequences (RFC 1468; ESC ( I: half-width katakana, as Windows writes them).
_JIS_ESCAPE = re.compile(rb"\x1b(\$[@B]|\([BJI])")
_DETECT_BYTES = 64 * 1024  # detection reads (and remembers) this much; all is then decoded
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Decoded:
    """Text, the codec it was read with, and why that was not simply the declared charset."""

    text: str
    charset: str
    defect: str | None = None


def noted(decoded: Decoded, defects: list[str] | None, what: str) -> str:
    """The text; its defect, if any, added to `defects` as said of `what`."""
    if decoded.defect and defects is not None:
        defects.append(f"{what}: {decoded.defect}")
    return decoded.text


def codec(label: str | None) -> str | None:
    """The Python codec a charset label means, or None for no label or an unknown one."""
    name = (label or "").strip().strip("\"'").lower()
    if not name or name in UNKNOWN:
        return None
    try:
        found = codecs.lookup(ALIASES.get(name, name)).name
    except LookupError:
        return None
    return None if found in _NOT_MAIL else found


def decode(data: bytes, label: str | None, hint: str | None = None) -> Decoded:
    """`data` as text. `label` is the declared charset; `hint` one to try before detection."""
    declared = codec(label)
    if declared is not None:
        text = _strict(data, declared)
        if text is not None:
            return _readable(Decoded(text, declared))
    return _readable(_guess(data, label, declared, codec(hint)))


def _guess(data: bytes, label: str | None, declared: str | None, hint: str | None) -> Decoded:
    said = f"not in its declared charset {label!r}" if declared else _undeclared(label)
    if data.isascii():
        if _JIS_ESCAPE.search(data):  # RFC 1468 escape sequences: ISO-2022-JP, whatever said
            return _as(data, "iso2022_jp", f"{said}: read as iso-2022-jp (escape sequences)")
        defect = f"{said}: read as ascii" if declared else None  # 7-bit: nothing to guess
        return Decoded(data.decode("ascii"), "ascii", defect)
    bom = "utf-16" if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else None
    for name in (bom, "utf-8", *_MISLABELLED.get(declared or "", ())):
        text = _strict(data, name) if name and name != declared else None
        if name and text is not None:
            return Decoded(text, name, f"{said}: read as {name}")
    utf8 = data.decode("utf-8", errors="replace")
    if _mostly_valid(utf8):
        return Decoded(utf8, "utf-8", f"{said}: read as utf-8, invalid bytes replaced")
    text = _strict(data, hint) if hint and hint != declared else None
    if hint and text is not None:
        return Decoded(text, hint, f"{said}: read as {hint}")
    chosen = _detect(data[:_DETECT_BYTES]) or declared or "cp1252"
    return _as(data, chosen, f"{said}: read as {chosen} (guessed)")


def _undeclared(label: str | None) -> str:
    return f"unknown charset {label!r}" if label and label.strip() else "no charset declared"


def _as(data: bytes, name: str, defect: str) -> Decoded:
    text = _strict(data, name)
    if text is not None:
        return Decoded(text, name, defect)
    return Decoded(data.decode(name, errors="replace"), name, f"{defect}, invalid bytes replaced")


def _strict(data: bytes, name: str) -> str | None:
    """`data` in `name`, or None. The ISO-2022-JP family is also read as Windows writes it."""
    tried: tuple[str, ...] = ("utf-8-sig",) if name == "utf-8" else (name,)
    if name in _ISO2022JP:  # JIS X 0212 and the other ISO-2022-JP-2 sets, then Windows' own
        tried = (name, "iso2022_jp_2")
    for each in tried:
        try:
            return data.decode(each)
        except (LookupError, UnicodeDecodeError):
            continue
    return _iso2022jp_as_cp932(data) if name in _ISO2022JP and data.isascii() else None


def _mostly_valid(utf8: str) -> bool:
    """UTF-8 with a few broken bytes (a cut name, a pasted line), not another charset.

    Text in a legacy 8-bit charset almost never forms valid multi-byte UTF-8 sequences.
    """
    broken = utf8.count("\ufffd")
    valid = len(utf8) - len(utf8.encode("ascii", "ignore")) - broken
    return 0 < broken < valid


@lru_cache(maxsize=64)
def _detect(data: bytes) -> str | None:
    """charset-normalizer's reading; among readings as good as the best, Windows-1252's.

    On short Western text several single-byte charsets read without any mess (cp1250 turns
    "à" into "ŕ"); the one mail most often comes in is the one to take.
    """
    # Imported for the first mail whose charset must be guessed, not at every start (tens of
    # milliseconds).
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is None:
        return None
    for match in results:
        if match.chaos <= best.chaos + 0.01 and "cp1252" in match.could_be_from_charset:
            return "cp1252"
    return codecs.lookup(best.encoding).name


def _iso2022jp_as_cp932(data: bytes) -> str | None:
    """ISO-2022-JP as Windows writes it (code pages 50220/50221), read through Shift_JIS.

    Outlook puts NEC row 13 (①, ㈱, Ⅰ) and the IBM extensions, which RFC 1468's JIS X 0208
    lacks and Python's codecs refuse, into ISO-2022-JP mail.
    """
    pieces = _JIS_ESCAPE.split(data)
    out = bytearray(pieces[0])
    for mode, chunk in zip(pieces[1::2], pieces[2::2], strict=True):
        if mode in (b"$@", b"$B"):
            out += _jis_to_sjis(chunk)
        elif mode == b"(I":
            out += bytes(b + 0x80 if 0x21 <= b <= 0x5F else b for b in chunk)
        else:
            out += chunk
    try:
        return out.decode("cp932")
    except UnicodeDecodeError:
        return None


def _jis_to_sjis(chunk: bytes) -> bytes:
    """Two-byte JIS X 0208 codes as Shift_JIS (JIS X 0208:1997 Annex 1)."""
    out = bytearray()
    rest = iter(chunk)
    for first in rest:
        if not 0x21 <= first <= 0x7E:  # a line end left in two-byte mode
            out.append(first)
            continue
        second = next(rest, 0x21)
        out.append((first + 1) // 2 + (0x70 if first < 0x5F else 0xB0))
        if first % 2:
            out.append(second + 0x1F + (1 if second >= 0x60 else 0))
        else:
            out.append(second + 0x7E)
    return bytes(out)


def _readable(decoded: Decoded) -> Decoded:
    """No lone surrogate leaves this module (UTF-7 can make them): each becomes U+FFFD."""
    if not _LONE_SURROGATE.search(decoded.text):
        return decoded
    why = f"{decoded.defect or 'read as ' + decoded.charset}, invalid bytes replaced"
    return Decoded(_LONE_SURROGATE.sub("\ufffd", decoded.text), decoded.charset, why)
