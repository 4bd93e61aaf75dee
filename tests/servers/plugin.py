"""pytest plugin: real servers for the shipper tests (Kafka, Elasticsearch, OpenSearch, Splunk HEC
receiver, lumberjack peer), installed by ``tests/servers/setup.sh`` and started by the per-server
scripts in this folder.

Loaded by ``tests/conftest.py`` with ``pytest_plugins = ["tests.servers.plugin"]``.

* Session-scoped fixtures start each server lazily (on first use), once, on free ports on
  127.0.0.1, and stop it at session end: ``kafka_server``, ``kafka_sasl_server`` (same broker,
  SASL_SSL listener), ``elasticsearch_server``, ``opensearch_server``, ``hec_receiver``,
  ``lumberjack_server``.
* Per-test helpers give every test its own namespace: ``kafka_topic``, ``es_index``, ``os_index``,
  ``hec_target`` (fresh token + its own output file), ``lumberjack_output`` (fresh output file).
* ``servers.outage(name)`` (or ``servers.stop(name)`` / ``servers.start_again(name)``) stops a started
  server and starts it again on the same port with its data kept, for fault tests.
* Logs and data live in one folder per session (``QUARRY_SERVERS_RUN_DIR`` or a temp dir); it is kept
  when a test failed or a server did not start, and its path is printed. A fixture that cannot start
  its server fails with the tail of the server's log.
* Tests that use these fixtures get ``@pytest.mark.realserver`` automatically. Outside CI, a server
  whose tools (Java, Maven, Go) or installation are missing makes its tests skip with the command
  that fixes it. With ``CI=true`` any skipped realserver test fails the session.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("QUARRY_SERVERS_CACHE") or Path.home() / ".cache/quarry/servers")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
START_TIMEOUT = float(os.environ.get("QUARRY_SERVERS_START_TIMEOUT", "300"))


def _versions() -> dict[str, str]:
    out = {}
    for line in (HERE / "versions.sh").read_text().splitlines():
        m = re.match(r"^([A-Z0-9_]+)=([^\s$#]+)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


VERSIONS = _versions()
JAVA17 = Path(os.environ.get("QUARRY_JAVA17_HOME", "/usr/lib/jvm/java-17-openjdk-amd64"))
JAVA25 = Path(os.environ.get("QUARRY_JAVA25_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"))

# ---------------------------------------------------------------------------------------------
# dataclasses handed to tests


@dataclass(frozen=True)
class KafkaServer:
    host: str
    port: int
    data_dir: Path
    log_file: Path

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class KafkaSaslServer:
    """The same broker's SASL_SSL listener (TLS with a harness-generated CA)."""

    host: str
    port: int
    ca_file: Path
    scram_user: str
    scram_password: str
    plain_user: str
    plain_password: str
    data_dir: Path
    log_file: Path
    scram_mechanism: str = "SCRAM-SHA-512"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        return ctx

    def client_kwargs(self, mechanism: str = "SCRAM-SHA-512") -> dict[str, Any]:
        """Keyword arguments for aiokafka producers/consumers/admin clients."""
        if mechanism == "PLAIN":
            user, pw = self.plain_user, self.plain_password
        else:
            user, pw = self.scram_user, self.scram_password
        return dict(
            bootstrap_servers=self.bootstrap_servers,
            security_protocol="SASL_SSL",
            ssl_context=self.ssl_context(),
            sasl_mechanism=mechanism,
            sasl_plain_username=user,
            sasl_plain_password=pw,
        )


