"""A small inline SVG chart of accuracy over time with drift, update and deployment markers.

Drawn on the server so the page needs no chart library and no build step; the browser swaps
in a fresh one when a live event arrives.
"""

from __future__ import annotations

from html import escape
from typing import Any

COLOURS = {"drift": "#d9480f", "update": "#1c7ed6", "deployment": "#2b8a3e"}
LINE_COLOURS = ("#495057", "#7048e8", "#0c8599", "#e67700", "#c2255c")


def svg(series: dict[str, Any], width: int = 320, height: int = 80, pad: int = 4) -> str:
    points = series.get("points", [])
    markers = series.get("markers", [])
    times = [p["t"] for p in points] + [m["at_ms"] for m in markers]
    if not times:
        return (f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="no data yet">'
                f'<text x="{pad}" y="{height // 2}" font-size="11" fill="#868e96">no samples yet</text></svg>')
    t0, t1 = min(times), max(times)
    span = max(t1 - t0, 1)

    def x(t: float) -> float:
        return round(pad + (t - t0) / span * (width - 2 * pad), 1)

    # The y axis spans [lo, 1], lo a tenth below the worst point: a drop from 95% to 77% must show.
    lo = min([0.9] + [int(p["accuracy"] * 10) / 10 for p in points])

    def y(acc: float) -> float:
        return round(height - pad - (acc - lo) / (1 - lo) * (height - 2 * pad), 1)

    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="accuracy over time">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f9fa"/>',
             f'<text x="{pad}" y="{height - pad}" font-size="9" fill="#adb5bd">{lo * 100:.0f}%</text>',
             f'<text x="{pad}" y="{pad + 8}" font-size="9" fill="#adb5bd">100%</text>']
    for m in markers:
        label = escape(f"{m['kind']} v{m.get('version')} {m.get('action') or ''}".strip())
        parts.append(f'<line class="marker marker-{m["kind"]}" x1="{x(m["at_ms"])}" x2="{x(m["at_ms"])}" y1="0" y2="{height}" '
                     f'stroke="{COLOURS.get(m["kind"], "#adb5bd")}" stroke-dasharray="3,2"><title>{label}</title></line>')
    by_version: dict[int, list[dict[str, Any]]] = {}
    for p in points:
        by_version.setdefault(int(p["version"]), []).append(p)
    for i, (version, pts) in enumerate(sorted(by_version.items())):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        coords = " ".join(f"{x(p['t'])},{y(p['accuracy'])}" for p in pts)
        parts.append(f'<polyline class="acc v{version}" fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}">'
                     f'<title>v{version}: {pts[-1]["accuracy"]:.3f}</title></polyline>')
        last = pts[-1]
        parts.append(f'<circle cx="{x(last["t"])}" cy="{y(last["accuracy"])}" r="2.5" fill="{colour}">'
                     f'<title>v{version}: {last["accuracy"]:.3f} over the last {last["samples"]} samples</title></circle>')
        parts.append(f'<text x="{min(x(last["t"]) + 4, width - 58)}" y="{max(y(last["accuracy"]) - 3, 10)}" font-size="10" '
                     f'fill="{colour}">v{version} {last["accuracy"] * 100:.0f}%</text>')
    parts.append("</svg>")
    return "".join(parts)
