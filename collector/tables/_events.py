"""The generator every evented table shares: rows buffered by the daemon's event store."""

from __future__ import annotations

from collections.abc import Iterator

from collector.eventstore import store_of
from collector.table import Context, Row


def buffered(ctx: Context) -> Iterator[Row]:
    """The table's buffered events; in shell and one-shot mode no publisher runs, so none, with a note."""
    store = store_of(ctx.runtime)
    if store is None:
        what = ctx.table.removesuffix("_events").replace("_", " ")
        ctx.note(f"events are disabled in this mode (no event publisher runs); only the daemon buffers "
                 f"{what} events")
        return
    for row in store.rows(ctx.table):
        ctx.check()
        yield row
