"""dns_resolvers: nameserver, sortlist and search entries of /etc/resolv.conf with glibc's resolver options.

osquery calls res_init() and reads glibc's _res; Quarry parses resolv.conf with the same rules (MAXNS=3
nameservers, MAXDNSRCH=6 search domains, last domain/search line wins, hostname's domain as the default
search) so --hostfs trees work, and computes _res.options from the `options` line.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'dns_resolvers',
    'Resolvers used by this host. Note: On Windows this data is available in the interface_details table.',
    columns=[
        col('id', INTEGER, 'Address type index or order'),
        col('type', TEXT, 'Address type: sortlist, nameserver, search'),
        col('address', TEXT, 'Resolver IP/IPv6 address'),
        col('netmask', TEXT, 'Address (sortlist) netmask length'),
        col('options', BIGINT, 'Resolver options'),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
    ],
    platforms=('darwin', 'linux'),
    requires={"CAP_SYS_PTRACE": ["*"]},
)


MAXNS, MAXDNSRCH, MAXRESOLVSORT = 3, 6, 10
RES_INIT, RES_DEBUG, RES_USEVC = 0x1, 0x2, 0x8
RES_DEFAULT = 0x40 | 0x80 | 0x200  # RES_RECURSE | RES_DEFNAMES | RES_DNSRCH
_OPTION_FLAGS = {
    "rotate": 0x4000, "edns0": 0x100000, "single-request-reopen": 0x400000, "single-request": 0x200000,
    "no_tld_query": 0x1000000, "no-tld-query": 0x1000000, "no-reload": 0x2000000, "use-vc": RES_USEVC,
    "trust-ad": 0x4000000, "no-aaaa": 0x8000000, "debug": RES_DEBUG,
}


def generate(ctx: Context) -> Iterator[Row]:
    wanted = ctx.eq("pid_with_namespace")
    pids = [0] if wanted is None else sorted({int(p) for p in wanted if str(p).lstrip("-").isdigit()})
    for pid in pids:
        path = ctx.path(f"/proc/{pid}/root/etc/resolv.conf" if pid else "/etc/resolv.conf")
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            if pid:
                ctx.missing(["address"], f"cannot read /proc/{pid}/root/etc/resolv.conf", "CAP_SYS_PTRACE", rows=0)
            continue
        for row in parse(text, _hostname(ctx)):
            row["pid_with_namespace"] = pid
            yield row


def _hostname(ctx: Context) -> str:
    if ctx.root == "/":
        return os.uname().nodename
    for p in ("/proc/sys/kernel/hostname", "/etc/hostname"):
        try:
            with open(ctx.path(p)) as f:
                return f.read().strip()
        except OSError:
            continue
    return ""


def parse(text: str, hostname: str = "") -> Iterator[Row]:
    nameservers: list[str] = []
    search: list[str] | None = None
    sortlist: list[tuple[str, int]] = []
    options = RES_DEFAULT
    for line in text.splitlines():
        f = line.split()
        if not f or f[0][0] in "#;":
            continue
        key, args = f[0], f[1:]
        if key == "nameserver" and args and len(nameservers) < MAXNS:
            addr = args[0].split("%", 1)[0]
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                continue
            nameservers.append(args[0])
        elif key == "domain" and args:
            search = [args[0]]
        elif key == "search" and args:
            search = args[:MAXDNSRCH]
        elif key == "sortlist":
            for item in args:
                if len(sortlist) >= MAXRESOLVSORT:
                    break
                entry = _sort_entry(item)
                if entry:
                    sortlist.append(entry)
        elif key == "options":
            for opt in args:
                options |= _OPTION_FLAGS.get(opt, 0)
    options |= RES_INIT
    if search is None and "." in hostname:
        search = [hostname.split(".", 1)[1]]
    for i, ns in enumerate(nameservers):
        v6 = ":" in ns
        # osquery prints "32" for every nameserver (and drops IPv6 ones it cannot format); Quarry keeps them.
        yield {"id": i, "type": "nameserver", "address": ns, "netmask": "128" if v6 else "32", "options": options}
    for i, (addr, bits) in enumerate(sortlist):
        yield {"id": i, "type": "sortlist", "address": addr, "netmask": str(bits), "options": options}
    for i, domain in enumerate(search or []):
        yield {"id": i, "type": "search", "address": domain, "options": options}


def _sort_entry(item: str) -> tuple[str, int] | None:
    """An `address[/netmask]` sortlist item; without a mask glibc uses the classful network mask."""
    addr, _, mask = item.partition("/")
    try:
        ip = ipaddress.IPv4Address(addr)
    except ValueError:
        return None
    if mask:
        try:
            return str(ip), bin(int(ipaddress.IPv4Address(mask))).count("1")
        except ValueError:
            return None
    first = ip.packed[0]
    return str(ip), 8 if first < 128 else 16 if first < 192 else 24
