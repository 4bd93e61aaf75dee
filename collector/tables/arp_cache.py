"""arp_cache: the IPv4 neighbour table from /proc/net/arp, parsed as osquery does."""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'arp_cache',
    'Address resolution cache, both static and dynamic (from ARP, NDP).',
    columns=[
        col('address', TEXT, 'IPv4 address target'),
        col('mac', TEXT, 'MAC address of broadcasted address', collate='nocase'),
        col('interface', TEXT, 'Interface of the network for the MAC'),
        col('permanent', TEXT, '1 for true, 0 for false'),
    ],
    platforms=('darwin', 'linux', 'windows'),
)


_ATF_COM_PERM = "0x6"


def generate(ctx: Context) -> Iterator[Row]:
    try:
        text = _proc.read_text(ctx.path("/proc/net/arp"))
    except OSError:
        return
    yield from parse(text)


def parse(text: str) -> Iterator[Row]:
    # IP address, HW type, Flags, HW address, Mask, Device; osquery skips lines without exactly 6 fields.
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) != 6:
            continue
        yield {"address": f[0], "mac": f[3], "interface": f[5], "permanent": "1" if f[2] == _ATF_COM_PERM else "0"}
