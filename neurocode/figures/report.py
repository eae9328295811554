"""One self-contained HTML report: sections of narrative, headline numbers, tables and figures.

Every figure is embedded as a base64 ``data:`` URI and the style sheet is inline, so the page
opens from disk in any browser with no other file and no network.

>>> import pandas as pd
>>> page = html_report("Demo", [Section("Stage", "Text <b>escaped</b>.", headline="42 %",
...                                     tables=[pd.DataFrame({"a": [1]})])])
>>> "&lt;b&gt;escaped" in page and "<td>1</td>" in page
True
"""

from __future__ import annotations

import base64
import html
import logging
from dataclasses import dataclass, field
from pathlib import Path

from neurocode.errors import ConfigError
from neurocode.io import write_text

log = logging.getLogger(__name__)

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2.5rem; }
.headline { font-size: 1.25rem; font-weight: 600; color: #8e2c1f; margin: 0.6rem 0; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #555; }
.meta { color: #666; font-size: 0.85rem; }
"""


@dataclass
class Section:
    """One part of a report.

    Attributes
    ----------
    title : str
    text : str
        Narrative; blank lines separate paragraphs (plain text, escaped).
    headline : str
        One line with the stage's number, shown large under the title.
    tables : list of pandas.DataFrame
        Drawn as HTML tables (values rendered with ``str``).
    figures : list of (str or Path, str)
        PNG files and their captions, embedded in the page.
    """

    title: str
    text: str = ""
    headline: str = ""
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)


def png_data_uri(path):
    """The PNG file ``path`` as a ``data:image/png;base64,...`` URI."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"report figure {path} does not exist")
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ConfigError(f"report figure {path} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _table(df):
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _section(s):
    parts = [f"<section><h2>{html.escape(s.title)}</h2>"]
    if s.headline:
        parts.append(f'<p class="headline">{html.escape(s.headline)}</p>')
    parts += [f"<p>{html.escape(p.strip())}</p>" for p in s.text.split("\n\n") if p.strip()]
    parts += [_table(t) for t in s.tables]
    for path, caption in s.figures:
        parts.append(f'<figure><img src="{png_data_uri(path)}" alt="{html.escape(caption, quote=True)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "\n".join(parts) + "</section>"


def html_report(title, sections, intro="", footer=""):
    """The report as one HTML string (UTF-8, inline style, figures as data URIs)."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [f"<p>{html.escape(p.strip())}</p>" for p in intro.split("\n\n") if p.strip()]
    body += [_section(s) for s in sections]
    if footer:
        body.append(f'<p class="meta">{html.escape(footer)}</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(path, title, sections, intro="", footer=""):
    """Write :func:`html_report` to ``path`` atomically; returns the path."""
    path = write_text(path, html_report(title, sections, intro, footer))
    log.info("wrote report %s (%.0f kB)", path, path.stat().st_size / 1e3)
    return path
