"""The table -> capability matrix: declared in the specs, true to the code, published, true on this host."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from collector.engine import Engine
from collector.registry import all_tables
from collector.table import ROWS
from tests.deploy.capsupport import REPO, load_capmatrix

cm = load_capmatrix()
_WARNING = re.compile(r"^(?P<table>\w+): (?P<what>.+) unreadable in \d+ row\(s\): .* "
                      r"\(needs (?P<cap>[A-Z_+]+)\)$")


def test_published_matrix_is_current():
    assert (REPO / "docs" / "capabilities.md").read_text() == cm.render(), \
        "docs/capabilities.md is stale: run python scripts/capmatrix.py"
    assert cm.main(["--check"]) == 0


def test_declarations_name_real_capabilities_and_columns():
    declared = 0
    for name, reg in all_tables().items():
        columns = {c.name for c in reg.spec.columns}
        for cap, cols in reg.spec.requires:
            declared += 1
            assert cols, f"{name}: {cap} declares no columns (use \"*\" for whole rows)"
            for part in cm.split_caps(cap):
                assert part in cm.CAPABILITIES, f"{name}: unknown capability {part!r}"
            assert set(cols) <= columns | {ROWS}, f"{name}: {cap} names columns it does not have"
    used = {p for reg in all_tables().values() for cap in reg.spec.needs for p in cm.split_caps(cap)}
    assert used == set(cm.CAPABILITIES), "CAPABILITIES describes a capability no table declares"
    assert declared == 46


def test_every_missing_call_is_declared():
    """Static: each ctx.missing(..., capability) a table's generator can reach names a declared capability,
    and its constant columns are among the declared ones (or the declaration says whole rows)."""
    calls = cm.scan()
    with_cap = 0
    for name, reg in all_tables().items():
        declared = dict(reg.spec.requires)
        columns = {c.name for c in reg.spec.columns}
        for call in calls.get(name, ()):
            for cap in call.caps:
                with_cap += 1
                where = f"{call.file}:{call.line} ({name})"
                assert cap in declared, f"{where}: ctx.missing names {cap!r}; add it to the table's requires"
                cols = declared[cap]
                # Names that are not columns of this table are row keys (cpuid's features) or belong to a
                # sibling table sharing the helper (_pkgns echoes mount_namespace_id only where it exists).
                if call.fields is not None and ROWS not in cols:
                    named = (set(call.fields) & columns) - set(cols)
                    assert not named, f"{where}: columns {sorted(named)} not declared for {cap}"
    # The scan reached every ctx.missing call site in collector/tables from some table's generator; 50
    # (table, call, capability) triples, shared helpers counting once per table using them.
    sites = set()
    for path in (REPO / "collector" / "tables").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            func = node.func if isinstance(node, ast.Call) else None
            if isinstance(func, ast.Attribute) and func.attr == "missing":
                sites.add((str(path.relative_to(REPO)), node.lineno))
    assert len(sites) >= 57
    assert {(c.file, c.line) for found in calls.values() for c in found} == sites
    assert with_cap == 50


def test_scan_follows_helpers_and_conditional_capabilities():
    calls = cm.scan()
    by = {name: {(c.file.rsplit("/", 1)[1], cap) for c in calls[name] for cap in c.caps} for name in calls}
    assert ("_accounts.py", "CAP_DAC_READ_SEARCH") in by["shell_history"]  # Unreadable.report via read_lines
    assert ("_pkgns.py", "CAP_SYS_PTRACE") in by["deb_packages"]
    assert ("shadow.py", "CAP_DAC_READ_SEARCH") in by["shadow"]  # cap = "..." if denied else None
    assert by["os_version"] == set()


def test_config_capabilities():
    tables = cm.config_tables(REPO / "config" / "quarry.conf")
    assert {"processes", "listening_ports", "sudoers", "authorized_keys", "system_info"} <= set(tables)
    assert cm.caps_for_tables(tables) == ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"]
    assert cm.caps_for_tables(["iptables", "memory_map"]) == [
        "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]


# --- live: the same tables run as nobody, with no capability and with exactly the declared ones ------------
LIVE = ["processes", "process_envs", "process_open_files", "listening_ports", "shadow", "acpi_tables",
        "cpuid", "memory_map", "iptables", "system_info", "osquery_info", "platform_info", "smbios_tables"]
_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from collector.engine import Engine
engine, out = Engine(), {}
for t in sys.argv[2:]:
    r = engine.query(f"SELECT * FROM {t}", timeout=60)
    out[t] = {"rows": len(r.rows), "warnings": r.warnings,
              "filled": sorted({c for row in r.rows for c, v in zip(r.columns, row) if v is not None})}
print(json.dumps(out))
"""


