"""Files replaced whole: readers see the old file or the new one, never a part."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def durable_temporary(beside: Path, data: bytes) -> str:
    """`data` in a temporary file in `beside`'s directory, flushed to disk, ready for
    `os.replace(temporary, beside)`; nothing is left behind when writing fails."""
    handle, temporary = tempfile.mkstemp(prefix=f".{beside.name}.", suffix=".tmp", dir=beside.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary
