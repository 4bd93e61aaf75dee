"""BENCHMARKS.md from the figures `python -m bench` collected (also saved as JSON beside the charts).

    python -m bench.report bench/results/figures.json [--out BENCHMARKS.md]   # re-render without re-running

A result is {"meta": {...}, "sections": [section, ...]}. A section has a name and title, and either "figures"
(see bench.common.figure: every run's value, unit, which way is better, baseline names), "outage" (whatever
bench.outage.run returned), "error" or "unavailable"; optional "intro", "notes", and "chart": False to draw none.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("quarry.bench.report")

RESULTS_DIR = Path("bench/results")


def fmt(x: float) -> str:
    """Enough digits to compare, no more: 123,456 / 123 / 12.3 / 1.23 / 0.123."""
    a = abs(x)
    if float(x).is_integer() and a < 1000:
        return f"{int(x)}"
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 0.1 or a == 0:
        return f"{x:.2f}"
    return f"{x:.3g}"


def median(f: dict[str, Any]) -> float:
    return float(statistics.median(f["samples"]))


def ratios(f: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> list[tuple[str, float]]:
    """(baseline name, this median / the baseline's median) for each baseline measured in the section."""
    out = []
    for b in f.get("baseline") or []:
        base = by_name.get(b)
        if base is None:
            out.append((b, float("nan")))
            continue
        m = median(base)
        out.append((b, median(f) / m if m else float("inf")))
    return out


def figure_rows(figures: list[dict[str, Any]]) -> list[str]:
    by_name = {f["name"]: f for f in figures}
    rows = ["| measurement | median | min – max | runs | ratio to baseline |", "|---|---:|---:|---:|---|"]
    for f in figures:
        xs = f["samples"]
        rs = ratios(f, by_name)
        ratio = ", ".join(f"**{r:.2f}x** {b}" if r == r else f"{b}: not measured" for b, r in rs) or "—"
        name = f["name"] + (f" ({f['note']})" if f.get("note") else "")
        arrow = "↑" if f.get("better", "higher") == "higher" else "↓"
        rows.append(f"| {name} | {fmt(median(f))} {f['unit']} {arrow} | {fmt(min(xs))} – {fmt(max(xs))} | "
                    f"{len(xs)} | {ratio} |")
    return rows


def chart(section: dict[str, Any], path: Path) -> Path | None:
    """Horizontal bars of the medians with min-max whiskers, one chart per unit-sharing section; baselines grey."""
    figures = section.get("figures") or []
    if section.get("chart") is False or len(figures) < 2 or len({f["unit"] for f in figures}) != 1:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        log.warning("matplotlib is missing (pip install -e '.[bench]'): no chart for %s", section.get("name"))
        return None
    bases = {b for f in figures for b in f.get("baseline") or []}
    names = [f["name"] for f in figures][::-1]
    meds = [median(f) for f in figures][::-1]
    lo = [m - min(f["samples"]) for m, f in zip(meds, figures[::-1])]
    hi = [max(f["samples"]) - m for m, f in zip(meds, figures[::-1])]
    colors = ["#9e9e9e" if n in bases else "#1f6fb4" for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.42 * len(names) + 1.1), dpi=80)
    ax.barh(names, meds, xerr=[lo, hi], color=colors, capsize=3)
    ax.set_xlabel(f"{figures[0]['unit']} (median, whiskers min–max; grey = baseline)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: fmt(x)))
    ax.set_title(section.get("title", ""), fontsize=10)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def link(target: str | Path, md: Path) -> str:
    return os.path.relpath(Path(target).resolve(), md.resolve().parent)


def outage_lines(result: dict[str, Any], md: Path) -> list[str]:
    """bench.outage.run's dict: its figures (if in bench.common.figure form), other scalars, and its PNGs."""
    lines: list[str] = []
    figures = result.get("figures")
    if isinstance(figures, list) and figures and isinstance(figures[0], dict) and "samples" in figures[0]:
        lines += figure_rows(figures) + [""]
    elif isinstance(figures, dict):
        result = {**result, **figures}
    files = {k: v for k, v in result.items() if isinstance(v, (str, Path)) and str(v).endswith((".png", ".json"))}
    scalars = [(k, v) for k, v in result.items() if k != "figures" and k not in files
               and isinstance(v, (int, float, str))]
    if scalars:
        lines += ["| figure | value |", "|---|---:|"]
        lines += [f"| {k} | {fmt(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v} |"
                  for k, v in scalars]
        lines.append("")
    lines += [f"- data: [{Path(v).name}]({link(v, md)})" for v in files.values() if str(v).endswith(".json")]
    pngs = [v for v in files.values() if str(v).endswith(".png")]
    pngs += [p for v in result.values() if isinstance(v, list) for p in v
             if isinstance(p, (str, Path)) and str(p).endswith(".png")]
    lines += [f"![outage chart]({link(p, md)})" for p in pngs]
    return lines


def section_lines(s: dict[str, Any], md: Path, charts: Path) -> list[str]:
    lines = [f"## {s['title']}", ""]
    if s.get("intro"):
        lines += [s["intro"], ""]
    if s.get("error"):
        lines += [f"**Not measured in this run**: {s['error']}", ""]
    elif s.get("unavailable"):
        lines += [f"Not available: {s['unavailable']}", ""]
    elif "outage" in s:
        lines += outage_lines(s["outage"], md) + [""]
    else:
        lines += figure_rows(s.get("figures") or []) + [""]
        png = chart(s, charts / f"{s['name']}.png")
        if png:
            lines += [f"![{s['title']}]({link(png, md)})", ""]
    lines += [f"- {n}" for n in s.get("notes") or []]
    if s.get("notes"):
        lines.append("")
    if s.get("seconds") is not None:
        load = s.get("load")
        lines += [f"<sub>section took {s['seconds']:.0f} s"
                  + (f"; 1-min load average {load[0]:.1f} at its start, {load[1]:.1f} at its end" if load else "")
                  + "</sub>", ""]
    return lines


def render(result: dict[str, Any], md: Path, charts: Path = RESULTS_DIR) -> str:
    meta = result.get("meta") or {}
    sections = result.get("sections") or []
    head = [
        "# Quarry benchmarks", "",
        f"Written by `{meta.get('command', 'python -m bench')}` (`make bench`); do not edit by hand."
        + (" **Quick mode: smoke-test durations, not representative.**" if meta.get("quick") else ""), "",
        "Every figure is the median of its runs with the min – max range. Where a peer was measured in the same "
        "run (same host, same server, same data), the ratio is this median divided by the baseline's median: "
        "for rates (↑ is better) above 1x means faster than the baseline; for times and sizes (↓ is better) below "
        "1x means less. Charts: bars are medians, whiskers min – max, grey bars are baselines.", "",
    ]
    facts = [(k, meta[k]) for k in ("date", "commit", "host", "cpu", "cores", "memory", "python", "runs",
                                    "load_at_start", "total_seconds", "merged") if k in meta]
    if facts:
        head += ["| run | |", "|---|---|"]
        head += [f"| {k.replace('_', ' ')} | {fmt(v) if isinstance(v, float) else v} |" for k, v in facts]
        head.append("")
    if meta.get("load_at_start", 0) > (meta.get("cores") or 1):
        head += [f"**The host was busy during this run** (1-min load average {meta['load_at_start']:.1f} on "
                 f"{meta.get('cores')} cores at the start; each section gives its own): absolute figures are low "
                 "and noisy; the ratios, measured side by side under the same load, are the figures to read.", ""]
    if sections:
        head += ["Contents: " + " · ".join(f"[{s['title']}](#{anchor(s['title'])})" for s in sections), ""]
    body: list[str] = []
    for s in sections:
        body += section_lines(s, md, charts)
    return "\n".join(head + body).rstrip() + "\n"


def anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def write(result: dict[str, Any], md: Path, charts: Path = RESULTS_DIR) -> Path:
    """Save the figures as JSON under `charts`, draw the charts there and write the Markdown to `md`."""
    charts.mkdir(parents=True, exist_ok=True)
    (charts / "figures.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    text = render(result, md, charts)
    md.write_text(text)
    return md


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("figures", type=Path)
    ap.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    ap.add_argument("--charts", type=Path, default=None, help="chart folder (default: beside the JSON)")
    a = ap.parse_args(argv)
    try:
        result = json.loads(a.figures.read_text())
    except (OSError, ValueError) as e:
        print(f"{a.figures}: {e}", file=sys.stderr)
        return 1
    write(result, a.out, a.charts or a.figures.parent)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
