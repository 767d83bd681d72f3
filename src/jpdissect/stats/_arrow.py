"""Column lists to pandas DataFrames with Arrow-backed dtypes.

Why Arrow dtypes: nullable integers stay integers (a missing pledge copy is <NA>, not a float NaN
that turns frame numbers into 1.23e+05), byte strings stay bytes, and Parquet output keeps the
types without a conversion step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

I64 = pa.int64()
I32 = pa.int32()
U32 = pa.uint32()
F64 = pa.float64()
STR = pa.string()
BOOL = pa.bool_()
BIN = pa.binary()
TS = pa.timestamp("ns", tz="UTC")
DUR = pa.duration("ns")


def frame(columns: Mapping[str, tuple[pa.DataType, Sequence[Any]]]) -> pd.DataFrame:
    """One DataFrame from ``name -> (arrow type, values)``; every column gets ``pd.ArrowDtype``."""
    arrays = {name: pa.array(values, type=typ) for name, (typ, values) in columns.items()}
    table = pa.table(arrays) if arrays else pa.table({})
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def from_records(rows: Sequence[Mapping[str, Any]], types: Mapping[str, pa.DataType]) -> pd.DataFrame:
    """Rows (small tables: summaries) to a DataFrame typed per ``types`` (columns in that order)."""
    return frame({k: (t, [r.get(k) for r in rows]) for k, t in types.items()})


def arrow(df: pd.DataFrame) -> pd.DataFrame:
    """Convert a NumPy-backed frame (e.g. from a groupby) to Arrow dtypes."""
    return pa.Table.from_pandas(df, preserve_index=False).to_pandas(types_mapper=pd.ArrowDtype)


__all__ = ["BIN", "BOOL", "DUR", "F64", "I32", "I64", "STR", "TS", "U32", "arrow", "frame", "from_records"]
