"""Event publishers: background sources that fill the evented tables while the daemon runs.

- `uevent.UeventPublisher`: the kernel's uevent netlink socket -> hardware_events (osquery publisher "udev").
- `fim.FimPublisher`: watchfiles over the config's `file_paths` -> file_events (osquery publisher "inotify").

Both have the same life cycle, independent of the asyncio loop (each runs one daemon thread, so a slow
hash or a burst of events never stalls the loop): `start() -> bool` (False, with one warning logged, when
the source cannot run here; the daemon keeps going), `stop(timeout=...)` (joins the thread; call it through
`asyncio.to_thread` from the loop). They write rows to a collector.eventstore.EventStore and report
themselves in osquery_events through `EventStatus`.

    store = EventStore(state, expiry=..., max_events=...)
    attach(runtime, store)                      # evented tables now read the store
    hw = UeventPublisher(store, runtime=runtime); hw.start()
    fim = FimPublisher(store, runtime=runtime); fim.update(file_paths, exclude_paths); fim.start()
"""

from __future__ import annotations

from typing import Any

from collector.runtime import EVENT_SUBSCRIBERS, EventInfo, Runtime


def attach(runtime: Runtime, store: Any) -> None:
    """Give the runtime its event store and the osquery_events rows (inactive until a publisher starts)."""
    with runtime.lock:
        runtime.event_store = store
        have = {(e.type, e.name) for e in runtime.events}
        for e in Runtime.inactive_events():
            if (e.type, e.name) not in have:
                runtime.events.append(e)


class EventStatus:
    """The osquery_events rows of one publisher and its subscriber, updated in place under the runtime lock.

    osquery's meanings: `events` counts events the publisher fired / the subscriber added since start,
    `subscriptions` the subscription contexts (FIM: one per configured path pattern), `refreshes` the
    publisher's run-loop restarts, `active` whether it runs.
    """

    def __init__(self, runtime: Runtime | None, subscriber: str) -> None:
        self.runtime = runtime
        self.publisher = EVENT_SUBSCRIBERS[subscriber]
        self.subscriber = subscriber
        self._pub = EventInfo(self.publisher, self.publisher, "publisher")
        self._sub = EventInfo(subscriber, self.publisher, "subscriber")
        if runtime is not None:
            with runtime.lock:
                self._pub = self._find(runtime, self._pub)
                self._sub = self._find(runtime, self._sub)

    @staticmethod
    def _find(runtime: Runtime, wanted: EventInfo) -> EventInfo:
        for e in runtime.events:
            if e.type == wanted.type and e.name == wanted.name:
                return e
        runtime.events.append(wanted)
        return wanted

    def _locked(self) -> Any:
        return self.runtime.lock if self.runtime is not None else _NoLock()

    def set_active(self, active: bool, subscriptions: int | None = None) -> None:
        with self._locked():
            self._pub.active = self._sub.active = active
            if subscriptions is not None:
                self._pub.subscriptions = self._sub.subscriptions = subscriptions

    def fired(self, count: int) -> None:
        with self._locked():
            self._pub.events += count

    def added(self, count: int) -> None:
        with self._locked():
            self._sub.events += count

    def refreshed(self) -> None:
        with self._locked():
            self._pub.refreshes += 1

    def snapshot(self) -> tuple[EventInfo, EventInfo]:
        """Copies of (publisher, subscriber) rows, for tests and status logs."""
        with self._locked():
            return EventInfo(**vars(self._pub)), EventInfo(**vars(self._sub))


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
