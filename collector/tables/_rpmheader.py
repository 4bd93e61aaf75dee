"""RPM header blobs as rpmdb.sqlite stores them (Packages.blob), parsed without librpm.

A stored header is: il (uint32 BE, index entries), dl (uint32 BE, data bytes), il 16-byte entries
(tag, type, offset, count; all uint32 BE), then the data store. The optional first entry is a region tag
(61-63) describing the immutable region; it carries no package data and is skipped.
"""

from __future__ import annotations

import struct
from typing import Any

# Tag numbers (rpmtag.h).
SHA1HEADER = 269
NAME, VERSION, RELEASE, EPOCH, SUMMARY = 1000, 1001, 1002, 1003, 1004
INSTALLTIME, SIZE, VENDOR, GROUP, ARCH = 1008, 1009, 1011, 1016, 1022
FILESIZES, FILEMODES, FILEDIGESTS, FILEUSERNAME, FILEGROUPNAME = 1028, 1030, 1035, 1039, 1040
SOURCERPM = 1044
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
LONGFILESIZES, FILEDIGESTALGO, LONGSIZE = 5008, 5011, 5009

# Types.
NULL, CHAR, INT8, INT16, INT32, INT64, STRING, BIN, STRING_ARRAY, I18NSTRING = range(10)
_INT = {INT8: ">b", INT16: ">H", INT32: ">I", INT64: ">Q", CHAR: ">B"}
_MAX_ENTRIES = 1 << 16


class HeaderError(ValueError):
    pass


def _strings(data: bytes, offset: int, count: int) -> tuple[list[str], int]:
    out = []
    pos = offset
    for _ in range(count):
        end = data.find(b"\0", pos)
        if end < 0:
            raise HeaderError("unterminated string")
        out.append(data[pos:end].decode("utf-8", "replace"))
        pos = end + 1
    return out, pos


def parse(blob: bytes, wanted: set[int] | None = None) -> dict[int, Any]:
    """{tag: value}: ints and lists of ints for numeric types (scalar when count is 1 and the tag is
    not an array tag by nature), str for STRING/I18NSTRING, list[str] for STRING_ARRAY, bytes for BIN."""
    if len(blob) < 8:
        raise HeaderError("short header")
    if blob[:3] == b"\x8e\xad\xe8":  # a header with its magic (as in .rpm files): skip it
        blob = blob[8:]
    il, dl = struct.unpack_from(">II", blob, 0)
    if il > _MAX_ENTRIES or 8 + il * 16 + dl > len(blob):
        raise HeaderError("header index out of bounds")
    data = blob[8 + il * 16 : 8 + il * 16 + dl]
    out: dict[int, Any] = {}
    for i in range(il):
        tag, typ, off, count = struct.unpack_from(">IIII", blob, 8 + i * 16)
        if 61 <= tag <= 63 or (wanted is not None and tag not in wanted):
            continue
        if off > dl:
            raise HeaderError(f"tag {tag}: offset out of bounds")
        if typ in (STRING, I18NSTRING):
            # I18NSTRING holds one string per locale; the first is the C locale's.
            out[tag] = _strings(data, off, max(count, 1) if typ == I18NSTRING else 1)[0][0]
        elif typ == STRING_ARRAY:
            out[tag] = _strings(data, off, count)[0]
        elif typ == BIN:
            out[tag] = data[off : off + count]
        elif typ in _INT:
            fmt = _INT[typ]
            size = struct.calcsize(fmt)
            if off + size * count > dl:
                raise HeaderError(f"tag {tag}: array out of bounds")
            out[tag] = list(struct.unpack_from(">" + fmt[1] * count, data, off))
    return out


def scalar(h: dict[int, Any], tag: int) -> Any:
    v = h.get(tag)
    return v[0] if isinstance(v, list) and v and not isinstance(v[0], str) else v
