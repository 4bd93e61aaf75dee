"""Lumberjack v2 frames (the beats protocol; facts from elastic/go-lumber `protocol/v2`, shipping.md §3.4).

All integers are big-endian uint32. Client → server: window `'2' 'W' count`, then per event a JSON frame
`'2' 'J' seq len payload` (seq counts 1..count inside each window), optionally all of them wrapped in one
compressed frame `'2' 'C' len zlib(frames)`. Server → client: ACK `'2' 'A' seq` = the events of the window
accepted so far; seq 0 (or a repeat) is a keepalive while the server is still working.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

VERSION = b"2"
WINDOW, JSON, COMPRESSED, ACK = b"2W", b"2J", b"2C", b"2A"
ACK_SIZE = 6
_U32 = struct.Struct(">I")
_JSON_HEAD = struct.Struct(">2sII")


class ProtocolError(Exception):
    """The peer sent something that is not a lumberjack v2 ACK."""


def window_frame(count: int) -> bytes:
    return WINDOW + _U32.pack(count)


def json_frame(seq: int, payload: bytes) -> bytes:
    return _JSON_HEAD.pack(JSON, seq, len(payload)) + payload


def json_frames(payloads: Sequence[bytes]) -> bytes:
    pack = _JSON_HEAD.pack
    parts: list[bytes] = []
    for seq, p in enumerate(payloads, start=1):
        parts.append(pack(JSON, seq, len(p)))
        parts.append(p)
    return b"".join(parts)


def compressed_frame(frames: bytes, level: int) -> bytes:
    z = zlib.compress(frames, level)
    return COMPRESSED + _U32.pack(len(z)) + z


def encode_window(payloads: Sequence[bytes], level: int = 0) -> bytes:
    """The whole wire form of one window; level 0 = no compressed frame, 1..9 = zlib level."""
    frames = json_frames(payloads)
    if level > 0:
        frames = compressed_frame(frames, level)
    return window_frame(len(payloads)) + frames


def parse_ack(frame: bytes) -> int:
    """The seq of one 6-byte ACK frame; ProtocolError for anything else."""
    if len(frame) != ACK_SIZE or frame[:2] != ACK:
        raise ProtocolError(f"expected an ACK frame '2A', got {frame[:ACK_SIZE]!r}")
    return int(_U32.unpack_from(frame, 2)[0])