@dataclass(frozen=True)
class SearchServer:
    flavor: str  # "elasticsearch" | "opensearch"
    version: str
    host: str
    port: int
    data_dir: Path
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class HecReceiver:
    """OpenTelemetry Collector splunkhec receiver; one output file per token (see hec.sh)."""

    host: str
    port: int
    data_dir: Path
    log_file: Path
    default_token: str
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def event_url(self) -> str:
        return f"{self.url}/services/collector/event"

    def output_file(self, token: str) -> Path:
        return self.data_dir / "out" / f"{token}.jsonl"

    def add_token(self, token: str, timeout: float = 15.0) -> None:
        """Register a token and wait until the receiver accepts it (the tokens file is watched)."""
        with self._lock:
            with open(self.data_dir / "tokens", "a") as f:
                f.write(token + "\n")
        deadline = time.monotonic() + timeout
        while True:
            if _http_status(f"{self.url}/services/collector/health", {"Authorization": f"Splunk {token}"}) == 200:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"HEC receiver did not pick up token {token}; log tail:\n{_tail(self.log_file)}")
            time.sleep(0.1)


@dataclass(frozen=True)
class HecTarget:
    """Per-test HEC endpoint: its own token, and the file where the receiver writes what it got."""

    url: str
    event_url: str
    token: str
    output_file: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Splunk {self.token}"}

    def read_events(self, expected: int | None = None, timeout: float = 30.0) -> list[dict[str, Any]]:
        return read_hec_output(self.output_file, expected=expected, timeout=timeout)


@dataclass
class LumberjackServer:
    host: str
    port: int
    data_dir: Path
    log_file: Path

    def switch_output(self, path: Path) -> Path:
        _run_script("lumberjack.sh", "switch", self.data_dir, path, timeout=30, log=self.log_file)
        return path


# ---------------------------------------------------------------------------------------------
# readers for what the servers wrote


def read_jsonl(path: Path, expected: int | None = None, timeout: float = 30.0) -> list[Any]:
    """JSON lines from path; with ``expected``, wait until that many lines are there."""
    deadline = time.monotonic() + timeout
    while True:
        rows = []
        if path.exists():
            with open(path, "rb") as f:
                for line in f:
                    if line.endswith(b"\n") and line.strip():
                        rows.append(json.loads(line))
        if expected is None or len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def _otlp_value(v: dict[str, Any]) -> Any:
    if not v:
        return None
    (kind, val), = v.items()
    if kind == "stringValue":
        return val
    if kind == "boolValue":
        return bool(val)
    if kind == "intValue":
        return int(val)
    if kind == "doubleValue":
        return float(val)
    if kind == "bytesValue":
        return base64.b64decode(val)
    if kind == "arrayValue":
        return [_otlp_value(x) for x in val.get("values", [])]
    if kind == "kvlistValue":
        return {kv["key"]: _otlp_value(kv.get("value", {})) for kv in val.get("values", [])}
    return val


def _otlp_attrs(attrs: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: _otlp_value(kv.get("value", {})) for kv in attrs or []}


