"""The table -> Linux capability matrix, from the code: writes docs/capabilities.md.

Two sources, cross-checked by tests/deploy/test_capabilities.py:
- declared: each TableSpec's `requires` (capability -> columns, "*" for whole rows);
- observed: a static scan (ast) of every ctx.missing(fields, why, capability) call in collector/tables/,
  followed from each table's generator through its module and the shared helpers (_accounts, _glob, ...).

    python scripts/capmatrix.py            # rewrite docs/capabilities.md
    python scripts/capmatrix.py --check    # exit 1 when the file is stale
    python scripts/capmatrix.py --caps config/quarry.conf   # capabilities a config's queries need
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from collector.registry import all_tables  # noqa: E402
from collector.table import ROWS, TableSpec  # noqa: E402

TABLES_DIR = REPO / "collector" / "tables"
OUTPUT = REPO / "docs" / "capabilities.md"
DEFAULT_CONFIG = REPO / "config" / "quarry.conf"

# What each capability lets Quarry read; the only capability names a table may declare.
CAPABILITIES = {
    "CAP_SYS_PTRACE": "other users' /proc/<pid>/{environ,fd,maps,exe,cwd,root,ns/*,io} (ptrace read access)",
    "CAP_DAC_READ_SEARCH": "files and directories whose mode denies this user: /etc/shadow, /etc/sudoers, "
                           "other users' home files, 0400 firmware files in /sys (DMI, ACPI, SMBIOS), "
                           "/dev/cpu/*/cpuid, block devices, /proc/net/ip_tables_names",
    "CAP_NET_ADMIN": "iptables rules (getsockopt IPT_SO_GET_INFO/ENTRIES)",
    "CAP_NET_RAW": "the raw socket those getsockopt calls are made on",
    "CAP_SYS_ADMIN": "real addresses in /proc/iomem (zero otherwise)",
}


# What the matrix cannot say in a row.
NOTES = (
    "`pid_with_namespace` and `mount_namespace_id` entries only concern queries that read another process's "
    "mount namespace (`WHERE pid_with_namespace = N`): without `CAP_SYS_PTRACE` those rows are absent.",
    "Capabilities joined by + are needed together (iptables opens a raw socket, then asks for the rules).",
    "`disk_encryption` returns rows for uid 0 only, as osquery does; a capability does not replace it.",
    "`kernel_keys` lists the keys the running user may view (/proc/keys): no capability widens it.",
)


def split_caps(capability: str) -> list[str]:
    """"CAP_NET_ADMIN+CAP_NET_RAW" (all of them together) -> its parts."""
    return capability.split("+")


# --- static scan -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MissingCall:
    """One ctx.missing(...) call: the capability strings it may pass and the columns (None: computed)."""

    file: str
    line: int
    caps: tuple[str, ...]
    fields: tuple[str, ...] | None


@dataclass
class _Module:
    defs: dict[str, set[str]]  # top-level def/class -> names it references
    calls: dict[str, list[MissingCall]]  # top-level def/class -> its ctx.missing calls
    helpers: dict[str, str]  # local name -> helper module ("_accounts") or "_mod.name"


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _cap_strings(expr: ast.AST | None, scope: ast.AST) -> tuple[str, ...]:
    if expr is None or (isinstance(expr, ast.Constant) and expr.value is None):
        return ()
    if isinstance(expr, ast.Name):  # cap = "..." if ... else None, earlier in the same function
        found: list[str] = []
        for n in ast.walk(scope):
            targets = n.targets if isinstance(n, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == expr.id for t in targets):
                found += _strings(n.value)
        return tuple(found)
    return tuple(_strings(expr))


def _fields(expr: ast.AST | None) -> tuple[str, ...] | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return (expr.value,)
    if isinstance(expr, (ast.List, ast.Tuple)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in expr.elts):
        return tuple(e.value for e in expr.elts) or (ROWS,)  # [] means "rows", not columns
    return None


def _calls(node: ast.AST, rel: str) -> list[MissingCall]:
    out = []
    for n in ast.walk(node):
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "missing"):
            continue
        args = list(n.args)
        kw = {k.arg: k.value for k in n.keywords}
        fields = args[0] if args else kw.get("fields")
        cap = args[2] if len(args) > 2 else kw.get("capability")
        out.append(MissingCall(rel, n.lineno, _cap_strings(cap, node), _fields(fields)))
    return out


def _parse(path: Path) -> _Module:
    tree = ast.parse(path.read_text(), str(path))
    rel = str(path.relative_to(REPO))
    mod = _Module({}, {}, {})
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "collector.tables":
            for a in node.names:
                mod.helpers[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("collector.tables._"):
            for a in node.names:
                mod.helpers[a.asname or a.name] = node.module.rsplit(".", 1)[1] + "." + a.name
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            refs = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            refs |= {f"{n.value.id}.{n.attr}" for n in ast.walk(node)
                     if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
            mod.defs[node.name] = refs
            mod.calls[node.name] = _calls(node, rel)
    return mod


def _reach(modules: dict[str, _Module], start: tuple[str, str]) -> list[MissingCall]:
    """Every ctx.missing call reachable from (module, def), across helper modules."""
    seen: set[tuple[str, str]] = set()
    todo = [start]
    found: list[MissingCall] = []
    while todo:
        key = todo.pop()
        if key in seen or key[0] not in modules or key[1] not in modules[key[0]].defs:
            continue
        seen.add(key)
        mod = modules[key[0]]
        found += mod.calls[key[1]]
        for ref in mod.defs[key[1]]:
            if ref in mod.defs:
                todo.append((key[0], ref))
            head, _, attr = ref.partition(".")
            target = mod.helpers.get(head)
            if target is None:
                continue
            if "." in target:  # from collector.tables._x import name
                todo.append(tuple(target.split(".", 1)))  # type: ignore[arg-type]
            elif attr:  # _x.name
                todo.append((target, attr))
    return found


@functools.cache
def scan() -> dict[str, list[MissingCall]]:
    """table name -> the ctx.missing calls its generator can reach (do not mutate: cached)."""
    modules = {p.stem: _parse(p) for p in sorted(TABLES_DIR.glob("*.py"))}
    out: dict[str, list[MissingCall]] = {}
    for stem in modules:
        if stem.startswith("_"):
            continue
        module = importlib.import_module(f"collector.tables.{stem}")
        specs = list(getattr(module, "SPECS", ())) + ([module.SPEC] if hasattr(module, "SPEC") else [])
        for spec in specs:
            out[spec.name] = _reach(modules, (stem, spec.generator))
    return out


# --- the matrix --------------------------------------------------------------------------------------------
def matrix() -> dict[str, dict[str, tuple[str, ...]]]:
    """table -> capability -> columns (ROWS for whole rows), for tables that declare any."""
    return {name: dict(reg.spec.requires) for name, reg in all_tables().items() if reg.spec.requires}


def caps_for_tables(tables: list[str]) -> list[str]:
    specs: dict[str, TableSpec] = {n: r.spec for n, r in all_tables().items()}
    caps = {c for t in tables if t in specs for cap in specs[t].needs for c in split_caps(cap)}
    return sorted(caps)


def config_tables(config_path: str | Path) -> list[str]:
    """Tables the config's scheduled, pack and decorator queries read (FROM/JOIN heuristic of diff.py)."""
    from collector.config.load import load
    from collector.diff import referenced_tables

    loaded = load(str(config_path))
    sqls = [q.sql for q in loaded.config.queries()] + [sql for _, sql, _ in loaded.config.sql_places]
    known = all_tables()
    return sorted({t for sql in sqls for t in referenced_tables(sql) if t in known})


