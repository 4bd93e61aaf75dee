"""Fast input builders for the fuzz tests, driven by a `random.Random` that hypothesis seeds.

Hypothesis' own composite strategies cost 10-600 ms per config-sized case; building from a seeded Random costs
well under 1 ms, which is what lets 10,000 cases fit in the CI budget. Hypothesis still picks (and under the
`ci` profile fixes) the seeds, and a failing case prints the input it built.
"""

from __future__ import annotations

import json
import random
from typing import Any

from collector.config.flagvalues import catalogue

FLAG_NAMES = [f.name for f in catalogue()] + ["custom_x", "no_such_flag", "tls_hostname", "config_path",
                                              "log_result_events", "nologger_stderr"]
FLAG_VALUES = ["0", "1", "true", "zz", "", "-1", "'q'", str(2**65), "0x10", "60", "/tmp/x", " 5 "]
SQL = ["SELECT 1", "SELECT pid, name FROM processes", "SELECT * FROM osquery_info", "SELECT * FROM nope",
       "SELEC 1", "SELECT * FROM file", "", "DELETE FROM processes", "SELECT * FROM uptime;", "SELECT ?"]
ODD_TEXT = ["", " ", "é", "\x00", "\u2028", "\ud800", "a\\b", '"', "#", "//", "%", "%%", "*", "..", "-", "\t"]
SHIPPER_TYPES = ["file", "kafka", "elasticsearch", "splunk_hec", "logstash", "opensearch", "nope"]


def text(rng: random.Random, n: int = 8) -> str:
    if rng.random() < 0.3:
        return rng.choice(ODD_TEXT)
    return "".join(rng.choice("abcqz_-. *%é0/\\#") for _ in range(rng.randint(0, n)))


def scalar(rng: random.Random) -> Any:
    return rng.choice([None, True, False, 0, -1, 1, 2**64, -(2**70), 1.5, -0.0, 1e308, text(rng), "60", "true"])


