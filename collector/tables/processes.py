"""processes: one row per process from /proc/<pid>/{stat,status,cmdline,exe,cwd,root,io,cgroup}."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'processes',
    'All running processes on the host system.',
    columns=[
        col('pid', BIGINT, 'Process (or thread) ID', index=True, optimized=True),
        col('name', TEXT, 'The process path or shorthand argv[0]'),
        col('path', TEXT, 'Path to executed binary'),
        col('cmdline', TEXT, 'Complete argv'),
        col('state', TEXT, 'Process state'),
        col('cwd', TEXT, 'Process current working directory'),
        col('root', TEXT, 'Process virtual root directory'),
        col('uid', BIGINT, 'Unsigned user ID'),
        col('gid', BIGINT, 'Unsigned group ID'),
        col('euid', BIGINT, 'Unsigned effective user ID'),
        col('egid', BIGINT, 'Unsigned effective group ID'),
        col('suid', BIGINT, 'Unsigned saved user ID'),
        col('sgid', BIGINT, 'Unsigned saved group ID'),
        col('on_disk', INTEGER, 'The process path exists yes=1, no=0, unknown=-1'),
        col('wired_size', BIGINT, 'Bytes of unpageable memory used by process'),
        col('resident_size', BIGINT, 'Bytes of private memory used by process'),
        col('total_size', BIGINT, 'Total virtual memory size'),
        col('user_time', BIGINT, 'CPU time in milliseconds spent in user space'),
        col('system_time', BIGINT, 'CPU time in milliseconds spent in kernel space'),
        col('disk_bytes_read', BIGINT, 'Bytes read from disk'),
        col('disk_bytes_written', BIGINT, 'Bytes written to disk'),
        col('start_time', BIGINT, 'Process start time in seconds since Epoch, in case of error -1'),
        col('parent', BIGINT, 'Process parent\'s PID'),
        col('pgroup', BIGINT, 'Process group'),
        col('threads', INTEGER, 'Number of threads used by process'),
        col('nice', INTEGER, 'Process nice level (-20 to 20, default 0)'),
        col('elevated_token', INTEGER, 'Process uses elevated token yes=1, no=0', platforms=('windows',)),
        col('secure_process', INTEGER, 'Process is secure (IUM) yes=1, no=0', platforms=('windows',)),
        col('protection_type', TEXT, 'The protection type of the process', platforms=('windows',)),
        col('virtual_process', INTEGER, 'Process is virtual (e.g. System, Registry, vmmem) yes=1, no=0',
            platforms=('windows',)),
        col('elapsed_time', BIGINT, 'Elapsed time in seconds this process has been running.',
            platforms=('windows',)),
        col('handle_count', BIGINT, 'Total number of handles that the process has open.', platforms=('windows',)),
        col('percent_processor_time', BIGINT, 'Elapsed processor time in 100 nanoseconds ticks.',
            platforms=('windows',)),
        col('upid', BIGINT, "A 64bit pid that is never reused.", platforms=('darwin',)),
        col('uppid', BIGINT, "The 64bit parent pid that is never reused.", platforms=('darwin',)),
        col('cpu_type', INTEGER, 'Indicates the specific processor designed for installation.', platforms=('darwin',)),
        col('cpu_subtype', INTEGER, 'Indicates the specific processor on which an entry may be used.',
            platforms=('darwin',)),
        col('translated', INTEGER, 'Indicates whether the process is running under Rosetta.', platforms=('darwin',)),
        col('cgroup_path', TEXT, "The full hierarchical path of the process's control group"),
    ],
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
    examples=('select * from processes where pid = 1',),
    requires={"CAP_SYS_PTRACE": ["path", "cwd", "root", "disk_bytes_read", "disk_bytes_written"]},
)

_DENIED = (errno.EACCES, errno.EPERM)


def generate(ctx: Context) -> Iterator[Row]:
    proc = ctx.path("/proc")
    pids = _proc.wanted_pids(proc, ctx.eq("pid"))
    btime = _proc.boot_time(proc)
    tick_ms = 1000 / _proc.CLK_TCK
    want_path = ctx.used("path") or ctx.used("on_disk")
    want_cwd, want_root = ctx.used("cwd"), ctx.used("root")
    want_io = ctx.used("disk_bytes_read") or ctx.used("disk_bytes_written")
    want_cmdline, want_cgroup = ctx.used("cmdline"), ctx.used("cgroup_path")
    denied: dict[str, int] = {}
    for pid in pids:
        base = f"{proc}/{pid}"
        try:
            stat_raw = _proc.read(base + "/stat")
            status = _proc.status_fields(_proc.read(base + "/status"))
        except OSError:
            continue  # exited between listdir and read: osquery skips it too
        comm, f = _proc.stat_fields(stat_raw)
        uids = status.get("Uid", "").split()
        gids = status.get("Gid", "").split()
        row: Row = {
            "pid": pid,
            "name": status.get("Name", comm),
            "state": f[0] if f else None,
            "parent": int(f[1]) if len(f) > 1 else None,
            "pgroup": int(f[2]) if len(f) > 2 else None,
            "user_time": int(int(f[11]) * tick_ms) if len(f) > 12 else None,
            "system_time": int(int(f[12]) * tick_ms) if len(f) > 12 else None,
            "nice": int(f[16]) if len(f) > 16 else None,
            "threads": int(status["Threads"]) if "Threads" in status else (int(f[17]) if len(f) > 17 else None),
            "start_time": btime + int(f[19]) // _proc.CLK_TCK if len(f) > 19 and btime else -1,
            "uid": int(uids[0]) if uids else None,
            "euid": int(uids[1]) if len(uids) > 1 else None,
            "suid": int(uids[2]) if len(uids) > 2 else None,
            "gid": int(gids[0]) if gids else None,
            "egid": int(gids[1]) if len(gids) > 1 else None,
            "sgid": int(gids[2]) if len(gids) > 2 else None,
            "wired_size": _kb(status.get("VmLck")),
            "resident_size": _kb(status.get("VmRSS")),
            "total_size": _kb(status.get("VmSize")),
        }
        if want_cmdline:
            try:
                row["cmdline"] = _proc.read(base + "/cmdline").rstrip(b"\0").replace(b"\0", b" ").decode(
                    "utf-8", "replace")
            except OSError:
                row["cmdline"] = ""
        kernel_thread = not status.get("VmSize")
        if want_path:
            path = _link(base + "/exe", "path", denied, kernel_thread)
            if path is None:
                row["path"], row["on_disk"] = ("" if kernel_thread else None), -1
            else:
                deleted = path.endswith(" (deleted)")
                row["path"] = path[: -len(" (deleted)")] if deleted else path
                row["on_disk"] = 0 if deleted or not os.path.exists(ctx.path(row["path"])) else 1
        if want_cwd:
            row["cwd"] = _link(base + "/cwd", "cwd", denied, False)
        if want_root:
            row["root"] = _link(base + "/root", "root", denied, False)
        if want_io:
            try:
                io = _proc.status_fields(_proc.read(base + "/io"))
                row["disk_bytes_read"] = int(io.get("read_bytes", 0))
                row["disk_bytes_written"] = int(io.get("write_bytes", 0))
            except OSError as e:
                if e.errno in _DENIED:
                    denied["disk_bytes_read"] = denied.get("disk_bytes_read", 0) + 1
                    denied["disk_bytes_written"] = denied.get("disk_bytes_written", 0) + 1
        if want_cgroup:
            row["cgroup_path"] = _cgroup(base)
        yield row
    if denied:
        ctx.missing(denied.keys(), "permission denied reading other users' processes", "CAP_SYS_PTRACE",
                    rows=max(denied.values()))


def _kb(value: str | None) -> int | None:
    if not value:
        return None
    return int(value.split()[0]) * 1024


def _link(path: str, field: str, denied: dict[str, int], quiet: bool) -> str | None:
    try:
        return os.readlink(path)
    except OSError as e:
        if e.errno in _DENIED and not quiet:
            denied[field] = denied.get(field, 0) + 1
        return None


def _cgroup(base: str) -> str | None:
    try:
        lines = _proc.read_text(base + "/cgroup").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:]
    first = lines[0].split(":", 2) if lines else []
    return first[2] if len(first) == 3 else None
