"""/metrics (Prometheus text format, read back with prometheus_client's parser) and /healthz."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector import metrics_http
from collector.metrics_http import MetricsServer, exposition, health


def shipper(name: str, type_: str, **over) -> dict:
    base = {"type": type_, "health": "ok", "queued_events": 2, "queued_bytes": 200, "in_flight": 1,
            "in_flight_requests": 1, "spool_events": 0, "spool_bytes": 0, "oldest_event_age_s": None,
            "sent": 12, "requests": 3, "acked": 11, "retried": 1, "dead_lettered": 0,
            "spool_corrupt_skipped": 0, "put_wait_s": 0.0, "dropped": {}, "last_error": ""}
    base.update(over)
    return base


DOC = {
    "shippers": {
        "files": shipper("files", "file"),
        'we"ird\\name': shipper("x", "kafka", dropped={"queue_full_drop_oldest": 4, "shutdown": 1},
                                  spool_events=7, spool_bytes=7000, oldest_event_age_s=12.5,
                                  health="retrying",
                                  last_error="broker down\nreally", put_wait_s=1.5),
    },
    "failing": ['we"ird\\name'],
    "scheduler": {"queries": 4, "executions": 9, "errors": 1, "skipped": 0, "denylisted": 1,
                  "backpressure_s": 2.25},
    "process": {"pid": 1, "version": "0.1.0", "rss_bytes": 52428800, "cpu_user_s": 1.25, "cpu_system_s": 0.5,
                "start_time": 1767225600.0, "threads": 5},
}


def parsed(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_exposition_parses_with_exact_values():
    text = exposition(DOC)
    samples = parsed(text)
    files = (("shipper", "files"), ("type", "file"))
    weird = (("shipper", 'we"ird\\name'), ("type", "kafka"))
    assert samples[("quarry_shipper_up", files)] == 1 and samples[("quarry_shipper_up", weird)] == 0
    assert samples[("quarry_shipper_events_acked_total", files)] == 11
    assert samples[("quarry_shipper_events_sent_total", weird)] == 12
    assert samples[("quarry_shipper_events_queued", files)] == 2
    assert samples[("quarry_shipper_spool_bytes", weird)] == 7000
    assert samples[("quarry_shipper_oldest_event_age_seconds", weird)] == 12.5
    assert samples[("quarry_shipper_oldest_event_age_seconds", files)] == 0
    assert samples[("quarry_shipper_put_wait_seconds_total", weird)] == 1.5
    dropped = "quarry_shipper_events_dropped_total"
    assert samples[(dropped, (("reason", "queue_full_drop_oldest"), *weird))] == 4
    assert samples[(dropped, (("reason", "shutdown"), *weird))] == 1
    assert samples[("quarry_scheduler_backpressure_seconds_total", ())] == 2.25
    assert samples[("quarry_scheduler_denylisted_queries", ())] == 1
    assert samples[("quarry_process_resident_memory_bytes", ())] == 52428800
    assert samples[("quarry_process_cpu_seconds_total", ())] == 1.75
    assert samples[("quarry_info", (("version", "0.1.0"),))] == 1
    # counters carry _total in the sample name and are typed counter; one HELP/TYPE per family
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert types["quarry_shipper_events_acked"] == "counter"
    assert types["quarry_shipper_spool_bytes"] == "gauge"
    assert text.count("# TYPE quarry_shipper_events_acked_total counter") == 1
    assert len(samples) == 2 * len(metrics_http.SHIPPER_METRICS) + 2 + len(metrics_http.SCHEDULER_METRICS) \
        + len(metrics_http.PROCESS_METRICS) + 1


def test_exposition_without_shippers_is_still_valid():
    samples = parsed(exposition({"shippers": {}, "failing": [], "scheduler": {}, "process": {}}))
    assert samples[("quarry_scheduler_queries", ())] == 0
    assert not any(name.startswith("quarry_shipper_") for name, _ in samples)


def test_health_200_or_503_naming_the_failing_sinks():
    assert health({"failing": [], "shippers": {}}) == (200, b"ok\n")
    code, body = health(DOC)
    assert code == 503
    assert json.loads(body) == {"status": "failing", "failing": {'we"ird\\name': {
        "health": "retrying", "last_error": "broker down\nreally"}}}


async def request(port: int, raw: bytes, *, read_all: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    async with asyncio.timeout(10):
        data = await reader.read() if read_all else b""
    writer.close()
    return data


@pytest.fixture
async def server():
    doc = {"value": DOC}
    s = MetricsServer(lambda: doc["value"], host="127.0.0.1", port=0, max_request=1024, read_timeout_s=0.3)
    await s.start()
    s.doc = doc  # type: ignore[attr-defined]
    yield s
    await s.stop()


async def test_server_answers_metrics_and_healthz(server):
    got = await request(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head, body = got.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    assert f"Content-Length: {len(body)}".encode() in head and b"Connection: close" in head
    assert body.decode() == exposition(DOC)
    got = await request(server.port, b"GET /healthz?verbose=1 HTTP/1.0\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and b'"failing"' in got
    server.doc["value"] = {**DOC, "failing": []}
    got = await request(server.port, b"GET /healthz HTTP/1.1\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\nok\n")


@pytest.mark.parametrize("raw,code", [
    (b"GET / HTTP/1.1\r\n\r\n", b"404"),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"404"),
    (b"GET /metrics/../etc HTTP/1.1\r\n\r\n", b"404"),
    (b"garbage\r\n\r\n", b"400"),
    (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n", b"431"),
])
async def test_server_refuses_anything_else(server, raw, code):
    got = await request(server.port, raw)
    assert got.split(b" ", 2)[1] == code


async def test_slow_or_silent_client_is_cut_off_after_the_read_timeout(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /metrics HTTP/1.1\r\n")  # never finishes its headers
    async with asyncio.timeout(5):
        got = await reader.read()
    writer.close()
    assert got.startswith(b"HTTP/1.1 408 ")


async def test_a_failing_status_source_gives_500_and_the_server_keeps_serving(server):
    def boom():
        raise RuntimeError("no status")

    server._document = boom
    assert (await request(server.port, b"GET /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 500 ")
    server._document = lambda: DOC
    assert (await request(server.port, b"GET /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 200 ")


async def test_stop_closes_the_port_and_open_connections():
    s = MetricsServer(lambda: DOC, port=0, read_timeout_s=30)
    await s.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
    writer.write(b"GET /met")  # an idle client must not hold up shutdown
    await writer.drain()
    await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        await s.stop()
        assert await reader.read() == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", s.port)