def decode_otlp_logs(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten one OTLP-JSON logs batch (file exporter line) into one dict per HEC event:
    ``event`` (log body), ``fields`` (log attributes), ``time`` (seconds, float or None),
    ``host``/``source``/``sourcetype``/``index`` (from the resource attributes) and ``resource``."""
    out = []
    for rl in batch.get("resourceLogs", []):
        res = _otlp_attrs(rl.get("resource", {}).get("attributes"))
        for sl in rl.get("scopeLogs", []):
            for rec in sl.get("logRecords", []):
                ts = rec.get("timeUnixNano")
                out.append(
                    {
                        "event": _otlp_value(rec.get("body", {})),
                        "fields": _otlp_attrs(rec.get("attributes")),
                        "time": int(ts) / 1e9 if ts not in (None, "0", 0) else None,
                        "host": res.get("host.name"),
                        "source": res.get("com.splunk.source"),
                        "sourcetype": res.get("com.splunk.sourcetype"),
                        "index": res.get("com.splunk.index"),
                        "resource": res,
                    }
                )
    return out


def read_hec_output(path: Path, expected: int | None = None, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Events the HEC receiver wrote to ``path``, decoded; with ``expected``, wait for that many."""
    deadline = time.monotonic() + timeout
    while True:
        events: list[dict[str, Any]] = []
        for batch in read_jsonl(path):
            events.extend(decode_otlp_logs(batch))
        if expected is None or len(events) >= expected or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# plumbing


def _tail(path: Path, lines: int = 60) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
        return "\n".join(data.splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def _http_status(url: str, headers: dict[str, str] | None = None) -> int | None:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerStartError(Exception):
    pass


def _run_script(script: str, *args: Any, timeout: float, log: Path | None = None) -> str:
    cmd = [str(HERE / script), *map(str, args)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise ServerStartError(
            f"{' '.join(cmd)} timed out after {timeout}s\n--- log tail ({log}) ---\n{_tail(log) if log else ''}"
        ) from e
    if p.returncode != 0:
        raise ServerStartError(
            f"{' '.join(cmd)} failed (exit {p.returncode})\n--- script output ---\n{p.stdout}{p.stderr}"
            + (f"\n--- log tail ({log}) ---\n{_tail(log)}" if log else "")
        )
    return p.stdout


def _which(cmd: str) -> bool:
    return shutil.which(cmd) is not None


# requirement checks: (problem, command that fixes it) or None when the server can be started
def _missing(name: str) -> tuple[str, str] | None:
    setup = "tests/servers/setup.sh"
    if name == "kafka":
        if not (JAVA17 / "bin/java").exists():
            return f"no JDK 17 at {JAVA17}", "apt-get install -y openjdk-17-jdk-headless"
        home = CACHE / f"kafka-{VERSIONS['KAFKA_VERSION']}"
        if not (home / ".complete").exists():
            if not _which("mvn"):
                return "Maven is missing", f"apt-get install -y maven && {setup} kafka"
            return f"Kafka not installed in {home}", f"{setup} kafka"
    elif name in ("elasticsearch", "opensearch"):
        java = JAVA25 if name == "elasticsearch" else JAVA17
        if not (java / "bin/java").exists():
            hint = "install Temurin 25 (JDK >= 21)" if name == "elasticsearch" else "apt-get install -y openjdk-17-jdk-headless"
            return f"no JDK at {java}", hint
        ver = VERSIONS["ES_VERSION" if name == "elasticsearch" else "OS_VERSION"]
        home = CACHE / f"{name}-{ver}"
        if not (home / ".complete").exists():
            if not _which("mvn"):
                return "Maven is missing", f"apt-get install -y maven && {setup} {'es' if name == 'elasticsearch' else 'os'}"
            return f"{name} not installed in {home}", f"{setup} user {'es' if name == 'elasticsearch' else 'os'}"
    elif name in ("hec", "lumberjack"):
        binary = CACHE / "bin" / ("otelcol-quarry" if name == "hec" else "lumberjack-server")
        if not binary.exists():
            if not _which("go"):
                return "Go is missing", f"install Go >= 1.24 (https://go.dev/dl) && {setup} {'otelcol' if name == 'hec' else 'lumberjack'}"
            return f"{binary} not built", f"{setup} {'otelcol' if name == 'hec' else 'lumberjack'}"
    return None


class ServerManager:
    """Starts servers lazily, once per session; stops them all at the end."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._started: dict[str, Any] = {}
        self._errors: dict[str, str] = {}
        self._stops: list[tuple[str, Callable[[], None]]] = []
        # name -> (stop, start again on the same port with the same data); see outage()
        self._restarts: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {}
        self._down: set[str] = set()
        self.start_failed = False

    def _dir(self, name: str) -> Path:
        d = self.run_dir / name
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        return d

    def get(self, name: str) -> Any:
        if name in self._started:
            return self._started[name]
        if name in self._errors:
            pytest.fail(self._errors[name], pytrace=False)
        miss = _missing("kafka" if name == "kafka_sasl" else name)
        if miss:
            problem, fix = miss
            msg = f"{name} server unavailable: {problem}; install with: {fix}"
            if IN_CI:
                self._errors[name] = msg
                self.start_failed = True
                pytest.fail(msg, pytrace=False)
            pytest.skip(msg)
        try:
            srv = getattr(self, f"_start_{name}")()
        except ServerStartError as e:
            self.start_failed = True
            self._errors[name] = f"could not start {name} server:\n{e}"
            srv = None
        if srv is None:
            pytest.fail(self._errors[name], pytrace=False)
        self._started[name] = srv
        return srv

    def stop(self, name: str) -> None:
        """Stop a started server (its fixture object stays valid: same host, port and data)."""
        if name not in self._restarts:
            raise ValueError(f"{name} is not a started server (started: {sorted(self._restarts)})")
        self._down.add(name)
        self._restarts[name][0]()

    def start_again(self, name: str) -> None:
        """Start a stopped server on the same port with its data, and wait until it serves again.
        If it cannot, later tests that ask for it fail with the reason instead of hanging."""
        if name not in self._down:
            return
        try:
            self._restarts[name][1]()
        except Exception as e:
            self.start_failed = True
            self._errors[name] = f"could not start {name} server again after an outage:\n{e}"
            self._started.pop(name, None)
            if name == "kafka":
                self._started.pop("kafka_sasl", None)
                self._errors["kafka_sasl"] = self._errors[name]
            raise
        self._down.discard(name)

    @contextmanager
    def outage(self, name: str) -> Iterator[None]:
        """``with servers.outage("kafka"): time.sleep(60)`` — the server is down inside the block and
        serving again (same port, same data) when it ends, even when the block raised."""
        try:
            self.stop(name)
            yield
        finally:
            self.start_again(name)

    def stop_all(self) -> None:
        for name, stop in reversed(self._stops):
            try:
                stop()
            except Exception as e:  # keep stopping the others
                print(f"[tests.servers] stopping {name} failed: {e}")
        self._stops.clear()

    # -- Kafka: one broker, PLAINTEXT + SASL_SSL listeners; both fixtures share it
    def _start_kafka(self) -> KafkaServer:
        d = self._dir("kafka")
        port, cport, sport = free_port(), free_port(), free_port()
        while len({port, cport, sport}) < 3:
            cport, sport = free_port(), free_port()
        log = d / "kafka.log"
        _run_script("kafka.sh", "start", d, port, cport, sport, timeout=START_TIMEOUT, log=log)
        self._stops.append(("kafka", lambda: _run_script("kafka.sh", "stop", d, timeout=90)))
        self._wait_kafka(port, log)

        def again() -> None:
            _run_script("kafka.sh", "restart", d, timeout=START_TIMEOUT, log=log)
            self._wait_kafka(port, log)

        self._restarts["kafka"] = (lambda: _run_script("kafka.sh", "stop", d, timeout=90), again)
        return KafkaServer("127.0.0.1", port, d, log)

    def _wait_kafka(self, port: int, log: Path) -> None:
        # The broker's listeners open before it is fully ready; a metadata round-trip proves it.
        import asyncio

        from aiokafka.admin import AIOKafkaAdminClient

        async def probe() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=10000)
            await admin.start()
            try:
                await admin.list_topics()
            finally:
                await admin.close()

        deadline = time.monotonic() + 60
        while True:
            try:
                asyncio.run(probe())
                return
            except Exception as e:
                if time.monotonic() > deadline:
                    raise ServerStartError(f"Kafka metadata probe failed: {e!r}\n--- log tail ---\n{_tail(log)}")
                time.sleep(0.5)

    def _start_kafka_sasl(self) -> KafkaSaslServer:
        plain: KafkaServer = self.get("kafka")
        env = {}
        for line in (plain.data_dir / "credentials.env").read_text().splitlines():
            k, _, v = line.partition("=")
            env[k] = v
        props = (plain.data_dir / "server.properties").read_text()
        m = re.search(r"SASL_SSL://127\.0\.0\.1:(\d+)", props)
        if not m:
            raise ServerStartError("broker has no SASL_SSL listener")
        return KafkaSaslServer(
            host="127.0.0.1",
            port=int(m.group(1)),
            ca_file=Path(env["KAFKA_CA"]),
            scram_user=env["KAFKA_SCRAM_USER"],
            scram_password=env["KAFKA_SCRAM_PASSWORD"],
            plain_user=env["KAFKA_PLAIN_USER"],
            plain_password=env["KAFKA_PLAIN_PASSWORD"],
            data_dir=plain.data_dir,
            log_file=plain.log_file,
        )

    def _start_search(self, flavor: str) -> SearchServer:
        d = self._dir(flavor)
        port = free_port()
        log = d / "logs" / "quarry-test.log"
        try:
            _run_script(f"{flavor}.sh", "start", d, port, timeout=START_TIMEOUT, log=log)
        except ServerStartError:
            _run_script(f"{flavor}.sh", "stop", d, timeout=90)
            raise
        self._stops.append((flavor, lambda: _run_script(f"{flavor}.sh", "stop", d, timeout=90)))
        # the script waits for yellow: the node recovered its indices from the same path.data
        self._restarts[flavor] = (lambda: _run_script(f"{flavor}.sh", "stop", d, timeout=90),
                                  lambda: _run_script(f"{flavor}.sh", "restart", d, timeout=START_TIMEOUT, log=log))
        ver = VERSIONS["ES_VERSION" if flavor == "elasticsearch" else "OS_VERSION"]
        return SearchServer(flavor, ver, "127.0.0.1", port, d, log)

    def _start_elasticsearch(self) -> SearchServer:
        return self._start_search("elasticsearch")

    def _start_opensearch(self) -> SearchServer:
        return self._start_search("opensearch")

    def _start_hec(self) -> HecReceiver:
        d = self._dir("hec")
        port = free_port()
        token = str(uuid.uuid4())
        log = d / "otelcol.log"
        _run_script("hec.sh", "start", d, port, token, timeout=START_TIMEOUT, log=log)
        self._stops.append(("hec", lambda: _run_script("hec.sh", "stop", d, timeout=60)))
        srv = HecReceiver("127.0.0.1", port, d, log, token)
        try:
            srv.add_token(token, timeout=30)
        except TimeoutError as e:
            raise ServerStartError(str(e))

        def again() -> None:
            _run_script("hec.sh", "restart", d, timeout=START_TIMEOUT, log=log)
            deadline = time.monotonic() + 30
            while _http_status(f"{srv.url}/services/collector/health", {"Authorization": f"Splunk {token}"}) != 200:
                if time.monotonic() > deadline:
                    raise ServerStartError(f"HEC receiver not healthy after restart; log tail:\n{_tail(log)}")
                time.sleep(0.1)

        self._restarts["hec"] = (lambda: _run_script("hec.sh", "stop", d, timeout=60), again)
        return srv

    def _start_lumberjack(self) -> LumberjackServer:
        d = self._dir("lumberjack")
        port = free_port()
        log = d / "lumberjack.log"
        _run_script("lumberjack.sh", "start", d, port, timeout=START_TIMEOUT, log=log)
        self._stops.append(("lumberjack", lambda: _run_script("lumberjack.sh", "stop", d, timeout=30)))
        self._restarts["lumberjack"] = (lambda: _run_script("lumberjack.sh", "stop", d, timeout=30),
                                        lambda: _run_script("lumberjack.sh", "restart", d, timeout=60, log=log))
        return LumberjackServer("127.0.0.1", port, d, log)


# ---------------------------------------------------------------------------------------------
# pytest hooks and fixtures

SERVER_FIXTURES = {
    "kafka_server",
    "kafka_sasl_server",
    "elasticsearch_server",
    "opensearch_server",
    "hec_receiver",
    "lumberjack_server",
    "kafka_topic",
    "es_index",
    "os_index",
    "hec_target",
    "lumberjack_output",
}

_skipped_realserver: list[tuple[str, str]] = []
_manager: ServerManager | None = None


def pytest_configure(config: pytest.Config) -> None:
    # registered in pyproject.toml too; registering again is harmless and keeps -p usage working
    config.addinivalue_line("markers", "realserver: talks to a real server started by tests/servers")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())) and not item.get_closest_marker("realserver"):
            item.add_marker(pytest.mark.realserver)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and "realserver" in report.keywords:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped_realserver.append((report.nodeid, reason))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _skipped_realserver and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    tr = terminalreporter
    if IN_CI and _skipped_realserver:
        tr.section("realserver tests skipped in CI (this fails the run)", sep="=", red=True, bold=True)
        for nodeid, reason in _skipped_realserver:
            tr.write_line(f"SKIPPED {nodeid}: {reason}")
    if _manager is not None and _manager.run_dir.exists():
        tr.write_line(f"[tests.servers] server logs kept in {_manager.run_dir}")


@pytest.fixture(scope="session")
def servers(request: pytest.FixtureRequest) -> Iterator[ServerManager]:
    global _manager
    base = os.environ.get("QUARRY_SERVERS_RUN_DIR")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="quarry-servers-", dir=base or "/tmp"))
    run_dir.chmod(0o755)  # Elasticsearch/OpenSearch run as another user and must reach their dirs
    _manager = mgr = ServerManager(run_dir)
    try:
        yield mgr
    finally:
        mgr.stop_all()
        failed = request.session.testsfailed or mgr.start_failed
        if not failed and not os.environ.get("QUARRY_KEEP_SERVER_LOGS"):
            shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_server(servers: ServerManager) -> KafkaServer:
    return servers.get("kafka")


@pytest.fixture(scope="session")
def kafka_sasl_server(servers: ServerManager) -> KafkaSaslServer:
    return servers.get("kafka_sasl")


@pytest.fixture(scope="session")
def elasticsearch_server(servers: ServerManager) -> SearchServer:
    return servers.get("elasticsearch")


@pytest.fixture(scope="session")
def opensearch_server(servers: ServerManager) -> SearchServer:
    return servers.get("opensearch")


@pytest.fixture(scope="session")
def hec_receiver(servers: ServerManager) -> HecReceiver:
    return servers.get("hec")


@pytest.fixture(scope="session")
def lumberjack_server(servers: ServerManager) -> LumberjackServer:
    return servers.get("lumberjack")


def _unique(request: pytest.FixtureRequest, prefix: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]
    return f"{prefix}-{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kafka_topic(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses (auto-created by the broker on first produce)."""
    return _unique(request, "t")


def _delete_index(url: str, index: str) -> None:
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/{index}", method="DELETE"), timeout=30).close()
    except OSError:
        pass


@pytest.fixture
def es_index(request: pytest.FixtureRequest, elasticsearch_server: SearchServer) -> Iterator[str]:
    """An index name for this test on the session's Elasticsearch; deleted afterwards."""
    name = _unique(request, "quarry")
    yield name
    _delete_index(elasticsearch_server.url, name)


@pytest.fixture
def os_index(request: pytest.FixtureRequest, opensearch_server: SearchServer) -> Iterator[str]:
    """An index name for this test on the session's OpenSearch; deleted afterwards."""
    name = _unique(request, "quarry")
    yield name
    _delete_index(opensearch_server.url, name)


@pytest.fixture
def hec_target(hec_receiver: HecReceiver) -> HecTarget:
    """A fresh HEC token accepted by the receiver, with its own output file."""
    token = str(uuid.uuid4())
    hec_receiver.add_token(token)
    return HecTarget(hec_receiver.url, hec_receiver.event_url, token, hec_receiver.output_file(token))


@pytest.fixture
def lumberjack_output(request: pytest.FixtureRequest, lumberjack_server: LumberjackServer) -> Path:
    """Switch the lumberjack server to a fresh output file for this test and return its path."""
    path = lumberjack_server.data_dir / f"{_unique(request, 'events')}.jsonl"
    return lumberjack_server.switch_output(path)
