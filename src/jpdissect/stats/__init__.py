"""Overhead analysis, statistics and batch reports, as pandas DataFrames.

The Python API (all take a capture path; see each function's module for the columns):

* :func:`packets` -- one row per frame, the requested fields as typed columns
  (:mod:`jpdissect.stats.frames`).
* :func:`relayed` -- one row per relayed datagram: scheme, session, leg, direction, inner bytes,
  the framing split into its components, header bytes, 802.15.4 cost on both hops
  (:mod:`jpdissect.stats.relayed`).
* :func:`sessions` -- one row per pledge session (the join-proxy issue's table,
  :func:`jpdissect.sessions.sessions`).
* :func:`summary` -- one row per scheme; :func:`claims` checks the draft's overhead claims.
* :func:`whatif` -- the same traffic re-encoded under every scheme (:mod:`jpdissect.stats.whatif`).
* :func:`conversations`, :func:`io_stat` -- tshark's ``-z conv,udp`` and ``-z io,stat``.

Radio costs follow :mod:`jpdissect.stats.radio`; pass ``pledge_profile``/``relay_profile`` as a
profile name with overrides (``"mesh,hops=3"``).
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

# The submodules first: the functions below share names with some of them (summary, relayed) and
# must be what the package attribute names once everything is imported.
from jpdissect.stats import io as _io_module  # noqa: F401
from jpdissect.stats import relayed as _relayed_module  # noqa: F401
from jpdissect.stats import summary as _summary_module  # noqa: F401
from jpdissect.stats.analysis import CaptureStats, Options, analyse
from jpdissect.stats.frames import iter_batches, packets
from jpdissect.stats.summary import claims

PathLike = str | os.PathLike[str]


def _analyse(path: PathLike, opts: Options, parts: tuple[str, ...]) -> Any:
    return analyse(path, opts, parts)


def _opts(**kw: Any) -> Options:
    conv: dict[str, Any] = {k: (tuple(v) if k in ("prefs", "decode_as") else v) for k, v in kw.items()}
    return Options(**conv)


def relayed(path: PathLike, **kw: Any) -> pd.DataFrame:
    """One row per relayed datagram (see :class:`jpdissect.stats.relayed.RelayedTable`)."""
    df = _analyse(path, _opts(**kw), ("relayed",)).relayed_df
    assert df is not None
    return df


def summary(path: PathLike, **kw: Any) -> pd.DataFrame:
    """One row per scheme seen in the capture."""
    return _analyse(path, _opts(**kw), ("summary",)).summary()


def whatif(path: PathLike, per_datagram: bool = False, **kw: Any) -> pd.DataFrame:
    """The capture's inner datagrams under every scheme, side by side (per datagram on request)."""
    st = _analyse(path, _opts(per_datagram=per_datagram, **kw), ("whatif",))
    if per_datagram:
        assert st.whatif_rows is not None
        return st.whatif_rows
    return st.whatif()


def conversations(path: PathLike, **kw: Any) -> pd.DataFrame:
    df = _analyse(path, _opts(**kw), ("conv",)).conv_df
    assert df is not None
    return df


def io_stat(path: PathLike, interval: float = 1.0, **kw: Any) -> pd.DataFrame:
    """Frames and bytes per interval, per hop (tshark ``-z io,stat``)."""
    df = _analyse(path, _opts(interval_ns=int(interval * 1e9), **kw), ("io",)).io_df
    assert df is not None
    return df


def sessions(path: PathLike, prefs: Any = (), decode_as: Any = ()) -> pd.DataFrame:
    """The join-proxy issue's session table (:func:`jpdissect.sessions.sessions`)."""
    from jpdissect.sessions import sessions as _sessions

    return _sessions(path, prefs, decode_as)


__all__ = [
    "CaptureStats", "Options", "analyse", "claims", "conversations", "io_stat", "iter_batches", "packets",
    "relayed", "sessions", "summary", "whatif",
]
