"""numba's `njit` with an on-disk cache that works wherever livereduce is installed.

numba caches compiled kernels next to their source (`__pycache__`), else under the user's home. A service
installed read-only and run by a user without a writable HOME has neither, and numba then refuses to compile
at all ("cannot cache function ... no locator available"). So before the first kernel is decorated we check:
NUMBA_CACHE_DIR set by the operator wins; else, when the source tree is not writable, the cache goes to
`$XDG_CACHE_HOME/livereduce/numba` (or `~/.cache/...`), else to a per-user directory under the system temp dir;
when nothing is writable, kernels are compiled without a cache (slower start, same results).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numba

_SOURCE_CACHE = Path(__file__).resolve().parents[1] / "__pycache__"


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def _choose_cache_dir() -> Path | None:
    """Where compiled kernels are cached; None when numba's own default (next to the source) works or when
    nothing is writable (see CACHING)."""
    if os.environ.get("NUMBA_CACHE_DIR") or _writable(_SOURCE_CACHE):
        return None
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser())
    if _writable(user_cache / "livereduce" / "numba"):
        return user_cache / "livereduce" / "numba"
    try:
        temp = Path(tempfile.gettempdir()) / f"livereduce-numba-{os.getuid()}"
    except FileNotFoundError:  # gettempdir() found no writable directory at all
        return None
    return temp if _writable(temp) else None


CACHE_DIR = _choose_cache_dir()
if CACHE_DIR is not None:
    numba.config.CACHE_DIR = str(CACHE_DIR)  # type: ignore[attr-defined]  # numba's config module, untyped
CACHING = bool(os.environ.get("NUMBA_CACHE_DIR")) or CACHE_DIR is not None or _writable(_SOURCE_CACHE)


def njit(*args, **options):
    """numba.njit, cached on disk where a cache directory is usable."""
    return numba.njit(*args, cache=CACHING, **options)
