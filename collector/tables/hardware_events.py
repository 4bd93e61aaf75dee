"""hardware_events: hardware add/remove/change events buffered by the daemon (evented)."""

from __future__ import annotations

from collections.abc import Iterator

from collector.tables._events import buffered
from collector.table import BIGINT, TEXT, Context, Row, col, table

SPEC = table(
    'hardware_events',
    'Hardware (PCI/USB/HID) events from UDEV or IOKit.',
    columns=[
        col('action', TEXT, 'Remove, insert, change properties, etc'),
        col('path', TEXT, 'Local device path assigned (optional)'),
        col('type', TEXT, 'Type of hardware and hardware event'),
        col('driver', TEXT, 'Driver claiming the device'),
        col('vendor', TEXT, 'Hardware device vendor'),
        col('vendor_id', TEXT, 'Hex encoded Hardware vendor identifier', collate='nocase'),
        col('model', TEXT, 'Hardware device model'),
        col('model_id', TEXT, 'Hex encoded Hardware model identifier', collate='nocase'),
        col('serial', TEXT, 'Device serial (optional)'),
        col('revision', TEXT, 'Device revision (optional)'),
        col('time', BIGINT, 'Time of hardware event', additional=True),
        col('eid', TEXT, 'Event ID', hidden=True),
    ],
    evented=True,
    platforms=('darwin', 'linux'),
)


def generate(ctx: Context) -> Iterator[Row]:
    """Buffered udev/kernel hardware events.

    In one-shot and shell mode there is no event publisher, so, like osquery's shell with events disabled,
    the table is empty and says why. The daemon's runtime carries the event store (`Runtime.event_store`,
    fed by collector.publishers.uevent from the kernel uevent netlink socket) and the rows come from there.
    """
    yield from buffered(ctx)
