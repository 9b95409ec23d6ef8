"""Build a real TNEF (winmail.dat) stream, as Outlook writes one, holding given files."""

from __future__ import annotations

import struct

SIGNATURE = 0x223E9F78
LVL_MESSAGE, LVL_ATTACHMENT = 0x01, 0x02
ATT_TNEF_VERSION, ATT_RENDDATA, ATT_TITLE, ATT_DATA = 0x9006, 0x9002, 0x8010, 0x800F
TYPE_DWORD, TYPE_BYTE, TYPE_STRING = 0x0008, 0x0006, 0x0001


def _object(level: int, name: int, kind: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)


def winmail(files: list[tuple[str, bytes]]) -> bytes:
    stream = struct.pack("<IH", SIGNATURE, 0x0001)
    stream += _object(LVL_MESSAGE, ATT_TNEF_VERSION, TYPE_DWORD, struct.pack("<I", 0x00010000))
    for name, data in files:
        stream += _object(LVL_ATTACHMENT, ATT_RENDDATA, TYPE_BYTE, b"\x01\x00" + b"\x00" * 12)
        stream += _object(LVL_ATTACHMENT, ATT_TITLE, TYPE_STRING, name.encode("cp1252") + b"\0")
        stream += _object(LVL_ATTACHMENT, ATT_DATA, TYPE_BYTE, data)
    return stream
