"""aiokafka exceptions → what happens to the messages they concern, and per-message verdicts → one Outcome.

Table (first match wins):

| exception | verdict |
|---|---|
| MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError | too large (split; one record: reject) |
| TopicAuthorizationFailedError, InvalidTopicError, UnknownTopicOrPartitionError (confirmed absent), | reject |
| CorruptRecordException/InvalidMessageError, InvalidTimestampError, PolicyViolationError, | |
| UnsupportedForMessageFormatError, InvalidRequiredAcksError | |
| producer-state errors (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced, | retry, and restart the producer |
| ProducerClosed, IllegalStateError) and any other unclassified error | |
| KafkaError with `retriable` (connection, NotEnoughReplicas, LeaderNotAvailable, RequestTimedOut, ...), | retry |
| KafkaTimeoutError, asyncio/OS timeouts and socket errors, authentication failures | |

Authentication and cluster-authorization failures are retried, not rejected: they concern the producer's
credentials, not the events, and dead-lettering every event because a password expired would lose the stream.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import errors as ke  # type: ignore[import-untyped]

from collector.pipeline.api import Delivered, Outcome, Partial, Rejected, Retry, TooLarge

TOO_LARGE = (ke.MessageSizeTooLargeError, ke.RecordListTooLargeError, ke.RecordTooLargeError)
REJECT = (ke.TopicAuthorizationFailedError, ke.InvalidTopicError, ke.CorruptRecordException,
          ke.InvalidMessageError, ke.InvalidTimestampError, ke.PolicyViolationError,
          ke.UnsupportedForMessageFormatError, ke.InvalidRequiredAcksError)
RESTART = (ke.OutOfOrderSequenceNumber, ke.UnknownProducerId, ke.InvalidProducerEpoch, ke.ProducerFenced,
           ke.ProducerClosed, ke.IllegalStateError)
CREDENTIALS = (ke.AuthenticationFailedError, ke.SaslAuthenticationFailed, ke.ClusterAuthorizationFailedError,
               ke.AuthenticationMethodNotSupported, ke.UnsupportedSaslMechanismError, ke.IllegalSaslStateError)


@dataclass(frozen=True)
class Verdict:
    action: str  # "retry" | "reject" | "too_large"
    reason: str
    restart: bool = False  # the producer is unusable: tear it down and start a new one


def describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text and text != name else name


def verdict(exc: BaseException, *, topic_exists: bool | None = None) -> Verdict:
    """Classify one exception raised by send_batch/partitions_for or set on a batch future.

    `topic_exists`: for UnknownTopicOrPartitionError, whether a fresh metadata request saw the topic
    (False: the broker answered and it is absent, so auto-create is off → reject; None/True → retry).
    """
    why = describe(exc)
    if isinstance(exc, TOO_LARGE):
        return Verdict("too_large", why)
    if isinstance(exc, ke.UnknownTopicOrPartitionError):
        if topic_exists is False:
            return Verdict("reject", f"{why} (the topic does not exist and the broker does not auto-create it)")
        return Verdict("retry", why)
    if isinstance(exc, REJECT):
        return Verdict("reject", why)
    if isinstance(exc, CREDENTIALS):
        return Verdict("retry", f"{why} (check the sasl/tls settings)", restart=True)
    if isinstance(exc, RESTART):
        return Verdict("retry", why, restart=True)
    if isinstance(exc, (ke.KafkaTimeoutError, asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return Verdict("retry", why)
    if isinstance(exc, ke.KafkaError) and exc.retriable:
        return Verdict("retry", why)
    if isinstance(exc, OSError):
        return Verdict("retry", why, restart=True)
    return Verdict("retry", f"unclassified: {why}", restart=True)


class Tally:
    """Per-message results of one request; turns into the single Outcome the pipeline acts on."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.delivered: set[int] = set()
        self.retry: dict[int, str] = {}
        self.rejected: dict[int, str] = {}
        self.too_large: dict[int, str] = {}

    def ok(self, indices: list[int]) -> None:
        self.delivered.update(indices)

    def add(self, indices: list[int], v: Verdict) -> None:
        target = {"retry": self.retry, "reject": self.rejected, "too_large": self.too_large}[v.action]
        for i in indices:
            target[i] = v.reason

    def reject(self, i: int, reason: str) -> None:
        self.rejected[i] = reason

    def settled(self) -> set[int]:
        return self.delivered | set(self.retry) | set(self.rejected) | set(self.too_large)

    def outcome(self, pending_reason: str = "no answer before send_timeout_ms") -> Outcome:
        """Unsettled indices (a timeout) are retried; too large splits when the request has >1 record."""
        for i in range(self.n):
            if i not in self.delivered and i not in self.retry and i not in self.rejected \
                    and i not in self.too_large:
                self.retry[i] = pending_reason
        if self.too_large:
            if self.n > 1:
                # The pipeline splits the whole request; parts already delivered are sent again with the
                # same event ids (at-least-once; consumers dedupe on the key/header).
                return TooLarge(next(iter(self.too_large.values())))
            self.rejected.update(self.too_large)
        if len(self.delivered) == self.n:
            return Delivered()
        if len(self.retry) == self.n:
            return Retry(_first(self.retry))
        if len(self.rejected) == self.n and len(set(self.rejected.values())) == 1:
            return Rejected(_first(self.rejected))
        return Partial(retry=tuple(sorted(self.retry)), rejected=tuple(sorted(self.rejected.items())),
                       retry_reason=_first(self.retry) if self.retry else "")


def _first(d: dict[int, str]) -> str:
    return d[min(d)]
