"""The contract between the shared pipeline and each shipper (style.md §3, design.md).

A shipper encodes a batch, sends it, and classifies the answer; it never retries, sleeps or drops on its own.
Everything else (bounded queue, spool, batching, concurrency, backoff, dead letters, metrics, shutdown) is the
pipeline's, written once.

    class MyShipper:
        name = "splunk_main"; type = "splunk_hec"; format = "osquery"
        async def open(self) -> None: ...
        async def healthcheck(self) -> Health: ...
        def encode(self, batch: list[Record]) -> Request: ...
        async def send(self, request: Request) -> Outcome: ...     # classify inside, return an Outcome
        async def close(self) -> None: ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Format = Literal["osquery", "ecs"]
Kind = Literal["result", "snapshot", "status"]


@dataclass(frozen=True)
class Record:
    """One event as a shipper receives it: already rendered in the shipper's format.

    `payload` is one osquery results line or one ECS document (JSON bytes, no trailing newline).
    `id` is the event's deterministic id (ES _id, Kafka key/header, HEC indexed field).
    """

    id: str
    payload: bytes
    name: str  # scheduled query name, or "quarry.status" for status events
    kind: Kind = "result"
    table: str | None = None  # primary table of the query (ES data stream, topic/index routing)
    time: float = 0.0  # event time, unix seconds
    host: str = ""
    route: dict[str, str] = field(default_factory=dict)  # per-query overrides: topic, index, file, sourcetype

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass
class Request:
    """What encode() produced for one batch: opaque to the pipeline except for its records and size."""

    records: list[Record]
    body: Any
    size: int = 0


# --- outcomes: the four answers a shipper gives ---------------------------------------------------------
@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class Retry:
    reason: str
    after: float | None = None  # seconds, from Retry-After or the protocol


@dataclass(frozen=True)
class Rejected:
    reason: str  # permanent: every record of the request goes to the dead-letter file with this reason


@dataclass(frozen=True)
class Partial:
    """Some records delivered; indices (into request.records) to retry and to reject with reasons."""

    retry: tuple[int, ...] = ()
    rejected: tuple[tuple[int, str], ...] = ()
    retry_reason: str = ""
    after: float | None = None


@dataclass(frozen=True)
class TooLarge:
    """The destination refused the request as too large (HTTP 413, Kafka MESSAGE_TOO_LARGE): split it."""

    reason: str


Outcome = Delivered | Retry | Rejected | Partial | TooLarge


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""


@runtime_checkable
class Shipper(Protocol):
    name: str  # the instance name from the config's `shippers` section
    type: str  # the module: file, splunk_hec, elasticsearch, opensearch, logstash, kafka
    format: Format

    async def open(self) -> None: ...

    async def healthcheck(self) -> Health: ...

    def encode(self, batch: list[Record]) -> Request: ...

    async def send(self, request: Request) -> Outcome: ...

    async def close(self) -> None: ...
