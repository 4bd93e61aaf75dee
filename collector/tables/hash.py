"""hash: md5/sha1/sha256 of the regular files a query names (same path/directory globs as `file`).

Only the digests whose columns the query reads are computed. Files are read in chunks; a file larger than
`ctx.limits.read_max` (osquery's --read_max) is not hashed, and one query hashes at most
`ctx.limits.hash_bytes`; both are reported with ctx.note, never silently (osquery returns empty digests).
`file JOIN hash USING (path)` feeds one `path =` per outer row, so only the joined files are read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import weakref
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Report, Row, col, table
from collector.tables import _glob

_CHUNK = 1 << 20
_ALGOS = ("md5", "sha1", "sha256")
_BUDGETS: weakref.WeakKeyDictionary[Report, int] = weakref.WeakKeyDictionary()

SPEC = table(
    'hash',
    'Filesystem hash data.',
    columns=[
        col('path', TEXT, 'Must provide a path or directory', index=True, required=True, optimized=True),
        col('directory', TEXT, 'Must provide a path or directory', required=True, optimized=True),
        col('md5', TEXT, 'MD5 hash of provided filesystem data', collate='nocase'),
        col('sha1', TEXT, 'SHA1 hash of provided filesystem data', collate='nocase'),
        col('sha256', TEXT, 'SHA256 hash of provided filesystem data', collate='nocase'),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
        col('mount_namespace_id', TEXT, 'Mount namespace id', hidden=True),
    ],
    platforms=('darwin', 'linux', 'windows'),
    examples=("select * from hash where path = '/etc/passwd'", "select * from hash where directory = '/etc/'"),
    requires={"CAP_DAC_READ_SEARCH": ["md5", "sha1", "sha256"], "CAP_SYS_PTRACE": ["pid_with_namespace"]},
)


def generate(ctx: Context) -> Iterator[Row]:
    algos = [a for a in _ALGOS if ctx.used(a)]
    read_max = ctx.limits.read_max
    # The byte budget is per query, and a JOIN calls this generator once per outer row: it lives with
    # the query's Report (one per Engine.query), not with this call.
    budget = _BUDGETS.get(ctx.report, ctx.limits.hash_bytes)
    state: dict = {"budget": budget, "too_big": [], "over_budget": 0, "denied": 0, "failed": 0}
    try:
        for pid_ns, ns_id, fs in _glob.namespaces(ctx):
            walker = _glob.Walker(ctx, fs)
            for found in _glob.resolve(ctx, walker):
                real = fs.real(found.path)
                try:
                    st = os.stat(real)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue  # osquery hashes regular files (or links to them) only
                row: Row = {"path": found.path, "directory": found.directory, "pid_with_namespace": pid_ns}
                if ns_id is not None:
                    row["mount_namespace_id"] = ns_id
                if algos:
                    _hash_into(ctx, row, real, st.st_size, algos, read_max, state)
                yield row
    finally:
        _report(ctx, algos, read_max, state)


def _hash_into(ctx: Context, row: Row, real: str, size: int, algos: list[str], read_max: int,
               state: dict) -> None:
    if size > read_max:
        state["too_big"].append(row["path"])
        return
    if size > state["budget"]:
        state["over_budget"] += 1
        return
    hashers = [hashlib.new(a, usedforsecurity=False) for a in algos]
    total = 0
    try:
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        state["denied" if e.errno in (errno.EACCES, errno.EPERM) else "failed"] += 1
        return
    try:
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                break
            total += len(chunk)
            # A file that grows while read (or a size-0 pseudo file) is still bounded by read_max.
            if total > read_max:
                state["too_big"].append(row["path"])
                return
            for h in hashers:
                h.update(chunk)
            ctx.check()
    except OSError:
        state["failed"] += 1
        return
    finally:
        os.close(fd)
    state["budget"] -= total
    for a, h in zip(algos, hashers):
        row[a] = h.hexdigest()


def _report(ctx: Context, algos: list[str], read_max: int, state: dict) -> None:
    big: list[str] = state["too_big"]
    if big:
        # Named, so the notes of a JOIN (one generator call per file) stay distinct and countable.
        more = f" and {len(big) - 5} more" if len(big) > 5 else ""
        ctx.note(f"not hashed, larger than read_max ({read_max} bytes): {', '.join(big[:5])}{more}")
    _BUDGETS[ctx.report] = state["budget"]
    if state["over_budget"]:
        ctx.note(f"{state['over_budget']} file(s) not hashed: the query reached its hash_bytes budget "
                 f"({ctx.limits.hash_bytes} bytes)")
    if state["denied"]:
        ctx.missing(algos, "permission denied", "CAP_DAC_READ_SEARCH", rows=state["denied"])
    if state["failed"]:
        ctx.missing(algos, "read error", None, rows=state["failed"])
