"""Tables and generated blocks in the Markdown docs, as study scripts write them.

A docs page keeps each generated block between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` so that a script can refresh it without touching the prose.

>>> import pandas as pd
>>> print(markdown_table(pd.DataFrame({"a": [1], "b": ["x"]})))
| a | b |
|---|---|
| 1 | x |
>>> replace_block("intro", "t", "| a |")
'intro\\n<!-- t:start -->\\n| a |\\n<!-- t:end -->\\n'
"""

from __future__ import annotations


def markdown_table(df):
    """A Markdown pipe table of a pandas DataFrame (values rendered with ``str``)."""
    rows = [list(df.columns)] + df.astype(str).values.tolist()
    lines = ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join([lines[0], "|" + "---|" * len(df.columns)] + lines[1:])


def replace_block(text, name, body):
    """Put ``body`` between the ``NAME`` markers of ``text`` (appended if they are absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        return text[:text.index(start)] + block + text[text.index(end) + len(end):]
    return text + "\n" + block + "\n"
