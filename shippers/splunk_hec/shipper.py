"""The Splunk HEC shipper: httpx.AsyncClient → `/services/collector/event`, classified per classify.py.

Lifecycle: open() builds the client (no network); the pipeline calls healthcheck() once after open (GET
`/services/collector/health`, never blocking start-up); encode() builds a gzip'd body of concatenated
envelopes; send() POSTs it and classifies the answer. With `ack: true`, send() returns Delivered only once
HEC reports the request's ackId indexed (AckPoller), else Retry after the ack wait, so the pipeline resends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import httpx

from collector.pipeline.api import Delivered, Health, Outcome, Record, Request, Retry, TooLarge

from .acks import AckDisabled, AckPoller
from .classify import classify, describe, parse_reply
from .config import EVENT_PATH, GUID, HecConfig
from .encode import Encoded, Envelopes, compress

log = logging.getLogger("quarry.shippers.splunk_hec")
HEALTH_PATH = "/services/collector/health"
ACK_PATH = "/services/collector/ack"
THREAD_COMPRESS_BYTES = 64 * 1024  # smaller bodies compress faster than a thread hand-off


def channel_for(cfg: HecConfig, name: str, state_dir: str | None) -> tuple[str, str]:
    """(channel GUID, where it came from): the configured one, the one kept in the state dir (created on
    first use), or a new one for this process."""
    if cfg.channel:
        return cfg.channel, "config"
    if state_dir:
        path = Path(state_dir) / f"hec-channel-{name}"
        try:
            value = path.read_text(encoding="ascii").strip()
            if GUID.match(value):
                return value, str(path)
            log.warning("splunk_hec shipper %s: %s holds no GUID; writing a new one", name, path)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("splunk_hec shipper %s: cannot read %s (%s); channel is per process", name, path, e)
            return str(uuid.uuid4()), "process"
        value = str(uuid.uuid4())
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            try:
                os.fchmod(fd, 0o640)  # state files are 0640 whatever the umask at start-up
                os.write(fd, (value + "\n").encode("ascii"))
            finally:
                os.close(fd)
            tmp.replace(path)  # atomic: a crash never leaves a half-written GUID
            return value, str(path)
        except OSError as e:
            log.warning("splunk_hec shipper %s: cannot write %s (%s); channel is per process", name, path, e)
    return str(uuid.uuid4()), "process"


class HecShipper:
    type = "splunk_hec"

    def __init__(self, name: str, cfg: HecConfig, token: str, *, format: str = "osquery",
                 tls: Any = None, state_dir: str | None = None, request_timeout_s: float = 60.0) -> None:
        self.name, self.format, self.cfg = name, format, cfg
        self._token = token
        self._tls = tls  # collector.pipeline.config.TlsSettings or None
        self.channel, self.channel_source = channel_for(cfg, name, cfg.state_dir or state_dir)  # the option wins
        sourcetype = cfg.sourcetype or ("quarry:ecs" if format == "ecs" else "osquery:results")
        self.envelopes = Envelopes(source=cfg.source, sourcetype=sourcetype,
                                   status_sourcetype=cfg.status_sourcetype, index=cfg.index, host=cfg.host,
                                   fields=cfg.fields, gzip=cfg.gzip, gzip_level=cfg.gzip_level,
                                   max_request_bytes=cfg.max_request_bytes)
        # The pipeline cuts larger events to this before the first attempt. The envelope (time, host, source,
        # sourcetype, index, event id, query name) around one event stays well below 4096 bytes; the
        # configured `fields` go in every envelope too, and have no bound of their own.
        static = len(self.envelopes.static_fields.encode())
        self.max_event_bytes = max(1024, cfg.max_request_bytes - 4096 - static)
        self.ack = cfg.ack
        # send() must finish inside the pipeline's request_timeout_s, so the ack wait is what is left of it.
        self.ack_wait_s = min(cfg.ack_timeout_s, max(1.0, request_timeout_s - cfg.timeout_s - 1.0))
        if cfg.ack and self.ack_wait_s < cfg.ack_timeout_s:
            log.warning("splunk_hec shipper %s: ack wait shortened to %.0fs by request_timeout_s (%.0fs); set "
                        "request_timeout_s to at least ack_timeout_s + timeout_s + 1 (%.0fs) for the full %.0fs",
                        name, self.ack_wait_s, request_timeout_s, cfg.ack_timeout_s + cfg.timeout_s + 1,
                        cfg.ack_timeout_s)
        self._client: httpx.AsyncClient | None = None
        self._acks = AckPoller(self._post_acks, cfg.ack_poll_s)
        self._headers = {"Authorization": f"Splunk {token}", "X-Splunk-Request-Channel": self.channel,
                         "Content-Type": "application/json"}
        self.stats: dict[str, int] = {"requests": 0, "acked_requests": 0, "ack_timeouts": 0, "not_objects": 0,
                                      "transport_errors": 0}

    # --- life cycle ---------------------------------------------------------------------------------
    def _verify(self) -> Any:
        if self._tls is None:
            return True  # system CA store, verification on
        return self._tls.context()

    async def open(self) -> None:
        if self._client is None:
            c = self.cfg
            self._client = httpx.AsyncClient(
                base_url=c.url, verify=self._verify(), follow_redirects=False, trust_env=False,
                timeout=httpx.Timeout(c.timeout_s, connect=c.connect_timeout_s),
                limits=httpx.Limits(max_connections=c.max_connections, max_keepalive_connections=c.max_connections))
            log.info("splunk_hec shipper %s: %s, channel %s (%s), ack %s", self.name, c.url, self.channel,
                     self.channel_source, "on" if self.ack else "off")

    async def close(self) -> None:
        await self._acks.stop()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def healthcheck(self) -> Health:
        """GET /services/collector/health with the token (Splunk ≥ 6.6: 17 healthy, 18-20 busy, 21/22 token)."""
        await self.open()
        assert self._client is not None
        try:
            r = await self._client.get(HEALTH_PATH, headers={"Authorization": self._headers["Authorization"]})
        except httpx.HTTPError as e:
            return Health(False, f"{self.cfg.url}{HEALTH_PATH}: {type(e).__name__}: {e}")
        reply = parse_reply(r.content)
        return Health(r.status_code == 200, describe(r.status_code, reply))

    # --- encode / send ------------------------------------------------------------------------------
    def encode(self, batch: list[Record]) -> Request:
        enc = self.envelopes.encode(batch)
        if enc.not_objects:
            self.stats["not_objects"] += enc.not_objects
            log.warning("splunk_hec shipper %s: %d payload(s) were not JSON objects; sent as string events",
                        self.name, enc.not_objects)
        return Request(records=batch, body=enc, size=enc.raw_size)

    async def send(self, request: Request) -> Outcome:
        enc: Encoded = request.body
        if enc.too_large:
            return TooLarge(enc.too_large)
        await self.open()
        assert self._client is not None
        headers = self._headers
        body = enc.raw
        if enc.gzip:
            if enc.wire is None:  # once per request, kept for retries; big bodies off the event loop
                level = self.cfg.gzip_level
                enc.wire = (compress(enc.raw, level) if len(enc.raw) < THREAD_COMPRESS_BYTES
                            else await asyncio.to_thread(compress, enc.raw, level))
            body, headers = enc.wire, {**self._headers, "Content-Encoding": "gzip"}
        self.stats["requests"] += 1
        try:
            r = await self._client.post(EVENT_PATH, content=body, headers=headers)
        except httpx.TimeoutException as e:
            self.stats["transport_errors"] += 1
            return Retry(f"HEC request timed out ({type(e).__name__})")
        except httpx.HTTPError as e:  # connect/read/write/protocol errors: the server may be down
            self.stats["transport_errors"] += 1
            return Retry(f"HEC request failed: {type(e).__name__}: {e or 'no detail'}")
        reply = parse_reply(r.content)
        outcome = classify(r.status_code, r.headers, reply, enc.count)
        if not isinstance(outcome, Delivered) or not self.ack:
            return outcome
        return await self._await_ack(reply)

    async def _await_ack(self, reply: dict[str, Any]) -> Outcome:
        ack_id = reply.get("ackId")
        if not isinstance(ack_id, int) or isinstance(ack_id, bool):
            self.ack = False
            log.warning("splunk_hec shipper %s: HEC accepted data without an ackId: indexer acknowledgement is "
                        "off for this token; ack mode disabled (delivered = accepted by HEC)", self.name)
            return Delivered()
        try:
            ok = await self._acks.wait(ack_id, self.ack_wait_s)
        except AckDisabled as e:
            self.ack = False
            log.warning("splunk_hec shipper %s: %s; ack mode disabled", self.name, e)
            return Delivered()
        if ok:
            self.stats["acked_requests"] += 1
            return Delivered()
        self.stats["ack_timeouts"] += 1
        return Retry(f"no indexer acknowledgement for ackId {ack_id} on channel {self.channel} within "
                     f"{self.ack_wait_s:g}s; resending")

    async def _post_acks(self, ids: list[int]) -> dict[str, bool] | None:
        client = self._client
        if client is None:
            return None
        r = await client.post(ACK_PATH, json={"acks": ids}, headers=self._headers)
        reply = parse_reply(r.content)
        if r.status_code == 200 and isinstance(reply.get("acks"), dict):
            return reply["acks"]
        if reply.get("code") == 14:
            raise AckDisabled(describe(r.status_code, reply))
        log.warning("splunk_hec shipper %s: ack poll answered %s", self.name, describe(r.status_code, reply))
        return None
