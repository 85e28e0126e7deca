"""Product files appear whole or not at all.

Readers (web monitors, copy jobs, the next cycle's script) poll product paths while the daemon rewrites them
every cycle. Writing in place exposed empty and half-written files, and a kill mid-write left them corrupt.
So Save* algorithms write a hidden temporary file in the same directory, flush it to disk, and rename it over
the product path: rename within one filesystem is atomic, so a reader sees the old file or the new one. The
rename replaces a symlink at the product path instead of writing through it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def product_file(filename: str | os.PathLike, *, append: bool = False) -> Iterator[str]:
    """Yield a temporary path to write the product into; on success it replaces `filename` atomically.

    With `append`, the temporary file starts as a copy of the existing product. On an exception the temporary
    file is removed and the product is left as it was.
    """
    final = Path(filename)
    temp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode 666 less the umask, as open()
    os.close(fd)
    try:
        if append and final.is_file():
            shutil.copyfile(final, temp)
        yield str(temp)
        _fsync(temp)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(final.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make the rename itself durable (a power cut must not bring back the old file)."""
    with contextlib.suppress(OSError):
        _fsync(path)
