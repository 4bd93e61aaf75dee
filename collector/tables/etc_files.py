"""etc_hosts, etc_services, etc_protocols: line parsers of the classic /etc name databases, as osquery splits them.

osquery's split() breaks on any whitespace and drops empty pieces; a '#' ends the data part and the
comment pieces are trimmed and re-joined with " # ".
"""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table

ETC_HOSTS_SPEC = table(
    'etc_hosts',
    'Line-parsed /etc/hosts.',
    columns=[
        col('address', TEXT, 'IP address mapping'),
        col('hostnames', TEXT, 'Raw hosts mapping'),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
    ],
    generator='gen_etc_hosts',
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
    requires={"CAP_SYS_PTRACE": ["*"]},
)

ETC_SERVICES_SPEC = table(
    'etc_services',
    'Line-parsed /etc/services.',
    columns=[
        col('name', TEXT, 'Service name'),
        col('port', INTEGER, 'Service port number'),
        col('protocol', TEXT, 'Transport protocol (TCP/UDP)'),
        col('aliases', TEXT, 'Optional space separated list of other names for a service'),
        col('comment', TEXT, 'Optional comment for a service.'),
    ],
    generator='gen_etc_services',
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
)

ETC_PROTOCOLS_SPEC = table(
    'etc_protocols',
    'Line-parsed /etc/protocols.',
    columns=[
        col('name', TEXT, 'Protocol name'),
        col('number', INTEGER, 'Protocol number'),
        col('alias', TEXT, 'Protocol alias'),
        col('comment', TEXT, 'Comment with protocol description'),
    ],
    generator='gen_etc_protocols',
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
)


SPECS = [ETC_HOSTS_SPEC, ETC_SERVICES_SPEC, ETC_PROTOCOLS_SPEC]


def _read(ctx: Context, path: str, pid: int | None = None) -> str | None:
    # pid_with_namespace: osquery reads the file inside that process's mount namespace, i.e. its root.
    real = ctx.path(f"/proc/{pid}/root{path}") if pid else ctx.path(path)
    try:
        with open(real, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def _pids(ctx: Context) -> list[int]:
    wanted = ctx.eq("pid_with_namespace")
    if wanted is None:
        return [0]
    return sorted({int(p) for p in wanted if str(p).lstrip("-").isdigit()})


def gen_etc_hosts(ctx: Context) -> Iterator[Row]:
    for pid in _pids(ctx):
        text = _read(ctx, "/etc/hosts", pid)
        if text is None:
            if pid:
                ctx.missing(["address"], f"cannot read /proc/{pid}/root/etc/hosts", "CAP_SYS_PTRACE", rows=0)
            continue
        for row in parse_hosts(text):
            row["pid_with_namespace"] = pid
            yield row


def parse_hosts(text: str) -> Iterator[Row]:
    for line in text.split("\n"):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        row: Row = {"address": f[0]}
        if len(f) > 1:
            names = []
            for name in f[1:]:
                if name.startswith("#"):
                    break
                names.append(name)
            row["hostnames"] = " ".join(names)
        yield row


def _comment(pieces: list[str]) -> str | None:
    parts = [p.strip() for p in pieces if p.strip()]
    return " # ".join(parts) if parts else None


def gen_etc_services(ctx: Context) -> Iterator[Row]:
    text = _read(ctx, "/etc/services")
    if text is not None:
        yield from parse_services(text)


def _entries(text: str) -> Iterator[tuple[list[str], list[str]]]:
    """(fields, comment pieces) of each non-comment line, split as osquery splits /etc/services and protocols."""
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        pieces = [p for p in line.split("#") if p.strip()]
        if pieces:
            yield pieces[0].split(), pieces[1:]


def parse_services(text: str) -> Iterator[Row]:
    for info, comment in _entries(text):
        if len(info) < 2:
            continue
        port_proto = [p for p in info[1].split("/") if p]
        if len(port_proto) != 2 or not port_proto[0].isdigit():
            continue
        yield {
            "name": info[0],
            "port": int(port_proto[0]),
            "protocol": port_proto[1],
            "aliases": " ".join(info[2:]),
            "comment": _comment(comment),
        }


def gen_etc_protocols(ctx: Context) -> Iterator[Row]:
    text = _read(ctx, "/etc/protocols")
    if text is not None:
        yield from parse_protocols(text)


def parse_protocols(text: str) -> Iterator[Row]:
    for fields, comment in _entries(text):
        if len(fields) < 2 or not fields[1].isdigit():
            continue
        yield {
            "name": fields[0],
            "number": int(fields[1]),
            "alias": fields[2] if len(fields) > 2 else None,
            "comment": _comment(comment),
        }
