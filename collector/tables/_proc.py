"""Fast /proc readers shared by the process family, sockets and memory tables.

os.open/os.read avoid the buffered-file machinery: /proc files are small and read whole, and the
processes table reads several per process.
"""

from __future__ import annotations

import errno
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


# --- helpers for the per-process tables (process_envs, process_open_*, sockets, namespaces) ----------

def wanted_pids(proc: str, values: set | None) -> list[int]:
    """The pids a generator scans: those an `=`/`IN` constraint names (as ints), else every process.

    Non-numeric constraint values cannot match an integer pid and are dropped; SQLite re-checks anyway.
    """
    if values is None:
        return pids(proc)
    out = set()
    for v in values:
        try:
            out.add(int(v))
        except (TypeError, ValueError):
            continue
    return sorted(p for p in out if p > 0)


def fd_links(proc: str, pid: int) -> list[tuple[int, str]]:
    """(fd, link target) of every descriptor of a process.

    Raises OSError when the fd directory cannot be listed: ENOENT when the process is gone, EACCES when
    it belongs to another user and we lack CAP_SYS_PTRACE (or a readlink is refused for the same
    reason). A descriptor closed between listdir and
    readlink is skipped, as osquery does.
    """
    base = f"{proc}/{pid}/fd"
    out = []
    for name in os.listdir(base):
        try:
            out.append((int(name), os.readlink(f"{base}/{name}")))
        except ValueError:
            continue
        except OSError as e:
            # Some hardened processes allow listing fd/ but not reading the links: the same denial.
            if e.errno in (errno.EACCES, errno.EPERM):
                raise
            continue
    return out


NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")


def ns_inode(proc: str, pid: int | str, name: str) -> int | None:
    """Inode of a process's namespace from the `<name>:[<inode>]` link in /proc/<pid>/ns, or None.

    Raises OSError like os.readlink (EACCES without ptrace access, ENOENT when the process is gone or
    the kernel lacks that namespace type).
    """
    link = os.readlink(f"{proc}/{pid}/ns/{name}")
    prefix = name + ":["
    if link.startswith(prefix) and link.endswith("]") and link[len(prefix):-1].isdigit():
        return int(link[len(prefix):-1])
    return None
