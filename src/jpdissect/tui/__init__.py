"""The Textual terminal UI (``jpdissect tui``) and live capture (``jpdissect live``).

The UI adds no protocol logic: every row, tree and statistic comes from the
engine, the dissectors, ``sessions`` and ``stats``. What lives here is how a
million-frame file is made to feel instant -- an offset index scanned once,
an in-order dissection pass in a child process, on-demand dissection of what
is on screen -- and how the panes talk to each other.
"""

from __future__ import annotations
