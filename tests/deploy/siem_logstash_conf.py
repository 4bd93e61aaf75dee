"""A parser for the Logstash pipeline config language (the subset Quarry's pipeline files use) and a tiny
evaluator of the filter plugins they use, so tests/deploy/test_siem_logstash.py can check deploy/logstash/
without a Logstash (none is installable here).

Grammar (after elastic/logstash's treetop grammar, simplified):
    config   := section*                      section := ("input" | "filter" | "output") block
    block    := "{" (plugin | branch)* "}"     plugin  := NAME "{" (NAME "=>" value)* "}"
    branch   := "if" cond block ("else" "if" cond block)* ("else" block)?
    value    := STRING | NUMBER | BAREWORD | "[" [value ("," value)*] "]" | "{" (key "=>" value)* "}"
    cond     := expr (("and" | "or") expr)*  expr := ["!"] selector | "(" cond ")"
`#` comments run to the end of the line. Errors name the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_TOKEN = re.compile(r"""
    (?P<ws>\s+) | (?P<comment>\#[^\n]*) |
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*') |
    (?P<selector>(?:\[[^\[\]\s"',]+\])+) |
    (?P<number>-?\d+(?:\.\d+)?(?![\w.])) |
    (?P<arrow>=>) | (?P<op>==|!=|=~|!~|<=|>=) |
    (?P<punct>[{}\[\](),!<>]) |
    (?P<word>[A-Za-z_@][\w.@-]*)
""", re.VERBOSE)


class ConfigError(ValueError):
    pass


@dataclass
class Token:
    kind: str
    text: str
    line: int


@dataclass
class Plugin:
    name: str
    settings: dict[str, Any]
    line: int


@dataclass
class Branch:
    arms: list[tuple[Any, list[Any]]]  # (condition or None for else, body)
    line: int


@dataclass
class Config:
    sections: dict[str, list[Any]] = field(default_factory=dict)

    def plugins(self, section: str) -> list[Plugin]:
        out: list[Plugin] = []

        def walk(items: list[Any]) -> None:
            for it in items:
                if isinstance(it, Plugin):
                    out.append(it)
                else:
                    for _, body in it.arms:
                        walk(body)
        walk(self.sections.get(section, []))
        return out


def tokenize(text: str, where: str) -> list[Token]:
    out, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ConfigError(f"{where}:{line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        if kind not in ("ws", "comment"):
            out.append(Token(kind, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[Token], where: str) -> None:
        self.t, self.i, self.where = tokens, 0, where

    def err(self, msg: str) -> ConfigError:
        line = self.t[self.i].line if self.i < len(self.t) else (self.t[-1].line if self.t else 1)
        return ConfigError(f"{self.where}:{line}: {msg}")

    def peek(self, text: str | None = None) -> bool:
        return self.i < len(self.t) and (text is None or self.t[self.i].text == text)

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        if self.i >= len(self.t):
            raise self.err(f"unexpected end of file, expected {text or kind}")
        tok = self.t[self.i]
        if (text is not None and tok.text != text) or (kind is not None and tok.kind != kind):
            raise self.err(f"expected {text or kind}, got {tok.text!r}")
        self.i += 1
        return tok

    def config(self) -> Config:
        cfg = Config()
        while self.peek():
            name = self.take(kind="word")
            if name.text not in ("input", "filter", "output"):
                raise self.err(f"expected input, filter or output, got {name.text!r}")
            cfg.sections.setdefault(name.text, []).extend(self.block())
        return cfg

    def block(self) -> list[Any]:
        self.take("{")
        items: list[Any] = []
        while not self.peek("}"):
            items.append(self.branch() if self.peek("if") else self.plugin())
        self.take("}")
        return items

    def plugin(self) -> Plugin:
        name = self.take(kind="word")
        self.take("{")
        settings: dict[str, Any] = {}
        while not self.peek("}"):
            key = self.take(kind="word")
            self.take("=>")
            if key.text in settings:
                raise self.err(f"setting {key.text!r} repeated in {name.text}")
            settings[key.text] = self.value()
        self.take("}")
        return Plugin(name.text, settings, name.line)

    def value(self) -> Any:
        tok = self.take()
        if tok.kind == "string":
            return _unquote(tok.text)
        if tok.kind == "number":
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind == "word":
            return {"true": True, "false": False}.get(tok.text, tok.text)
        if tok.text == "[":
            items = []
            while not self.peek("]"):
                items.append(self.value())
                if not self.peek("]"):
                    self.take(",")
            self.take("]")
            return items
        if tok.text == "{":
            entries: dict[str, Any] = {}
            while not self.peek("}"):
                k = self.take()
                if k.kind not in ("string", "word", "number", "selector"):
                    raise self.err(f"bad hash key {k.text!r}")
                self.take("=>")
                entries[_unquote(k.text) if k.kind == "string" else k.text] = self.value()
            self.take("}")
            return entries
        self.i -= 1
        raise self.err(f"expected a value, got {tok.text!r}")

    def branch(self) -> Branch:
        line = self.take("if").line
        arms = [(self.condition(), self.block())]
        while self.peek("else"):
            self.take("else")
            if self.peek("if"):
                self.take("if")
                arms.append((self.condition(), self.block()))
            else:
                arms.append((None, self.block()))
                break
        return Branch(arms, line)

    def condition(self) -> Any:
        left = self.term()
        while self.peek("and") or self.peek("or"):
            op = self.take().text
            left = (op, left, self.term())
        return left

    def term(self) -> Any:
        if self.peek("!"):
            self.take("!")
            return ("not", self.term())
        if self.peek("("):
            self.take("(")
            inner = self.condition()
            self.take(")")
            return inner
        sel = self.take(kind="selector")
        return ("field", sel.text)


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def parse(text: str, where: str = "<config>") -> Config:
    return _Parser(tokenize(text, where), where).config()


def parse_files(paths: list[Path]) -> Config:
    """Logstash concatenates a pipeline's files (path.config glob) in name order before parsing."""
    merged = Config()
    for p in sorted(paths, key=lambda p: p.name):
        for section, items in parse(p.read_text(), str(p)).sections.items():
            merged.sections.setdefault(section, []).extend(items)
    return merged


# ------------------------------------------------------------------------------------------------- evaluation
def selector_path(sel: str) -> list[str]:
    return re.findall(r"\[([^\[\]]+)\]", sel) if sel.startswith("[") else [sel]


def get(event: dict[str, Any], sel: str) -> Any:
    cur: Any = event
    for part in selector_path(sel):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def has(event: dict[str, Any], sel: str) -> bool:
    *parents, leaf = selector_path(sel)
    cur: Any = event
    for part in parents:
        cur = cur.get(part) if isinstance(cur, dict) else None
    return isinstance(cur, dict) and leaf in cur


def put(event: dict[str, Any], sel: str, value: Any) -> None:
    parts = selector_path(sel)
    cur = event
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def delete(event: dict[str, Any], sel: str) -> Any:
    parts = selector_path(sel)
    cur: Any = event
    for part in parts[:-1]:
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur.pop(parts[-1], None) if isinstance(cur, dict) else None


def sprintf(template: str, event: dict[str, Any], env: dict[str, str]) -> str:
    def var(m: re.Match[str]) -> str:
        name, _, default = m.group(1).partition(":")
        if name not in env and not m.group(1).count(":"):
            raise ConfigError(f"environment variable {name} is not set")
        return env.get(name, default)
    text = re.sub(r"\$\{([^}]+)\}", var, template)
    return re.sub(r"%\{([^}]+)\}", lambda m: str(get(event, m.group(1) if m.group(1).startswith("[")
                                                      else f"[{m.group(1)}]")), text)


def truthy(cond: Any, event: dict[str, Any]) -> bool:
    op = cond[0]
    if op == "field":
        v = get(event, cond[1])
        return v is not None and v is not False
    if op == "not":
        return not truthy(cond[1], event)
    if op == "and":
        return truthy(cond[1], event) and truthy(cond[2], event)
    if op == "or":
        return truthy(cond[1], event) or truthy(cond[2], event)
    raise ConfigError(f"condition {cond!r} not supported by this evaluator")


def run_filters(cfg: Config, event: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Apply the filter section to one event (a dict with an optional "@metadata"), as Logstash would for the
    plugins and options used here: mutate rename/add_field, date with UNIX and target/remove_field."""
    env = env or {}

    def apply(items: list[Any]) -> None:
        for it in items:
            if isinstance(it, Branch):
                for cond, body in it.arms:
                    if cond is None or truthy(cond, event):
                        apply(body)
                        break
            elif it.name == "mutate":
                for src, dst in it.settings.get("rename", {}).items():
                    if has(event, _sel(src)):  # a JSON null is a field too: renamed like any value
                        put(event, _sel(dst), delete(event, _sel(src)))
                for dst, tpl in it.settings.get("add_field", {}).items():
                    if get(event, _sel(dst)) is None:
                        put(event, _sel(dst), sprintf(tpl, event, env))
            elif it.name == "date":
                src, fmt = it.settings["match"]
                raw = get(event, _sel(src))
                if fmt != "UNIX":
                    raise ConfigError(f"date format {fmt} not supported by this evaluator")
                if raw is not None:
                    t = datetime.fromtimestamp(float(raw), UTC)
                    put(event, _sel(it.settings.get("target", "@timestamp")),
                        t.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
                    for f in it.settings.get("remove_field", []):
                        delete(event, _sel(f))
            else:
                raise ConfigError(f"filter {it.name} not supported by this evaluator")
    apply(cfg.sections.get("filter", []))
    return event


def _sel(name: str) -> str:
    return name if name.startswith("[") else f"[{name}]"
