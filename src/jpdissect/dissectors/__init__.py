"""Protocol dissectors, one module per protocol, plus the registry they hang on.

Every module in this package registers itself on import; :func:`load_all`
imports them all once, so adding a protocol is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil

_loaded = False


def load_all() -> None:
    """Import every dissector module (idempotent)."""
    global _loaded
    if _loaded:
        return
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "registry":
            continue
        importlib.import_module(f"{__name__}.{info.name}")
    # Only now: a module that failed to import must fail again, loudly, next time.
    _loaded = True