def _run_as_nobody(tables: list[str], caps: list[str]) -> dict:
    names = ",".join(["-all"] + ["+" + c.removeprefix("CAP_").lower() for c in caps])
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", f"--inh-caps={names}",
           f"--bounding-set={names}"]
    if caps:
        cmd.append(f"--ambient-caps={names}")
    out = subprocess.run([*cmd, sys.executable, "-c", _PROBE, str(REPO), *tables], capture_output=True,
                         text=True, timeout=120, cwd="/", check=True, env={"PATH": os.environ["PATH"]})
    return json.loads(out.stdout)


def _root_run(tables: list[str]) -> dict:
    engine, out = Engine(), {}
    for t in tables:
        r = engine.query(f"SELECT * FROM {t}", timeout=60)
        out[t] = {"rows": len(r.rows), "warnings": r.warnings,
                  "filled": sorted({c for row in r.rows for c, v in zip(r.columns, row) if v is not None})}
    return out


def _cap_warnings(result: dict) -> set[tuple[str, frozenset[str]]]:
    found = set()
    for w in result["warnings"]:
        m = _WARNING.match(w)
        if m:
            what = m["what"]
            cols = frozenset([ROWS]) if what == "rows" else frozenset(what.split(", "))
            found.add((m["cap"], cols))
    return found


needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="switching to nobody with chosen capabilities needs root and setpriv")


@pytest.fixture(scope="module")
def live() -> dict[str, dict]:
    return {"root": _root_run(LIVE), "nobody": _run_as_nobody(LIVE, [])}


@needs_root
@pytest.mark.root
def test_unprivileged_gaps_are_the_declared_ones(live):
    """Without capabilities, every warning names a declared capability and columns, and every column that is
    filled for root but never for nobody is a declared one (or the table declares whole rows)."""
    for t in LIVE:
        declared = dict(all_tables()[t].spec.requires)
        root, nobody = live["root"][t], live["nobody"][t]
        for cap, cols in _cap_warnings(nobody):
            assert cap in declared, f"{t}: warning names undeclared {cap}"
            assert ROWS in declared[cap] or cols <= set(declared[cap]), f"{t}: {sorted(cols)} not declared"
        only_root = set(root["filled"]) - set(nobody["filled"])
        if nobody["rows"] and not any(ROWS in cols for cols in declared.values()):
            allowed = {c for cols in declared.values() for c in cols}
            assert only_root <= allowed, f"{t}: {sorted(only_root - allowed)} NULL for nobody, undeclared"
        if only_root or nobody["rows"] < root["rows"]:
            assert _cap_warnings(nobody), f"{t}: nobody sees less than root without a capability warning"
    # Hosts always have these gaps for nobody: the check above is not vacuous.
    proc_cols = frozenset(["cwd", "disk_bytes_read", "disk_bytes_written", "path", "root"])
    assert ("CAP_SYS_PTRACE", proc_cols) in _cap_warnings(live["nobody"]["processes"])
    assert ("CAP_DAC_READ_SEARCH", frozenset([ROWS])) in _cap_warnings(live["nobody"]["shadow"])
    assert live["nobody"]["shadow"]["rows"] == 0 and live["root"]["shadow"]["rows"] > 0
    assert live["nobody"]["process_envs"]["rows"] < live["root"]["process_envs"]["rows"]


@needs_root
@pytest.mark.root
@pytest.mark.parametrize("table", ["processes", "process_envs", "shadow", "acpi_tables", "cpuid",
                                   "memory_map", "iptables", "system_info", "platform_info"])
def test_declared_capabilities_suffice(table, live):
    """nobody with exactly the declared capabilities fills what root fills and warns no more than root."""
    caps = load_capmatrix().caps_for_tables([table])
    granted = _run_as_nobody([table], caps)[table]
    root = live["root"][table]
    assert set(granted["filled"]) == set(root["filled"]), table
    assert _cap_warnings(granted) <= _cap_warnings(root), (table, granted["warnings"], root["warnings"])
    if table in ("shadow", "iptables") and root["rows"]:
        assert granted["rows"] == root["rows"]
