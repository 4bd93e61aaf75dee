"""Minimal lumberjack v2 (beats protocol) sender used by the smoke test to drive the lumberjack peer.

Frames (all integers big-endian uint32): window ``'2' 'W' count``; JSON data ``'2' 'J' seq len payload``;
compressed ``'2' 'C' len zlib(frames...)``; the server answers ``'2' 'A' seq`` with the number of events
of the window it accepted (``0`` = keepalive while the batch is being processed).
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from typing import Any, Iterable


def encode_window(events: Iterable[Any], compress: bool = True) -> tuple[bytes, int]:
    frames = bytearray()
    n = 0
    for n, ev in enumerate(events, start=1):
        payload = json.dumps(ev, separators=(",", ":")).encode()
        frames += b"2J" + struct.pack(">II", n, len(payload)) + payload
    head = b"2W" + struct.pack(">I", n)
    if compress:
        z = zlib.compress(bytes(frames))
        return head + b"2C" + struct.pack(">I", len(z)) + z, n
    return head + bytes(frames), n


class LumberjackClient:
    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> "LumberjackClient":
        self._r, self._w = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._w:
            self._w.close()
            await self._w.wait_closed()

    async def send(self, events: list[Any], compress: bool = True) -> int:
        """Send one window and wait for its ACK; returns the acknowledged count."""
        assert self._r and self._w
        data, n = encode_window(events, compress)
        self._w.write(data)
        await self._w.drain()
        while True:
            hdr = await asyncio.wait_for(self._r.readexactly(6), self.timeout)
            if hdr[:2] != b"2A":
                raise ConnectionError(f"unexpected frame {hdr!r}")
            (seq,) = struct.unpack(">I", hdr[2:])
            if seq == n:
                return seq
            # seq 0 = keepalive; a partial ACK would be a smaller seq: keep waiting for the rest
