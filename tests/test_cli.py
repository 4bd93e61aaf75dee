"""`quarry query`, `quarry tables`, `quarry schema` and the shell's meta-commands."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from collector.printer import Style, render
from collector.shell import Shell

QUARRY = [sys.executable, "-m", "collector.cli"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QUARRY, *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_query_json_is_osqueryi_shape():
    p = run("query", "--json", f"SELECT pid, name FROM processes WHERE pid = {os.getpid()}")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and lines[1].startswith('  {"pid":"')
    data = json.loads(p.stdout)
    assert data[0]["pid"] == str(os.getpid()) and isinstance(data[0]["name"], str)


def test_query_error_exit_status_and_stderr():
    p = run("query", "SELECT * FROM no_such_table")
    assert p.returncode != 0 and "no such table: no_such_table" in p.stderr and p.stdout == ""


def test_query_required_column_error():
    p = run("query", "SELECT * FROM file WHERE size > 10")
    assert p.returncode != 0
    assert "Table file was queried without a required column in the WHERE clause" in p.stderr


def test_query_from_stdin_and_csv():
    p = run("query", "--csv", stdin="SELECT 1 AS a, 'x,y' AS b;")
    assert p.returncode == 0 and p.stdout == 'a,b\n1,"x,y"\n'


def test_tables_and_schema():
    p = run("tables")
    assert p.returncode == 0 and "processes" in p.stdout.split()
    s = run("schema", "processes")
    assert s.stdout.startswith("CREATE TABLE processes(`pid` BIGINT") and "PRIMARY KEY (`pid`)" in s.stdout
    assert run("schema", "nope").returncode == 1


def shell() -> tuple[Shell, io.StringIO, io.StringIO]:
    from collector.engine import Engine

    out, err = io.StringIO(), io.StringIO()
    return Shell(Engine(), out=out, err=err), out, err


def test_shell_multiline_and_modes():
    sh, out, err = shell()
    sh.run_text(".mode line\nSELECT 1 AS a,\n  2 AS bb;\n")
    assert out.getvalue() == " a = 1\nbb = 2\n" and err.getvalue() == ""


def test_shell_errors_continue_unless_bail():
    sh, out, err = shell()
    sh.run_text("SELECT * FROM nope;\nSELECT 7 AS x;\n")
    assert "Error: no such table: nope" in err.getvalue() and "| 7 |" in out.getvalue()
    sh, out, err = shell()
    sh.run_text(".bail ON\nSELECT * FROM nope;\nSELECT 7 AS x;\n")
    assert "7" not in out.getvalue()


@pytest.mark.parametrize("cmd,expect", [
    (".tables process", "  => processes\n"),
    (".schema processes", "CREATE TABLE processes("),
    (".print hello world", "hello world\n"),
    (".version", "using SQLite"),
    (".help", ".timer ON|OFF"),
    (".show", "mode: pretty"),
    (".all processes", "cmdline"),
])
def test_shell_meta_commands(cmd, expect):
    sh, out, err = shell()
    sh.run_text(cmd + "\n")
    assert expect in out.getvalue(), err.getvalue()


def test_shell_bad_meta_and_mode():
    sh, out, err = shell()
    sh.run_text(".nosuch\n.mode fancy\n")
    assert 'Error: unknown command or invalid arguments:  "nosuch". Enter ".help" for help' in err.getvalue()
    assert "Error: mode should be one of: column csv line list pretty" in err.getvalue()


def test_shell_nullvalue_headers_separator():
    sh, out, err = shell()
    sh.run_text(".mode list\n.headers off\n.nullvalue NULL\n.separator ;\nSELECT NULL, 2;\n")
    assert out.getvalue() == "NULL;2\n"


def test_shell_timer_and_exit():
    sh, out, err = shell()
    sh.run_text(".timer ON\nSELECT 1;\n.exit\nSELECT 2;\n")
    assert "Run Time: real " in out.getvalue() and "| 2 " not in out.getvalue()


def test_shell_piped_stdin_via_cli():
    p = run("shell", stdin=".mode csv\nSELECT 1 AS one;\n")
    assert p.returncode == 0 and p.stdout == "one\n1\n"


def test_pretty_printer_layout():
    text = render(["a", "long"], [(1, None), ("xyz", 2.5)], Style())
    assert text.splitlines() == [
        "+-----+------+",
        "| a   | long |",
        "+-----+------+",
        "| 1   |      |",
        "| xyz | 2.5  |",
        "+-----+------+",
    ]


def test_join_feeds_the_required_column():
    p = run("query", "--csv", f"SELECT p.pid, f.path = p.path FROM processes p JOIN file f USING (path) "
                              f"WHERE p.pid = {os.getpid()}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[1:] == [f"{os.getpid()},1"]
