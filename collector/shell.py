"""`quarry shell`: osqueryi's interactive shell and meta-commands over the engine.

Statements end with `;` and may span lines; a line starting with `.` is a meta-command. Errors print and
the shell goes on (unless `.bail ON`). Without a terminal on stdin the same loop reads the piped text.
"""

from __future__ import annotations

import os
import resource
import shlex
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import apsw

from collector import __version__, printer
from collector.engine import Engine
from collector.errors import QueryError

HELP = """\
Welcome to the Quarry shell. Please explore your OS!
You are connected to a transient 'in-memory' virtual database.

.all [TABLE]     Select all from a table
.bail ON|OFF     Stop after hitting an error
.echo ON|OFF     Turn command echo on or off
.exit            Exit this program
.features        List osquery's features and their statuses
.headers ON|OFF  Turn display of headers on or off
.help            Show this message
.mode MODE       Set output mode where MODE is one of:
                   csv      Comma-separated values
                   column   Left-aligned columns see .width
                   line     One value per line
                   list     Values delimited by .separator string
                   pretty   Pretty printed SQL results (default)
.nullvalue STR   Use STRING in place of NULL values
.print STR...    Print literal STRING
.quit            Exit this program
.schema [TABLE]  Show the CREATE statements
.separator STR   Change separator used by output mode
.show            Show the current values for various settings
.summary         Alias for the show meta command
.tables [TABLE]  List names of tables
.types [SQL]     Show result of getQueryColumns for the given query
.width [NUM1]+   Set column widths for "column" mode
.timer ON|OFF    Time each SQL query
.timeout MS      Cancel a query that runs longer than MS milliseconds
.version         Show the Quarry and SQLite versions
"""

PROMPT, CONTINUATION = "quarry> ", "    ...> "


