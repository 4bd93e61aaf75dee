"""rsyslog from Debian (omkafka, omelasticsearch) against the harness's Kafka and Elasticsearch: the
C shipper used by the comparison benchmarks must work with these servers."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from aiokafka import AIOKafkaConsumer

from tests.servers.plugin import IN_CI, free_port

pytestmark = pytest.mark.realserver
N = 1000


@pytest.fixture
def rsyslogd() -> str:
    path = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")
    if not path:
        msg = "rsyslogd is missing; install with: tests/servers/setup.sh apt (rsyslog rsyslog-kafka rsyslog-elasticsearch)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


async def test_rsyslog_to_kafka_and_elasticsearch(rsyslogd, tmp_path, kafka_server, elasticsearch_server,
                                                  kafka_topic, es_index):
    port = free_port()
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{tmp_path}" maxMessageSize="64k")
module(load="imtcp")
module(load="omkafka")
module(load="omelasticsearch")
template(name="raw" type="string" string="%msg%")
template(name="json" type="string" string="{{\\"message\\":\\"%msg:::json%\\"}}")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="bench")
ruleset(name="bench") {{
  action(type="omkafka" broker=["{kafka_server.bootstrap_servers}"] topic="{kafka_topic}" template="raw"
         confParam=["compression.codec=zstd"])
  action(type="omelasticsearch" server="127.0.0.1" serverport="{elasticsearch_server.port}"
         searchIndex="{es_index}" template="json" bulkmode="on" esVersion.major="9")
}}
""")
    log = open(tmp_path / "rsyslogd.log", "w")
    proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslogd.pid")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "rsyslogd.log").read_text()
                assert time.monotonic() < deadline, "rsyslogd did not open its TCP input"
                time.sleep(0.2)
        with s:
            s.sendall(b"".join(f"<13>Nov 27 17:00:00 host app: line {i}\n".encode() for i in range(N)))

        consumer = AIOKafkaConsumer(kafka_topic, bootstrap_servers=kafka_server.bootstrap_servers,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        got: list[str] = []
        try:
            end = time.monotonic() + 60
            while len(got) < N and time.monotonic() < end:
                for recs in (await consumer.getmany(timeout_ms=1000)).values():
                    got.extend(r.value.decode().strip() for r in recs)
        finally:
            await consumer.stop()
        assert got == [f"line {i}" for i in range(N)]

        count = 0
        end = time.monotonic() + 60
        while count < N and time.monotonic() < end:
            try:  # 404 until rsyslog's first bulk request created the index
                urllib.request.urlopen(urllib.request.Request(f"{elasticsearch_server.url}/{es_index}/_refresh",
                                                              method="POST"), timeout=10).close()
                with urllib.request.urlopen(f"{elasticsearch_server.url}/{es_index}/_count", timeout=10) as r:
                    count = json.load(r)["count"]
            except urllib.error.HTTPError:
                pass
            time.sleep(0.2)
        assert count == N
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
