"""Writing the stats tables: aligned text, CSV, JSON, Markdown, Parquet.

A table is a titled DataFrame plus notes (the assumptions behind it): the text and Markdown forms
print the notes under the table, JSON carries them alongside the rows, CSV and Parquet -- formats
for the next program, not for a reader -- carry the rows only, one table per file.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from jpdissect.stats.cli import FORMATS  # the CLI owns the list (its parser must not load pandas)

#: Decimals shown for floats in the text and Markdown forms (CSV/JSON keep full precision).
FLOAT_DECIMALS = 3


@dataclass
class Table:
    title: str
    df: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    name: str = ""


def _cell(v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        if math.isinf(v):
            return str(v)
        s = f"{v:.{FLOAT_DECIMALS}f}"
        return s.rstrip("0").rstrip(".") if "." in s else s
    if isinstance(v, bytes | bytearray):
        return bytes(v).hex()
    if isinstance(v, pd.Timestamp | dt.datetime):
        return v.isoformat()
    if isinstance(v, pd.Timedelta | dt.timedelta):
        return f"{pd.Timedelta(v).total_seconds():.6f}"
    if isinstance(v, list | tuple):
        return ",".join(_cell(x) for x in v)
    return str(v)


def _rows(df: pd.DataFrame) -> list[list[str]]:
    return [[_cell(v) for v in rec] for rec in df.itertuples(index=False, name=None)]


def text_table(t: Table) -> str:
    cols = [str(c) for c in t.df.columns]
    rows = _rows(t.df)
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    numeric = [pd.api.types.is_numeric_dtype(t.df[c]) for c in t.df.columns]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric,
                                                                                strict=True)).rstrip()

    out = [t.title, "=" * len(t.title), fmt(cols), fmt(["-" * w for w in widths])]
    out += [fmt(r) for r in rows]
    if not rows:
        out.append("(no rows)")
    out += [f"  * {n}" for n in t.notes]
    return "\n".join(out) + "\n"


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown_table(t: Table, level: int = 2) -> str:
    cols = [str(c) for c in t.df.columns]
    numeric = [pd.api.types.is_numeric_dtype(t.df[c]) for c in t.df.columns]
    out = [f"{'#' * level} {t.title}", ""]
    out.append("| " + " | ".join(_md_escape(c) for c in cols) + " |")
    out.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    for r in _rows(t.df):
        out.append("| " + " | ".join(_md_escape(c) for c in r) + " |")
    if t.notes:
        out.append("")
        out += [f"- {_md_escape(n)}" for n in t.notes]
    return "\n".join(out) + "\n"


def _json_value(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, bytes | bytearray):
        return bytes(v).hex()
    if isinstance(v, pd.Timestamp | dt.datetime):
        return v.isoformat()
    if isinstance(v, pd.Timedelta | dt.timedelta):
        return pd.Timedelta(v).total_seconds()
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    if hasattr(v, "item"):
        return v.item()
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    cols = [str(c) for c in df.columns]
    return [{c: _json_value(v) for c, v in zip(cols, rec, strict=True)}
            for rec in df.itertuples(index=False, name=None)]


def write(tables: Sequence[Table], fmt: str, out: str | None, stream: TextIO) -> None:
    """Write ``tables`` in ``fmt`` to ``out`` (a path; ``-``/None = ``stream``).

    CSV and Parquet hold one table: the first; the others are written next to it as
    ``OUT.<name>.csv`` so nothing computed is dropped silently.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        if not out or out == "-":
            raise ValueError("parquet is binary: give an output file with -o")
        for i, t in enumerate(tables):
            path = Path(out) if i == 0 else _side(out, t.name or str(i), ".parquet")
            t.df.to_parquet(path, index=False)
        return
    if fmt == "csv":
        texts = []
        for t in tables:
            buf = io.StringIO()
            frame = t.df.copy()
            for c in frame.columns:
                if frame[c].dtype == object or "binary" in str(frame[c].dtype):
                    frame[c] = [_cell(v) for v in frame[c]]
            frame.to_csv(buf, index=False)
            texts.append(buf.getvalue())
        if out and out != "-":
            Path(out).write_text(texts[0])
            for t, text in zip(tables[1:], texts[1:], strict=True):
                _side(out, t.name or "extra", ".csv").write_text(text)
        else:
            stream.write("\n".join(texts))
        return
    if fmt == "json":
        doc: dict[str, Any] = {}
        for t in tables:
            doc[t.name or t.title] = {"title": t.title, "notes": t.notes, "rows": records(t.df)}
        text = json.dumps(doc if len(tables) != 1 else doc[next(iter(doc))], indent=1) + "\n"
    elif fmt == "markdown":
        text = "\n".join(markdown_table(t) for t in tables)
    else:
        text = "\n".join(text_table(t) for t in tables)
    if out and out != "-":
        Path(out).write_text(text)
    else:
        stream.write(text)


def _side(out: str, name: str, suffix: str) -> Path:
    p = Path(out)
    return p.with_name(f"{p.stem}.{name}{suffix}")


__all__ = ["FORMATS", "Table", "markdown_table", "records", "text_table", "write"]
