"""One self-contained HTML page: tables and pictures, the pictures inlined as base64 data URIs.

Self-contained means the page can be mailed, attached to an issue or opened
offline and still shows everything: no file beside it, no network, no script.
Every text that comes from the run (metric names, config values, labels) is
HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } .note { color: #a15c00; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list]


@dataclass
class Figure:
    title: str
    path: Path
    caption: str = ""


@dataclass
class Page:
    title: str
    subtitle: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a picture that could not be drawn, and why
    appendix: tuple[str, str] | None = None  # (title, preformatted text), e.g. the run's config


def data_uri(path: str | os.PathLike) -> str:
    """The picture at `path` as a `data:` URI."""
    p = Path(path)
    mime = _MIME.get(p.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(p.read_bytes()).decode("ascii")


def _cell(value) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def render(page: Page) -> str:
    """The page as one HTML document (a string)."""
    e = html.escape
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(page.title)}</title><style>{_STYLE}</style></head><body>", f"<h1>{e(page.title)}</h1>"]
    if page.subtitle:
        parts.append(f'<p class="sub">{e(page.subtitle)}</p>')
    for note in page.notes:
        parts.append(f'<p class="note">{e(note)}</p>')
    for table in page.tables:
        parts.append(f"<h2>{e(table.title)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in table.header) + "</tr>")
        parts.extend("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in table.rows)
        parts.append("</table>")
    for fig in page.figures:
        parts.append(f"<h2>{e(fig.title)}</h2><figure>"
                     f'<img src="{data_uri(fig.path)}" alt="{e(fig.title)}">'
                     + (f"<figcaption>{e(fig.caption)}</figcaption>" if fig.caption else "") + "</figure>")
    if page.appendix:
        parts.append(f"<h2>{e(page.appendix[0])}</h2><pre>{e(page.appendix[1])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
