"""--hostfs: every table reads the host root it is given, and warnings reach the user."""

from __future__ import annotations

import io
import subprocess
import sys

from collector.engine import Engine
from collector.registry import Registered
from collector.shell import Shell
from collector.table import TEXT, col, table


def test_cli_hostfs_reads_the_given_root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text(
        'NAME="Fixture Linux"\nVERSION_ID="7.3"\nID=fixture\nVERSION_CODENAME=rocky\n')
    p = subprocess.run([sys.executable, "-m", "collector.cli", "query", "--hostfs", str(tmp_path), "--csv",
                        "--no-header", "SELECT name, major, minor, codename FROM os_version"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "Fixture Linux,7,3,rocky\n"


def test_hostfs_paths_map_both_ways():
    from collector.table import Context

    spec = table("t", "d", [col("a", TEXT)])
    ctx = Context(spec, {}, None, root="/host/")
    assert ctx.path("/etc/passwd") == "/host/etc/passwd"
    assert ctx.host_path("/host/etc/passwd") == "/etc/passwd"
    assert Context(spec, {}, None).path("/etc") == "/etc"


def gen_partial(ctx):
    for i in range(3):
        ctx.missing(["cwd", "root"], "permission denied", "CAP_SYS_PTRACE")
        yield {"a": str(i)}


def test_missing_values_are_aggregated_into_one_warning():
    eng = Engine(tables=[Registered(table("partial", "d", [col("a", TEXT)], generator="gen_partial"), gen_partial)])
    r = eng.query("SELECT * FROM partial")
    assert r.warnings == ["partial: cwd, root unreadable in 3 row(s): permission denied (needs CAP_SYS_PTRACE)"]
    out, err = io.StringIO(), io.StringIO()
    Shell(eng, out=out, err=err).run_text("SELECT * FROM partial;")
    assert err.getvalue() == "Warning: " + r.warnings[0] + "\n"
    # a fresh query starts with no warnings
    assert eng.query("SELECT 1").warnings == []