def _columns(cols: tuple[str, ...]) -> str:
    named = [c for c in cols if c != ROWS]
    parts = (["rows"] if ROWS in cols else []) + [f"`{c}`" for c in named]
    return ", ".join(parts)


def render(config_path: Path = DEFAULT_CONFIG) -> str:
    m = matrix()
    lines = [
        "# Table → Linux capability matrix",
        "",
        "Generated by `python scripts/capmatrix.py` from each table's `requires` declaration",
        "(`collector/tables/*.py`); `tests/deploy/test_capabilities.py` fails when this file is stale,",
        "when a `ctx.missing(...)` call in `collector/tables/` names a capability its table does not",
        "declare, and when a sample of tables run as an unprivileged user (with no capability, then with exactly the",
        "listed ones) disagrees with this list.",
        "",
        "Running as root (or with every capability below) Quarry sees everything. Without a capability the",
        "listed columns are NULL (or the rows are absent) and the query result carries a warning such as",
        "`processes: cwd, path unreadable in 93 row(s): ... (needs CAP_SYS_PTRACE)`; nothing is faked.",
        "Tables not listed need no capability.",
        "",
        "## Capabilities",
        "",
        "| capability | what it opens to Quarry |",
        "|---|---|",
    ]
    lines += [f"| `{cap}` | {what} |" for cap, what in CAPABILITIES.items()]
    lines += ["", "## Tables", "", "| table | capability | unreadable without it |", "|---|---|---|"]
    for table, reqs in m.items():
        for cap, cols in reqs.items():
            shown = " + ".join(f"`{c}`" for c in split_caps(cap))
            lines.append(f"| `{table}` | {shown} | {_columns(cols)} |")
    lines += ["", "Notes:", ""] + [f"- {n}" for n in NOTES]
    used = config_tables(config_path)
    rel = config_path.relative_to(REPO) if config_path.is_relative_to(REPO) else config_path
    lines += [
        "",
        f"## The example configuration (`{rel}` and its packs)",
        "",
        "Tables read: " + ", ".join(f"`{t}`" for t in used) + ".",
        "",
        "Capabilities they need: " + (", ".join(f"`{c}`" for c in caps_for_tables(used)) or "none") + ".",
        "This is the set `deploy/systemd/quarry.service` (CapabilityBoundingSet, AmbientCapabilities) and",
        "`deploy/kubernetes/daemonset.yaml` (securityContext.capabilities.add) grant; tests keep them equal.",
        "For another configuration: `python scripts/capmatrix.py --caps /path/to/osquery.conf`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when the published file differs")
    p.add_argument("--caps", metavar="CONFIG", help="print the capabilities this config's tables need")
    p.add_argument("--output", type=Path, default=OUTPUT)
    a = p.parse_args(argv)
    if a.caps:
        print(" ".join(caps_for_tables(config_tables(a.caps))))
        return 0
    text = render()
    if a.check:
        current = a.output.read_text() if a.output.exists() else ""
        if current != text:
            print(f"{a.output} is stale: run python scripts/capmatrix.py", file=sys.stderr)
            return 1
        return 0
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(text)
    print(f"wrote {a.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
