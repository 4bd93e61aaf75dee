"""From the config's `shippers` section (and osquery's logger flags) to a running Pipeline.

The daemon hands over result events with their ECS documents and status events; this module renders each in
the format a shipper wants (osquery line or ECS document) and submits it. Errors in one shipper's settings are
reported with its name and field, and that shipper alone is left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from collector.ecs import ECS_VERSION
from collector.ecs_convert import iso_time
from collector.events import Event
from collector.model import ScheduledQuery
from collector.pipeline import Pipeline, Record, create_shipper, parse_settings, validate_shipper

log = logging.getLogger("quarry.shipping")


@dataclass(frozen=True)
class Item:
    """One thing to ship: a result event with its ECS document, or a status event (event is None)."""

    event: Event | None
    document: dict[str, Any]
    query: ScheduledQuery | None = None


STATUS_DATASET = "osquery.status"


def status_document(doc: dict[str, Any], event_id: str, when: float) -> dict[str, Any]:
    """A status event as an ECS document: a data stream needs @timestamp, and ECS `host` is an object.

    The event's own fields (query, pid, reason ...) go under `osquery.status`, as table columns go under
    `osquery.<table>`.
    """
    rest = {k: v for k, v in doc.items() if k not in ("host", "time", "message", "severity", "id")}
    out: dict[str, Any] = {
        "@timestamp": iso_time(when),
        "ecs": {"version": ECS_VERSION},
        "event": {"id": event_id, "kind": "event", "module": "osquery", "dataset": STATUS_DATASET},
        "host": {"name": str(doc.get("host", ""))},
        "message": str(doc.get("message") or doc.get("event") or "status"),
        "log": {"level": str(doc.get("severity") or "info")},
    }
    if rest:
        out["osquery"] = {"status": rest}
    return out


def render(item: Item, fmt: str) -> Record:
    ev = item.event
    if ev is None:  # status event: osquery's JSON for the osquery format, an ECS document otherwise
        doc = item.document
        when = float(doc.get("time") or time.time())
        event_id = str(doc.get("id") or f"status-{when}")
        payload = orjson.dumps(status_document(doc, event_id, when) if fmt == "ecs" else doc)
        return Record(id=event_id, payload=payload, name="quarry.status", kind="status", table="status",
                      time=when, host=str(doc.get("host", "")))
    payload = ev.osquery_line().rstrip(b"\n") if fmt == "osquery" else orjson.dumps(item.document)
    route = dict(item.query.route) if item.query is not None else {}
    return Record(id=ev.event_id, payload=payload, name=ev.name,
                  kind="snapshot" if ev.action == "snapshot" else "result", table=ev.table,
                  time=float(ev.unix_time), host=ev.host_identifier, route=route)


def shipper_configs(shippers: Mapping[str, Any], flags: Mapping[str, Any],
                    kafka_topics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The `shippers` section, plus a kafka shipper when osquery's --logger_plugin names kafka_producer."""
    out = {name: dict(raw) for name, raw in shippers.items() if isinstance(raw, Mapping)}
    plugins = str(flags.get("logger_plugin", "filesystem")).split(",")
    if "kafka_producer" in plugins and "kafka_producer" not in out:
        from shippers.kafka import from_osquery_flags

        raw = from_osquery_flags(dict(flags), {k: list(v) for k, v in kafka_topics.items()})
        if raw is not None:
            out["kafka_producer"] = raw
    for raw in out.values():
        if raw.get("type") == "kafka" and "kafka_topics" not in raw and kafka_topics:
            raw["kafka_topics"] = {k: list(v) for k, v in kafka_topics.items()}
    return out


def build(shippers: Mapping[str, Any], flags: Mapping[str, Any], kafka_topics: Mapping[str, Any],
          state_dir: str | Path, on_status: Any = None) -> tuple[Pipeline | None, list[str]]:
    """A Pipeline over every valid shipper, and the errors of the invalid ones (which are left out)."""
    errors: list[str] = []
    made = []
    settings = {}
    for name, raw in shipper_configs(shippers, flags, kafka_topics).items():
        problems = validate_shipper(name, raw)
        if problems:
            errors.extend(problems)
            continue
        parsed, problems = parse_settings(name, raw)
        if problems:
            errors.extend(problems)
            continue
        parsed = replace(parsed, state_dir=str(state_dir))
        try:
            made.append(create_shipper(name, parsed, raw))
            settings[name] = parsed
        except Exception as e:  # noqa: BLE001 - one broken shipper must not stop the others
            errors.append(f"shippers.{name}: {e}")
    if not made:
        return None, errors
    # The runner puts each spool in <state>/spool/<name> and dead letters in <state>/deadletter/.
    pipeline = Pipeline(made, settings, Path(state_dir), render=render, on_status=on_status)
    return pipeline, errors
