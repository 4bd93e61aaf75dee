"""/etc/passwd and /etc/group parsing shared by the user tables (read from the host root, never NSS)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Passwd:
    pw_name: str
    pw_passwd: str
    pw_uid: int
    pw_gid: int
    pw_gecos: str
    pw_dir: str
    pw_shell: str


@dataclass(frozen=True)
class Group:
    gr_name: str
    gr_passwd: str
    gr_gid: int
    gr_mem: tuple[str, ...]


def _lines(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        if not line or line.startswith(("#", "+", "-")):
            continue
        out.append(line.split(":"))
    return out


def read_passwd(path: str) -> list[Passwd]:
    out = []
    for p in _lines(path):
        if len(p) < 7:
            continue
        try:
            out.append(Passwd(p[0], p[1], int(p[2]), int(p[3]), p[4], p[5], ":".join(p[6:])))
        except ValueError:
            continue
    return out


def read_group(path: str) -> list[Group]:
    out = []
    for p in _lines(path):
        if len(p) < 4:
            continue
        try:
            members = tuple(m for m in p[3].split(",") if m)
            out.append(Group(p[0], p[1], int(p[2]), members))
        except ValueError:
            continue
    return out
