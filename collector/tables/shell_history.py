"""shell_history: bash, zsh, sh and fish history of the users a query names (osquery user_data semantics).

Formats: bash with HISTTIMEFORMAT writes "#<epoch>" before each command; zsh EXTENDED_HISTORY writes
": <epoch>:<duration>;<command>" with backslash-newline continuations and "metafied" non-ASCII bytes;
fish writes a YAML-like "- cmd: …\n  when: <epoch>" list. Entries without a timestamp read time 0, as in
osquery ("It could be absent, default value is 0").
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _accounts as acc

SPEC = table(
    'shell_history',
    'A line-delimited (command) table of per-user .*_history data.',
    columns=[
        col('uid', BIGINT, 'Shell history owner', additional=True, optimized=True),
        col('time', INTEGER, 'Entry timestamp. It could be absent, default value is 0.'),
        col('command', TEXT, 'Unparsed date/line/command history line'),
        col('history_file', TEXT, 'Path to the .*_history for this user'),
    ],
    user_data=True,
    platforms=('darwin', 'linux'),
    examples=('select * from users join shell_history using (uid)',),
    requires={"CAP_DAC_READ_SEARCH": ["*"]},
)


# osquery's list, then fish (fleetdm/fleet#44641).
HISTORY_FILES = (".bash_history", ".zsh_history", ".zhistory", ".history", ".sh_history")
FISH_HISTORY = ".local/share/fish/fish_history"
_ZSH_FILES = (".zsh_history", ".zhistory")

_BASH_TS = re.compile(r"^#([0-9]+)$")
_ZSH_TS = re.compile(r"^: {0,10}([0-9]{1,11}):[0-9]+;(.*)$", re.S)
_ZSH_META = 0x83


def parse_history(lines: Iterator[str], zsh: bool = False) -> Iterator[tuple[int, str]]:
    """(time, command) pairs of a bash/zsh/sh history, osquery's reading plus zsh continuations."""
    pending_ts: str | None = None
    it = iter(lines)
    for line in it:
        if pending_ts is None:
            m = _BASH_TS.match(line)
            if m:
                pending_ts = m.group(1)
                continue
        if pending_ts is not None:
            yield int(pending_ts), line
            pending_ts = None
            continue
        m = _ZSH_TS.match(line)
        if m:
            command = m.group(2)
            if zsh:
                # zsh stores a multi-line command as lines ending in a backslash.
                while command.endswith("\\"):
                    nxt = next(it, None)
                    if nxt is None:
                        break
                    command = command[:-1] + "\n" + nxt
            yield int(m.group(1)), command
        else:
            yield 0, line


def _unmetafy(raw: bytes) -> bytes:
    """Undo zsh's metafication: Meta (0x83) followed by byte^0x20 stands for that byte."""
    if _ZSH_META not in raw:
        return raw
    out = bytearray()
    it = iter(raw)
    for b in it:
        if b == _ZSH_META:
            nxt = next(it, None)
            if nxt is not None:
                out.append(nxt ^ 0x20)
        else:
            out.append(b)
    return bytes(out)



def parse_fish(lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    """(time, command) pairs of a fish_history file."""
    cmd: str | None = None
    when = 0
    for line in lines:
        if line.startswith("- cmd:"):
            if cmd is not None:
                yield when, cmd
            cmd, when = _fish_unescape(line[6:].lstrip(" ")), 0
        elif cmd is not None and line.startswith("  when:"):
            try:
                when = int(line[7:].strip())
            except ValueError:
                when = 0
    if cmd is not None:
        yield when, cmd


def _fish_unescape(s: str) -> str:
    # fish escapes only backslash and newline in the cmd field.
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            out.append("\n" if nxt == "n" else nxt if nxt == "\\" else ch + nxt)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def generate(ctx: Context) -> Iterator[Row]:
    bad = acc.Unreadable()
    for user in ctx.users():
        home = user.pw_dir
        files: list[tuple[str, str]] = [(acc.home_file(home, name), name) for name in HISTORY_FILES]
        sessions = acc.home_file(home, ".bash_sessions")
        try:
            # macOS Terminal's per-session bash histories; osquery reads them on every platform.
            for name in sorted(os.listdir(ctx.path(sessions))):
                if name.endswith(".history"):
                    files.append((f"{sessions}/{name}", name))
        except OSError:
            pass
        for host, name in files:
            real = ctx.path(host)
            if name in _ZSH_FILES:
                entries = parse_history(acc.read_lines(real, bad, _unmetafy), zsh=True)
            else:
                entries = parse_history(acc.read_lines(real, bad))
            for n, (ts, command) in enumerate(entries):
                if n & 0xFFF == 0:
                    ctx.check()
                yield {"uid": user.pw_uid, "time": ts, "command": command, "history_file": host}
        fish = acc.home_file(home, FISH_HISTORY)
        for ts, command in parse_fish(acc.read_lines(ctx.path(fish), bad)):
            yield {"uid": user.pw_uid, "time": ts, "command": command, "history_file": fish}
    bad.report(ctx, "history")
