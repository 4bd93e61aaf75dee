"""Fast /proc readers shared by the process family, sockets and memory tables.

os.open/os.read avoid the buffered-file machinery: /proc files are small and read whole, and the
processes table reads several per process.
"""

from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def read(path: str, limit: int = 1 << 20) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        total = 0
        while total < limit:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
            total += len(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str) -> str:
    return read(path).decode("utf-8", "replace")


def pids(proc: str) -> list[int]:
    return [int(d) for d in os.listdir(proc) if d.isdigit()]


def status_fields(raw: bytes) -> dict[str, str]:
    out = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
    return out


def stat_fields(raw: bytes) -> tuple[str, list[str]]:
    """(comm, fields after comm) of /proc/<pid>/stat; comm may hold spaces and parentheses."""
    text = raw.decode("utf-8", "replace")
    lp = text.find("(")
    rp = text.rfind(")")
    return text[lp + 1 : rp], text[rp + 2 :].split()


def boot_time(proc: str) -> int:
    try:
        for line in read_text(f"{proc}/stat").splitlines():
            if line.startswith("btime "):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None
