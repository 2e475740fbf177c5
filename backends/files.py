"""Files replaced whole: readers see the old file or the new one, never a part."""

from __future__ import annotations

import atexit
import os
import queue
import secrets
import tempfile
import threading
from pathlib import Path

RETIRED_SUFFIX = ".retired"


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


def replace_freeing_later(temporary: str, target: Path) -> None:
    """`os.replace(temporary, target)`, the replaced file's blocks freed by a background thread.

    Freeing a large file's blocks (and, on a file system mounted with `discard`, trimming
    them) takes milliseconds that the write would otherwise wait for: the old file is kept
    by a second name (`.NAME.XXXX.retired`) across the rename and unlinked afterwards. A
    name left by a crash is removed by `remove_retired`."""
    retired: str | None = str(target.with_name(f".{target.name}.{secrets.token_hex(4)}{RETIRED_SUFFIX}"))
    try:
        os.link(target, retired)
    except OSError:
        retired = None  # no old file, or no hard links here: the rename frees it itself
    try:
        os.replace(temporary, target)
    except BaseException:
        if retired is not None:
            _unlink(retired)
        raise
    if retired is not None:
        _retirement().put(retired)


def remove_retired(directory: Path) -> None:
    """Remove what `replace_freeing_later` had not unlinked when its process ended."""
    for path in directory.glob(f".*{RETIRED_SUFFIX}"):
        _unlink(str(path))


def wait_for_retired() -> None:
    """Return once every file handed to the background thread so far is unlinked."""
    if _queue is not None:
        _queue.join()


_queue: queue.Queue[str] | None = None
_queue_guard = threading.Lock()


def _retirement() -> queue.Queue[str]:
    global _queue
    with _queue_guard:
        if _queue is None:
            _queue = queue.Queue()
            threading.Thread(target=_unlink_retired, args=(_queue,), name="dcgw-retired-files", daemon=True).start()
            atexit.register(wait_for_retired)  # a command that applies and exits leaves no link behind
        return _queue


def _unlink_retired(pending: queue.Queue[str]) -> None:
    while True:
        path = pending.get()
        _unlink(path)
        pending.task_done()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # gone already (another process's start-up), or the directory went with it
