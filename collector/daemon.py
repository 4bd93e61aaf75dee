"""`quarry run`: osqueryd for Quarry. Wires config -> scheduler -> engine -> diff -> events -> logs/shippers.

Each part lives in its own module; this one only builds them from the flags and the config, passes results
along, reloads the config when it changes, and shuts everything down in order.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from collector import startsignals
from collector.config import load
from collector.config.load import Loaded
from collector.config.validate import validate
from collector.diff import DiffStore, is_event_query
from collector.ecs import EcsMapper
from collector.ecs_host import AgentFacts, host_facts
from collector.enginepool import EnginePool
from collector.errors import QuarryError
from collector.events import Event, LogContext, events_for
from collector.identity import host_identifier, instance_id
from collector.model import Diagnostic, QueryRun, ScheduledQuery
from collector.results_log import FilesystemLogger
from collector.runtime import Runtime
from collector.scheduler import Scheduler
from collector.state import State
from collector.table import Limits
from collector.watchdog import Denylist, Watchdog, WatchdogLimits

log = logging.getLogger("quarry.daemon")

# Where results go besides the osquery results log: set by the shipping layer (pipeline) when configured.
Sink = Callable[[list[Event], list[dict[str, Any]], ScheduledQuery], Awaitable[None]]
StatusSink = Callable[[dict[str, Any]], Awaitable[None]]


class Daemon:
    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.stopping = asyncio.Event()
        self.reloads = 0
        self.sink: Sink | None = None
        self.needs_ecs = True  # whether a shipper renders ECS documents (set with the pipeline)
        self.status_sink: StatusSink | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.early_signals: list[str] = []  # signals received before run() installed the loop's handlers
        self._pipeline_started = False

    # --- start-up -------------------------------------------------------------------------------------------
    def _flag(self, name: str) -> Any:
        return self.loaded.flag(name)

    def setup(self) -> None:
        """Everything that can fail on bad input, before the loop runs anything."""
        self.loaded = load(cli_flags=self.argv)
        if self.loaded.fatal:
            raise QuarryError("; ".join(str(d) for d in self.loaded.errors) or "config cannot be read")
        root = str(self._flag("hostfs") or "/")
        self.state = State(str(self._flag("database_path")))
        self.runtime = Runtime(flags=Runtime.flag_states(self.loaded.runtime_flags()),
                               config_path=self.loaded.config_path or "", config_hash=self.loaded.hash,
                               instance_id=instance_id(self.state))
        limits = Limits(read_max=int(self._flag("read_max")))
        self.pool = EnginePool(root=root, runtime=self.runtime, limits=limits,
                               timeout=float(self._flag("schedule_timeout") or 0) or None)
        self.engine = self.pool.engine()
        diagnostics = validate(self.loaded, self.engine)
        self._report(diagnostics)
        self.runtime.config_valid = not any(d.severity == "error" for d in diagnostics)
        self.hostname = socket.gethostname()
        ident = host_identifier(str(self._flag("host_identifier")), self.state, root=root,
                                specified=str(self._flag("specified_identifier") or "") or None)
        self.ctx = LogContext.from_flags(self._flags(), ident)
        mode = int(str(self._flag("logger_mode")), 8)
        self.logger = FilesystemLogger(
            str(self._flag("logger_path")), self.ctx, event_format=bool(self._flag("logger_event_type")),
            rotate=bool(self._flag("logger_rotate")), rotate_size=int(self._flag("logger_rotate_size")),
            max_files=int(self._flag("logger_rotate_max_files")), mode=mode)
        logging.getLogger("quarry").addHandler(self.logger.handler())
        self.diffs = DiffStore(self.state, int(self._flag("schedule_epoch")))
        self.mapper = EcsMapper()
        self.host = host_facts(self.engine, name=self.hostname)
        self.agent = AgentFacts(id=self.runtime.instance_id, name=self.hostname)
        self.queries = self._select()
        self.scheduler = Scheduler(
            self.queries, state=self.state, run_query=self.pool.run, on_result=self.on_result,
            workers=2, splay_percent=int(self._flag("schedule_splay_percent")),
            schedule_timeout=float(self._flag("schedule_timeout") or 0),
            decorators=self.loaded.config.decorators, run_decorators=self.pool.decorate, runtime=self.runtime,
            interrupt=self.pool.interrupt, on_status=self.on_status,
            lognames=bool(self._flag("schedule_lognames")))
        self.watchdog = None
        if not bool(self._flag("disable_watchdog")) and int(self._flag("watchdog_level")) >= 0:
            limits_ = WatchdogLimits.for_level(
                int(self._flag("watchdog_level")), memory_limit=int(self._flag("watchdog_memory_limit")),
                utilization_limit=int(self._flag("watchdog_utilization_limit")),
                latency_limit=int(self._flag("watchdog_latency_limit")))
            self.watchdog = Watchdog(self.scheduler, limits_, delay=float(self._flag("watchdog_delay")),
                                     on_status=self.on_status)
        self._build_pipeline()
        self._setup_status()
        self.publishers: list[Any] = []
        if not bool(self._flag("disable_events")):
            self._start_events(root)
        log.info("quarry %s started: %d scheduled queries, config %s", self.runtime.version, len(self.queries),
                 self.loaded.config_path)

    def _build_pipeline(self) -> None:
        from collector import shipping

        cfg = self.loaded.config
        db = Path(str(self._flag("database_path")))
        state_dir = db.parent if db.suffix == ".db" else db
        self.pipeline, errors = shipping.build(cfg.shippers, self._flags(), cfg.kafka_topics, state_dir,
                                               on_status=self._pipeline_notice)
        for e in errors:
            log.error("%s (this shipper is left out; the others run)", e)
        if self.pipeline is None:
            return

        async def results(events: list[Event], docs: list[dict[str, Any]], q: ScheduledQuery) -> None:
            items = [shipping.Item(e, d, q) for e, d in zip(events, docs)]
            waited = await self.pipeline.submit_many(items, shippers=list(q.shippers) if q.shippers else None)
            if waited > 1.0:
                log.warning("query %s: shippers applied backpressure for %.1f s", q.name, waited)

        async def status(event: dict[str, Any]) -> None:
            doc = {"host": self.ctx.host_identifier, "time": time.time(), **event}
            await self.pipeline.submit(shipping.Item(None, doc))

        # Mapping every row to ECS costs as much as the rest of a run's delivery: skip it when no shipper
        # sends ECS documents.
        self.needs_ecs = any(r.shipper.format != "osquery" for r in self.pipeline.runners.values())
        self.sink, self.status_sink = results, status

    def _setup_status(self) -> None:
        """status.json for `quarry status` (always) and the /metrics + /healthz endpoint (--metrics_port)."""
        from collector import status

        self.status = status.StatusPublisher(
            status.status_path(str(self._flag("database_path"))), runtime=self.runtime,
            scheduler=self.scheduler,
            shippers=self.pipeline.snapshot if self.pipeline is not None else None,
            secrets=status.secret_values(self.loaded.config.shippers),
            interval_s=float(self._flag("status_interval")))
        self.metrics: Any = None
        if int(self._flag("metrics_port")):
            from collector.metrics_http import MetricsServer

            self.metrics = MetricsServer(self.status.document, host=str(self._flag("metrics_address")),
                                         port=int(self._flag("metrics_port")))

    def _pipeline_notice(self, notice: dict[str, Any]) -> None:
        # Drops and dead letters go to the status log only: feeding them back into the pipeline could loop.
        self.logger.log_status(1, "shipping: " + orjson.dumps(notice).decode())

    def _flags(self) -> dict[str, Any]:
        return {name: setting.value for name, setting in self.loaded.flags.items()}

    def _report(self, diagnostics: list[Diagnostic]) -> None:
        for d in diagnostics:
            (log.error if d.severity == "error" else log.warning)("%s", d)

    def _select(self) -> list[ScheduledQuery]:
        denied = Denylist(self.state).active(time.time())
        queries = self.loaded.config.scheduled(self.hostname, self.engine, denylisted=denied)
        self.runtime.packs = self.loaded.config.pack_info()
        for q in queries:
            self.runtime.add_query(q.name, q.sql, q.interval)
        return queries

    def _start_events(self, root: str) -> None:
        from collector.eventstore import EventStore
        from collector.publishers import attach
        from collector.publishers.fim import FimPublisher
        from collector.publishers.uevent import UeventPublisher

        self.store = EventStore(self.state, expiry=int(self._flag("events_expiry")),
                                max_events=int(self._flag("events_max")))
        attach(self.runtime, self.store)
        self.uevent = UeventPublisher(self.store, runtime=self.runtime, root=root)
        self.fim = FimPublisher(self.store, runtime=self.runtime, root=root, read_max=int(self._flag("read_max")))
        cfg = self.loaded.config
        for problem in self.fim.update(dict(cfg.file_paths), dict(cfg.exclude_paths)):
            log.warning("%s", problem)
        for pub in (self.uevent, self.fim):
            if pub.start():
                self.publishers.append(pub)

    # --- results --------------------------------------------------------------------------------------------
    async def on_result(self, run: QueryRun, decorations: dict[str, str]) -> None:
        q = run.query
        for w in run.warnings:
            log.warning("query %s: %s", q.name, w)
        diff = self.diffs.apply(run, event_table=bool(self._flag("events_optimize")) and is_event_query(q.sql))
        if diff.empty and diff.counter != 0:
            return
        if q.skip_empty and diff.snapshot is not None and not diff.snapshot:
            return
        # The context is shared; no await happens between setting the decorations and rendering.
        decorations = dict(decorations)
        self.ctx.decorations = decorations
        events = events_for(diff, self.ctx, q)
        if self.sink is not None and events:
            # Shippers first, then the results log: once a line is in the log its events are in every
            # shipper's spool, so a SIGKILL can cost the log a run the shippers have, never the reverse
            # (the ECS mapping below takes long enough for a kill to land between the two).
            docs = ([self.mapper.event_document(e, host=self.host, agent=self.agent) for e in events]
                    if self.needs_ecs else [{} for _ in events])
            await self.sink(events, docs, q)
            self.ctx.decorations = decorations  # another query's delivery may have set its own meanwhile
        self.logger.log_diff(diff, q, events=events)

    async def on_status(self, event: dict[str, Any]) -> None:
        severity = {"info": 0, "warning": 1, "error": 2}.get(str(event.get("severity", "warning")), 1)
        self.logger.log_status(severity, str(event.get("message", event)))
        if self.status_sink is not None:
            await self.status_sink(event)

    # --- reload ---------------------------------------------------------------------------------------------
    async def reload(self, reason: str = "change") -> bool:
        from collector.config.watch import diff_configs

        new = load(cli_flags=self.argv)
        if reason != "SIGHUP" and new.hash == self.loaded.hash and set(new.files) == set(self.loaded.files):
            # A watched folder also holds other files (logs, editors' temp files): nothing of the config
            # changed. Stay quiet: a log line here could itself be the next change in that folder.
            log.debug("config files unchanged (%s)", reason)
            return False
        diagnostics = validate(new, self.engine) if not new.fatal else list(new.errors)
        change = diff_configs(self.loaded, new, diagnostics)
        if change.rejected:
            log.error("config reload (%s) rejected; keeping the running config:", reason)
            self._report([d for d in diagnostics if d.severity == "error"])
            return False
        self.loaded = new
        self.runtime.config_hash = new.hash
        self.runtime.config_valid = True
        self.diffs.epoch = int(self._flag("schedule_epoch"))
        for name in change.sql_changed:
            log.info("query %s: SQL changed; its next results start a new baseline", name)
        self.queries = self._select()
        sched_change = await self.scheduler.update(self.queries, self.loaded.config.decorators)
        if getattr(self, "fim", None) is not None:
            for problem in self.fim.update(dict(new.config.file_paths), dict(new.config.exclude_paths)):
                log.warning("%s", problem)
            self.store.configure(expiry=int(self._flag("events_expiry")), max_events=int(self._flag("events_max")))
        self.reloads += 1
        log.info("config reloaded (%s): %s; %s", reason, change.summary(), sched_change)
        return True

    async def _watch(self) -> None:
        from collector.config.watch import watch

        async def changed(paths: set[Path]) -> list[str]:
            await self.reload("files changed: " + ", ".join(sorted(str(p) for p in paths)))
            return list(self.loaded.watch)

        await watch(list(self.loaded.watch), changed, stop_event=self.stopping)

    # --- life cycle -----------------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._tasks.append(loop.create_task(self.reload("SIGHUP"))))
        stop_signals = [s for s in self.early_signals if s != "SIGHUP"]
        if stop_signals:
            log.info("%s received during start-up: stopping before the schedule starts", stop_signals[0])
            await self.shutdown()
            return 0
        if self.early_signals:
            self._tasks.append(loop.create_task(self.reload("SIGHUP")))
        if self.pipeline is not None:
            await self.pipeline.start()
            self._pipeline_started = True
        self.status.start()
        if self.metrics is not None:
            try:
                await self.metrics.start()
            except OSError as e:  # collecting goes on; the operator sees this and a failing scrape
                log.error("metrics endpoint %s:%s cannot listen: %s", self.metrics.host, self.metrics.port, e)
                self.metrics = None
        sched = loop.create_task(self.scheduler.run())
        self._tasks.append(loop.create_task(self._watch()))
        if self.watchdog is not None:
            self._tasks.append(loop.create_task(self.watchdog.run()))
        stop = loop.create_task(self.stopping.wait())
        await asyncio.wait({sched, stop}, return_when=asyncio.FIRST_COMPLETED)
        await self.shutdown()
        if sched.done() and not sched.cancelled() and sched.exception() is not None:
            raise sched.exception()  # type: ignore[misc]
        return 0

    async def shutdown(self) -> None:
        self.stopping.set()
        if self.metrics is not None:
            await self.metrics.stop()
        if self.watchdog is not None:
            self.watchdog.stop()
        await self.scheduler.stop(10.0)
        for pub in self.publishers:
            await asyncio.to_thread(pub.stop)
        if self.pipeline is not None and self._pipeline_started:
            await self.pipeline.stop(grace=10.0)
        await self.status.stop()  # the final figures, marked "stopped"
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info("quarry stopped")
        self.logger.close()
        self.state.close()


def main(argv: Sequence[str], early_signals: list[str] | None = None) -> int:
    """early_signals: startsignals.record()'s list when the caller installed it before importing this module
    (cli.cmd_run); otherwise it is installed here, first, so a stop request during start-up is honoured."""
    daemon = Daemon(argv)
    daemon.early_signals = early_signals if early_signals is not None else startsignals.record()
    level = logging.DEBUG if "--verbose" in argv else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The search clients log every failed connection attempt with a traceback (hundreds a minute during an
    # outage); the pipeline already reports each outage once with its reason.
    for noisy in ("elastic_transport", "opensearch", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR if level > logging.DEBUG else logging.DEBUG)
    # aiokafka logs each failed connection at ERROR (one every few seconds while a broker is down, from every
    # reconnect and health probe); the shipper reports the outage, its reason and the recovery itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL if level > logging.DEBUG else logging.DEBUG)
    os.umask(0o027)  # before setup(): what it creates (state, spool, shipper state files) is never world-readable
    try:
        daemon.setup()
    except QuarryError as e:
        log.error("%s", e)
        return 1
    if daemon.metrics is not None:
        try:  # before the drop below: a port under 1024 needs root to listen on
            daemon.metrics.bind()
        except OSError as e:  # collecting goes on; the operator sees this and a failing scrape
            log.error("metrics endpoint %s:%s cannot listen: %s", daemon.metrics.host, daemon.metrics.port, e)
            daemon.metrics = None
    user = str(daemon.loaded.flag("run_as_user"))
    if user:
        from collector import privdrop

        try:  # everything that needs root (state db, logs, event sockets) is open by now
            privdrop.run_as(user, str(daemon.loaded.flag("run_as_capabilities")),
                            database_path=str(daemon.loaded.flag("database_path")),
                            logger_path=str(daemon.loaded.flag("logger_path")))
        except (QuarryError, OSError) as e:
            log.error("cannot run as %s: %s", user, e)
            return 1
    # Start-up objects (tables, specs, mapping, config) live as long as the process: keep them out of the
    # collector's scans, which otherwise cost about a quarter of the pipeline's drain rate.
    gc.freeze()
    return asyncio.run(daemon.run())
