"""npm_packages: package.json of every package in node_modules folders (global ones by default, or the
`directory` asked for), following nested node_modules up to max_depth (default 100, -1 unlimited)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _pkgns

SPEC = table(
    'npm_packages',
    'Node packages installed in a system.',
    columns=[
        col('name', TEXT, 'Package display name'),
        col('version', TEXT, 'Package-supplied version', collate='version'),
        col('description', TEXT, 'Package-supplied description'),
        col('author', TEXT, 'Package-supplied author'),
        col('license', TEXT, 'License under which package is launched'),
        col('homepage', TEXT, 'Package supplied homepage'),
        col('path', TEXT, 'Path at which this module resides'),
        col('directory', TEXT, 'Directory where node_modules are located', index=True, optimized=True),
        col('depth', INTEGER, 'Nesting depth of the package (0 = direct dependency)'),
        col('max_depth', INTEGER, 'Maximum depth to search for nested packages (default 100, -1 = unlimited)', hidden=True, additional=True),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
        col('mount_namespace_id', TEXT, 'Mount namespace id', hidden=True),
    ],
    platforms=('darwin', 'linux', 'windows'),
    examples=('select * from npm_packages', "select * from npm_packages where directory = '/home/user/my_project'", "select * from npm_packages where directory = '/home/user/my_project' and max_depth = 0", 'select name, version, depth from npm_packages where depth > 0'),
    requires={"CAP_SYS_PTRACE": ["mount_namespace_id"]},
)

GLOBAL_DIRS = ("/usr/lib", "/usr/local/lib")  # each holds the global node_modules
DEFAULT_MAX_DEPTH = 100


def _text(v: Any) -> str:
    if isinstance(v, dict):  # {"name": ..., "email": ...} / {"type": ...} forms
        v = v.get("name") or v.get("type") or ""
    return "" if v is None or isinstance(v, (list, dict)) else str(v)


def package_row(pkg_dir: str) -> Row | None:
    try:
        with open(os.path.join(pkg_dir, "package.json"), "rb") as f:
            data = json.loads(f.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {k: _text(data.get(k)) for k in ("name", "version", "description", "author", "license", "homepage")}


def walk(node_modules: str, depth: int, max_depth: int, ctx: Context) -> Iterator[tuple[str, int]]:
    """(package dir, depth) for node_modules/<pkg> and node_modules/@scope/<pkg>, then nested ones."""
    try:
        names = sorted(os.listdir(node_modules))
    except OSError:
        return
    for n in names:
        if n.startswith("."):
            continue
        full = os.path.join(node_modules, n)
        pkgs = [os.path.join(full, s) for s in sorted(os.listdir(full))] if n.startswith("@") and \
            os.path.isdir(full) else [full]
        for p in pkgs:
            if not os.path.isfile(os.path.join(p, "package.json")):
                continue
            ctx.check()
            yield p, depth
            nested = os.path.join(p, "node_modules")
            if (max_depth < 0 or depth < max_depth) and os.path.isdir(nested):
                yield from walk(nested, depth + 1, max_depth, ctx)


def generate(ctx: Context) -> Iterator[Row]:
    dirs = ctx.eq("directory")
    depths = ctx.eq("max_depth")
    max_depth = DEFAULT_MAX_DEPTH
    if depths:
        try:
            max_depth = int(next(iter(depths)))
        except (TypeError, ValueError):
            pass
    for prefix, echo in _pkgns.roots(ctx):
        for d in sorted(str(x) for x in dirs) if dirs is not None else GLOBAL_DIRS:
            base = ctx.path(prefix + d).rstrip("/") + "/node_modules"
            for pkg_dir, depth in walk(base, 0, max_depth, ctx):
                row = package_row(pkg_dir)
                if row is None:
                    continue
                root = ctx.path(prefix or "/").rstrip("/")
                row.update(path=pkg_dir[len(root):],
                           directory=d, depth=depth, **echo)
                if depths:
                    row["max_depth"] = next(iter(depths))
                yield row