def value(rng: random.Random, depth: int = 3) -> Any:
    """Any JSON value (no NaN), at most `depth` levels of containers."""
    r = rng.random()
    if depth <= 0 or r < 0.5:
        return scalar(rng)
    if r < 0.75:
        return [value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {text(rng): value(rng, depth - 1) for _ in range(rng.randint(0, 3))}


def odd(rng: random.Random, good: Any) -> Any:
    """`good` most of the time, any JSON value otherwise."""
    return good if rng.random() < 0.8 else value(rng, 2)


def query(rng: random.Random) -> dict[str, Any]:
    q: dict[str, Any] = {"query": odd(rng, rng.choice(SQL))}
    options = {
        "interval": lambda: rng.choice([10, 0, -1, 86401, "60", 1.5, 2**64, None]),
        "snapshot": lambda: rng.random() < 0.5, "removed": lambda: rng.random() < 0.5,
        "platform": lambda: rng.choice(["linux", "darwin", "posix", "all", "linux,windows", "", "ubuntu"]),
        "version": lambda: rng.choice(["5.0.0", "1.2", "x", "99.0.0", ""]),
        "shard": lambda: rng.randint(-5, 120), "denylist": lambda: rng.random() < 0.5,
        "shippers": lambda: [rng.choice(["f", "g", ""]) for _ in range(rng.randint(0, 2))],
        "route": lambda: {rng.choice(["topic", "index", "file", "sourcetype", "x"]): text(rng)
                          for _ in range(rng.randint(0, 2))},
        "skip_empty": lambda: rng.random() < 0.5, "description": lambda: text(rng),
        "startup_priority": lambda: rng.randint(-1, 5), "run_at_start": lambda: rng.random() < 0.5,
        "value": lambda: text(rng), "nonsense": lambda: value(rng, 1),
    }
    for key in rng.sample(sorted(options), rng.randint(0, 5)):
        q[key] = odd(rng, options[key]())
    return q


def names(rng: random.Random) -> str:
    return "".join(rng.choice("abq_-. *%") for _ in range(rng.randint(0, 5)))


def pack(rng: random.Random) -> dict[str, Any]:
    p: dict[str, Any] = {"queries": odd(rng, {names(rng): odd(rng, query(rng)) for _ in range(rng.randint(0, 3))})}
    extra = {"discovery": lambda: [rng.choice(SQL) for _ in range(rng.randint(0, 2))],
             "platform": lambda: rng.choice(["linux", "darwin", "windows"]),
             "version": lambda: rng.choice(["1.0.0", "x"]), "shard": lambda: rng.randint(-1, 101),
             "shippers": lambda: ["f"], "route": lambda: {"topic": "t"}, "skip_empty": lambda: True}
    for key in rng.sample(sorted(extra), rng.randint(0, 3)):
        p[key] = odd(rng, extra[key]())
    return p


def shipper(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {"type": odd(rng, rng.choice(SHIPPER_TYPES))}
    extra = {
        "path": lambda: "/dev/null", "queue": lambda: {rng.choice(["max_events", "max_bytes", "x"]): rng.randint(-1, 9)},
        "tls": lambda: {rng.choice(["ca_file", "verify", "server_name", "cert_file"]):
                        rng.choice(["/nonexistent", True, 3, ""])},
        "hosts": lambda: [rng.choice(["http://127.0.0.1:1", "nope://", "", "https://u:p@h:1"])],
        "brokers": lambda: ["127.0.0.1:1"], "topic": lambda: "t", "url": lambda: "https://u:p@127.0.0.1:1",
        "token": lambda: "x", "retry": lambda: {"max_attempts": rng.randint(-1, 3)},
        "spool": lambda: {"enabled": True, "max_bytes": rng.choice([0, 10, "1G"])},
    }
    for key in rng.sample(sorted(extra), rng.randint(0, 4)):
        body[key] = odd(rng, extra[key]())
    return body


def config(rng: random.Random) -> dict[str, Any]:
    parts = {
        "options": lambda: {rng.choice(FLAG_NAMES): scalar(rng) for _ in range(rng.randint(0, 4))},
        "schedule": lambda: {names(rng): odd(rng, query(rng)) for _ in range(rng.randint(0, 3))},
        "packs": lambda: {names(rng): rng.choice([pack(rng), "pack0.conf", "missing.conf", "packs/", "packs/%",
                                                  "/dev/null", ""]) for _ in range(rng.randint(0, 3))},
        "decorators": lambda: {k: odd(rng, [rng.choice(SQL)]) for k in rng.sample(["load", "always"], 1)}
        | ({"interval": {rng.choice(["60", "7", "x", "-60", "0"]): [rng.choice(SQL)]}} if rng.random() < 0.5 else {}),
        "views": lambda: {names(rng): rng.choice(SQL)},
        "file_paths": lambda: {names(rng): [rng.choice(["/etc/%%", "/tmp/%", "", "relative"])]},
        "exclude_paths": lambda: {names(rng): ["/etc/x"]},
        "events": lambda: {rng.choice(["enable_subscribers", "disable_subscribers", "x"]): [text(rng)]},
        "kafka_topics": lambda: {text(rng): [names(rng)]},
        "shippers": lambda: {rng.choice(["f", "g"]): shipper(rng) for _ in range(rng.randint(0, 2))},
        "yara": lambda: value(rng), "unknown": lambda: value(rng),
    }
    return {k: odd(rng, parts[k]()) for k in rng.sample(sorted(parts), rng.randint(0, 5))}


COMMENTS = ["#", "//", "  # note", "\t// x \\ y", "#{", "// ]", "#\r"]


def dialect(rng: random.Random, obj: Any) -> str:
    """`obj` as JSON with comment lines and continuations spliced in; stripping them gives the JSON back."""
    lines = json.dumps(obj, indent=rng.choice([None, 1, 2]), ensure_ascii=rng.random() < 0.5).split("\n")
    out: list[str] = []
    for line in lines:
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            out.append(rng.choice(COMMENTS))
        # A continuation strictly inside the line: at its end it would swallow the next line (a comment).
        cuts = sorted({rng.randrange(len(line)) for _ in range(rng.choice([0, 0, 1, 2]))}) if line else []
        pieces, last = [], 0
        for c in cuts:
            pieces.append(line[last:c])
            last = c
        pieces.append(line[last:])
        out.append("\\\n".join(pieces))
    return "\n".join(out)


MUTATIONS = list('{}[]:,"\\#/\n\r\t 0-.eE') + ["\\\n", "//", "\x00", "\ufeff", "é", "\ud800", "[" * 40, "1e999"]


def mutate(rng: random.Random, s: str, n: int = 4) -> str:
    """Insert, delete, replace or duplicate a few pieces (JSON and dialect syntax favoured)."""
    chars = list(s)
    for _ in range(rng.randint(1, n)):
        at = rng.randint(0, len(chars))
        op = rng.choice(["insert", "delete", "replace", "dup"])
        if op == "insert" or not chars or at == len(chars):
            chars.insert(at, rng.choice(MUTATIONS))
        elif op == "delete":
            del chars[at : at + rng.randint(1, 3)]
        elif op == "replace":
            chars[at] = rng.choice(MUTATIONS)
        else:
            end = min(len(chars), at + rng.randint(1, 20))
            chars[at:at] = chars[at:end]
    return "".join(chars)


def file_bytes(rng: random.Random, obj: Any) -> bytes:
    """A config file: `obj` in the dialect, sometimes mutated, truncated, empty or not UTF-8."""
    s = dialect(rng, obj) if isinstance(obj, dict) else json.dumps(obj)
    how = rng.choice(["as is", "as is", "as is", "mutated", "mutated", "latin-1", "empty", "truncated"])
    if how == "mutated":
        s = mutate(rng, s)
    elif how == "empty":
        return b""
    elif how == "truncated":
        s = s[: rng.randint(0, len(s))]
    data = s.encode("utf-8", "surrogatepass")
    return data + b"\xe9\xff" if how == "latin-1" else data


def flag_lines(rng: random.Random) -> list[str]:
    choices = [lambda: f"--{rng.choice(FLAG_NAMES)}={rng.choice(FLAG_VALUES)}",
               lambda: rng.choice(["# comment", "--verbose", "--noverbose", "plain", "--flagfile=self.flags",
                                   "--flagfile=other.flags", "--", "-", "--config_path", "--logger_path", "  "]),
               lambda: text(rng, 12)]
    return [rng.choice(choices)() for _ in range(rng.randint(0, 6))]