class Shell:
    def __init__(self, engine: Engine, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                 style: printer.Style | None = None) -> None:
        self.engine = engine
        self.out, self.err = out, err
        self.style = style or printer.Style()
        self.bail = False
        self.echo = False
        self.timer = False
        self.timeout_s: float | None = None
        self.buffer = ""
        self.failed = False
        self.done = False

    # --- input ----------------------------------------------------------------------------------
    def feed(self, line: str) -> None:
        """One line of input: a meta-command, or part of an SQL statement run once complete."""
        if not self.buffer and line.strip().startswith("."):
            if self.echo:
                self.out.write(line.rstrip("\n") + "\n")
            self.meta(line.strip())
            return
        self.buffer += line if line.endswith("\n") else line + "\n"
        if apsw.complete(self.buffer):
            sql, self.buffer = self.buffer.strip(), ""
            if self.echo:
                self.out.write(sql + "\n")
            self.run(sql)

    def run_text(self, text: str) -> None:
        for line in text.splitlines():
            if self.done or (self.bail and self.failed):
                return
            self.feed(line)
        if self.buffer.strip() and not self.done:
            # osqueryi runs a trailing statement without ';' at end of input.
            sql, self.buffer = self.buffer.strip(), ""
            self.run(sql)

    @property
    def prompt(self) -> str:
        return CONTINUATION if self.buffer else PROMPT

    # --- SQL ------------------------------------------------------------------------------------
    def run(self, sql: str) -> None:
        started = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        try:
            result = self.engine.query(sql, timeout=self.timeout_s)
        except QueryError as e:
            self.error(str(e))
            return
        for w in result.warnings:
            self.err.write(f"Warning: {w}\n")
        self.out.write(printer.render(result.columns, result.rows, self.style))
        if self.timer:
            now = resource.getrusage(resource.RUSAGE_SELF)
            self.out.write(f"Run Time: real {time.perf_counter() - started:.3f} user "
                           f"{now.ru_utime - usage.ru_utime:f} sys {now.ru_stime - usage.ru_stime:f}\n")

    def error(self, message: str) -> None:
        self.failed = True
        self.err.write(f"Error: {message}\n")

    # --- meta-commands --------------------------------------------------------------------------
    def meta(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        cmd, args = words[0], words[1:]
        handler = {
            ".all": self._all, ".bail": self._bail, ".echo": self._echo, ".exit": self._exit,
            ".quit": self._exit, ".features": self._features, ".headers": self._headers,
            ".header": self._headers, ".help": self._help, ".mode": self._mode, ".nullvalue": self._nullvalue,
            ".print": self._print, ".schema": self._schema, ".separator": self._separator, ".show": self._show,
            ".summary": self._show, ".tables": self._tables, ".list": self._tables, ".types": self._types,
            ".width": self._width, ".timer": self._timer, ".timeout": self._timeout, ".version": self._version,
            ".connect": self._extensions, ".disconnect": self._extensions, ".socket": self._extensions,
        }.get(cmd)
        if handler is None or not handler(args):
            self.error(f'unknown command or invalid arguments:  "{cmd[1:]}". Enter ".help" for help')

    def _switch(self, args: list[str]) -> bool | None:
        if len(args) != 1 or args[0].lower() not in ("on", "off", "1", "0", "yes", "no", "true", "false"):
            return None
        return args[0].lower() in ("on", "1", "yes", "true")

    def _all(self, args: list[str]) -> bool:
        if len(args) != 1:
            return False
        self.run(f'SELECT * FROM "{args[0]}";')
        return True

    def _bail(self, args: list[str]) -> bool:
        value = self._switch(args)
        if value is None:
            return False
        self.bail = value
        return True

    def _echo(self, args: list[str]) -> bool:
        value = self._switch(args)
        if value is None:
            return False
        self.echo = value
        return True

    def _exit(self, args: list[str]) -> bool:
        self.done = True
        return True

    def _features(self, args: list[str]) -> bool:
        for name, value in feature_flags(self.engine):
            self.out.write(f"{name}: {value}\n")
        return True

    def _headers(self, args: list[str]) -> bool:
        value = self._switch(args)
        if value is None:
            return False
        self.style.headers = value
        return True

    def _help(self, args: list[str]) -> bool:
        self.out.write(HELP)
        return True

    def _mode(self, args: list[str]) -> bool:
        mode = printer.MODE_ALIASES.get(args[0], args[0]) if len(args) == 1 else ""
        if mode not in printer.MODES:
            self.error("mode should be one of: column csv line list pretty")
            return True
        self.style.mode = mode
        if mode == "csv":
            self.style.separator = ","
        elif mode == "list" and self.style.separator == ",":
            self.style.separator = "|"
        return True

    def _nullvalue(self, args: list[str]) -> bool:
        if len(args) != 1:
            return False
        self.style.nullvalue = args[0]
        return True

    def _print(self, args: list[str]) -> bool:
        self.out.write(" ".join(args) + "\n")
        return True

    def _schema(self, args: list[str]) -> bool:
        specs = self.engine.specs()
        if args:
            specs = [s for s in specs if s.name == args[0]]
            if not specs:
                self.error(f"no such table: {args[0]}")
                return True
        for spec in specs:
            self.out.write(spec.schema_sql() + "\n")
        return True

    def _separator(self, args: list[str]) -> bool:
        if len(args) != 1:
            return False
        self.style.separator = args[0].encode().decode("unicode_escape")
        return True

    def _show(self, args: list[str]) -> bool:
        rt = self.engine.runtime
        settings = [
            ("quarry", __version__),
            ("using SQLite", apsw.sqlite_lib_version()),
            ("hostfs", self.engine.root),
            ("config", str(getattr(rt, "config_path", "") or "")),
            ("logger", "(shell)"),
            ("extensions", "unsupported"),
            ("", ""),
            ("bail", "on" if self.bail else "off"),
            ("echo", "on" if self.echo else "off"),
            ("headers", "on" if self.style.headers else "off"),
            ("mode", self.style.mode),
            ("nullvalue", f'"{self.style.nullvalue}"'),
            ("separator", f'"{self.style.separator}"'),
            ("timer", "on" if self.timer else "off"),
            ("timeout", f"{int(self.timeout_s * 1000)} ms" if self.timeout_s else "off"),
            ("width", " ".join(str(w) for w in self.style.widths)),
        ]
        for k, v in settings:
            self.out.write(f"{k:>12}: {v}\n" if k else "\n")
        return True

    def _tables(self, args: list[str]) -> bool:
        for spec in self.engine.specs():
            if not args or args[0] in spec.name:
                self.out.write(f"  => {spec.name}\n")
        return True

    def _types(self, args: list[str]) -> bool:
        if not args:
            return False
        sql = " ".join(args).rstrip(";")
        try:
            cur = self.engine.conn.cursor()
            cols: list[tuple[str, str]] = []

            def describe(c: apsw.Cursor, _s: str, _b: object) -> bool:
                cols[:] = [(d[0], d[1] or "") for d in c.getdescription()]
                return False

            cur.exec_trace = describe
            try:
                cur.execute(sql)
            except apsw.ExecTraceAbort:
                pass
        except apsw.Error as e:
            self.error(str(e).split(": ", 1)[-1])
            return True
        self.out.write(printer.render(["name", "type"], cols, self.style))
        return True

    def _width(self, args: list[str]) -> bool:
        try:
            self.style.widths = tuple(int(a) for a in args)
        except ValueError:
            return False
        return True

    def _timer(self, args: list[str]) -> bool:
        value = self._switch(args)
        if value is None:
            return False
        self.timer = value
        return True

    def _timeout(self, args: list[str]) -> bool:
        try:
            ms = int(args[0]) if len(args) == 1 else -1
        except ValueError:
            return False
        if ms < 0:
            return False
        self.timeout_s = ms / 1000 if ms else None
        return True

    def _version(self, args: list[str]) -> bool:
        self.out.write(f"quarry {__version__}\nusing SQLite {apsw.sqlite_lib_version()}\n")
        return True

    def _extensions(self, args: list[str]) -> bool:
        self.error("osquery extensions (Thrift sockets) are not supported by Quarry; tables are Python modules")
        return True


def feature_flags(engine: Engine) -> Iterable[tuple[str, str]]:
    """osqueryi's .features: the boolean disable_*/enable_* flags and their values."""
    try:
        from collector.runtime import Runtime
    except ImportError:
        return []
    rt = engine.runtime or Runtime.for_shell()
    out = []
    for name, flag in sorted(getattr(rt, "flags", {}).items()):
        if name.startswith(("disable_", "enable_")):
            value = getattr(flag, "value", flag)
            out.append((name, str(value).lower()))
    return out


def interactive(shell: Shell) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory

    words = [".all", ".bail", ".echo", ".exit", ".features", ".headers", ".help", ".mode", ".nullvalue",
             ".print", ".quit", ".schema", ".separator", ".show", ".summary", ".tables", ".types", ".width",
             ".timer", ".timeout", ".version", "SELECT", "FROM", "WHERE", "JOIN", "USING", "GROUP BY",
             "ORDER BY", "LIMIT"]
    for spec in shell.engine.specs():
        words.append(spec.name)
        words.extend(c.name for c in spec.columns)
    history = Path(os.environ.get("QUARRY_HISTORY", Path.home() / ".quarry_history"))
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)),
        completer=WordCompleter(sorted(set(words)), ignore_case=True, sentence=True),
    )
    shell.out.write('Using a virtual database. Need help, type ".help"\n')
    while not shell.done:
        try:
            line = session.prompt(shell.prompt)
        except KeyboardInterrupt:
            shell.buffer = ""
            continue
        except EOFError:
            break
        shell.feed(line)
        shell.out.flush()
    return 0
