#!/usr/bin/env python3
"""Print a table module's SPEC from osquery's tables.json, the starting point of a new table.

    python scripts/specgen.py processes [more tables...] > collector/tables/processes.py

Columns that osquery declares only for other platforms become hidden columns with `platforms=`; they
always read NULL here but keep queries written for other platforms compiling, as osquery does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "osquery" / "tables.json"
FLAGS = ("index", "required", "hidden", "additional", "optimized")


def load() -> dict[str, dict]:
    return {t["name"]: t for t in json.loads(SHARED.read_text())["tables"]}


def render(t: dict, var: str = "SPEC", generator: str = "generate") -> str:
    lines = [f"{var} = table(", f"    {t['name']!r},", f"    {t['description']!r},", "    columns=["]
    for c in t["columns"]:
        args = [repr(c["name"]), c["type"], repr(c.get("description", ""))]
        for flag in FLAGS:
            if c.get(flag):
                args.append(f"{flag}=True")
        if c.get("collate"):
            args.append(f"collate={c['collate']!r}")
        plats = c.get("platforms")
        if plats and "linux" not in plats:
            args.append(f"platforms={tuple(plats)!r}")
        lines.append(f"        col({', '.join(args)}),")
    lines.append("    ],")
    attrs = []
    if generator != "generate":
        attrs.append(f"generator={generator!r}")
    for a in ("evented", "cacheable", "user_data", "utility"):
        if t.get(a):
            attrs.append(f"{a}=True")
    attrs.append(f"platforms={tuple(t['platforms'])!r}")
    if t.get("examples"):
        attrs.append(f"examples={tuple(t['examples'])!r}")
    for a in attrs:
        lines.append(f"    {a},")
    lines.append(")")
    return "\n".join(lines)


def main(names: list[str]) -> None:
    tables = load()
    types = sorted({c["type"] for n in names for c in tables[n]["columns"]})
    print(f"from collector.table import {', '.join(types)}, col, table\n")
    many = len(names) > 1
    for n in names:
        var = f"{n.upper()}_SPEC" if many else "SPEC"
        print(render(tables[n], var, f"gen_{n}" if many else "generate"))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
