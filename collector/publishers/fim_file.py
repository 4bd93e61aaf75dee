"""What FIM reads of one file: the file_events stat columns, the hashes, and the identity used for moves.

Stat columns follow osquery's `decorateFileEvent` (a `file` table lookup: the link is followed, a dangling
one gives the link itself); hashes follow `hashMultiFromFile`: md5, sha1 and sha256 of a regular file no
larger than --read_max, "" and hashed = -1 when that is not possible.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Any

from collector.tables.file import mode_text

_CHUNK = 1 << 20

Sig = tuple[int, int, int, int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns, mode, uid, gid


def sig(st: os.stat_result) -> Sig:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode, st.st_uid,
            st.st_gid)


def identity(s: Sig) -> tuple[int, ...]:
    """What a rename keeps: device, inode, type, size and mtime. Inode numbers are reused at once after an
    unlink, so the inode alone would pair a deletion with an unrelated creation; the new file's mtime and
    size tell them apart."""
    return (s[0], s[1], stat.S_IFMT(s[5]), s[2], s[3])


def stat_columns(real: str) -> dict[str, Any]:
    try:
        st = os.stat(real)
    except OSError:
        try:
            st = os.lstat(real)
        except OSError:
            return {}
    return {"inode": st.st_ino, "uid": st.st_uid, "gid": st.st_gid, "mode": mode_text(st.st_mode),
            "size": st.st_size, "atime": int(st.st_atime), "mtime": int(st.st_mtime),
            "ctime": int(st.st_ctime)}


def hashes(real: str, read_max: int) -> dict[str, Any]:
    failed: dict[str, Any] = {"md5": "", "sha1": "", "sha256": "", "hashed": -1}
    try:
        # O_NONBLOCK: a FIFO or device named in file_paths must not hang the watcher.
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return failed
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > read_max:
            return failed
        hashers = [hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False), hashlib.sha256()]
        total = 0
        while chunk := os.read(fd, _CHUNK):
            total += len(chunk)
            if total > read_max:  # it grew while being read
                return failed
            for h in hashers:
                h.update(chunk)
    except OSError:
        return failed
    finally:
        os.close(fd)
    return {"md5": hashers[0].hexdigest(), "sha1": hashers[1].hexdigest(), "sha256": hashers[2].hexdigest(),
            "hashed": 1}
