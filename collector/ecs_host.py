"""Facts about the queried host and the collector for ECS host.* and agent.* (collector/ecs.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from collector import __version__
from collector.ecs_convert import REJECT, ip_specified, mac, text

log = logging.getLogger("quarry.ecs")


@dataclass(frozen=True)
class HostFacts:
    """The queried machine (ECS host.*). Build it once, with from_rows() or host_facts(engine)."""

    hostname: str
    name: str | None = None  # ECS recommends the lowercase FQDN; default: hostname lowercased
    id: str | None = None  # stable id: system_info.uuid (or the daemon's host identifier uuid)
    architecture: str | None = None
    os_type: str = "linux"  # ECS expected values: linux, macos, unix, windows, ios, android
    os_name: str | None = None
    os_version: str | None = None
    os_platform: str | None = None
    os_family: str | None = None
    os_kernel: str | None = None
    os_full: str | None = None  # default: os_name + " " + os_version
    ips: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()  # RFC 7042 form (AA-BB-...)

    @classmethod
    def from_rows(cls, system_info: Mapping[str, Any], os_version: Mapping[str, Any] | None = None,
                  kernel_info: Mapping[str, Any] | None = None, *, name: str | None = None,
                  ips: tuple[str, ...] = (), macs: tuple[str, ...] = ()) -> HostFacts:
        """From the rows of osquery's system_info, os_version and kernel_info tables."""
        osv = os_version or {}

        def s(row: Mapping[str, Any], key: str) -> str | None:
            v = row.get(key)
            return text(v) if v not in (None, "") else None

        hostname = s(system_info, "hostname") or s(system_info, "computer_name") or "localhost"
        return cls(hostname=hostname, name=name, id=s(system_info, "uuid"),
                   architecture=s(system_info, "cpu_type") or s(osv, "arch"),
                   os_name=s(osv, "name"), os_version=s(osv, "version"), os_platform=s(osv, "platform"),
                   os_family=(s(osv, "platform_like") or s(osv, "platform") or "").split(" ")[0] or None,
                   os_kernel=s(kernel_info or {}, "version"), ips=tuple(ips), macs=tuple(macs))


@dataclass(frozen=True)
class AgentFacts:
    """The collector (ECS agent.*): id is the persistent instance id, ephemeral_id changes per start."""

    id: str
    name: str
    version: str = __version__
    type: str = "quarry"
    ephemeral_id: str | None = None


class QueryRunner(Protocol):
    def query(self, sql: str, *, timeout: float | None = None) -> Any: ...


def host_facts(engine: QueryRunner, *, name: str | None = None, timeout: float = 30.0) -> HostFacts:
    """HostFacts from osquery's own tables on this host (any of them may fail: the rest still count)."""

    def rows(sql: str) -> list[dict[str, Any]]:
        try:
            return list(engine.query(sql, timeout=timeout).dicts())
        except Exception as e:  # noqa: BLE001 - host facts are best effort, one table failing is logged
            log.warning("host facts: %s failed: %s", sql, e)
            return []

    system_info = (rows("SELECT * FROM system_info") or [{}])[0]
    os_version = (rows("SELECT * FROM os_version") or [{}])[0]
    kernel = (rows("SELECT version FROM kernel_info") or [{}])[0]
    ips: list[str] = []
    for r in rows("SELECT address FROM interface_addresses"):
        a = ip_specified(r.get("address") or "")
        if a is not REJECT and not a.startswith("127.") and a != "::1" and a not in ips:
            ips.append(a)
    macs: list[str] = []
    for r in rows("SELECT mac FROM interface_details"):
        m = mac(r.get("mac") or "")
        if m is not REJECT and m not in macs:
            macs.append(m)
    return HostFacts.from_rows(system_info, os_version, kernel, name=name, ips=tuple(ips), macs=tuple(macs))
