"""Helpers shared by the server fixtures: packages, free ports, waiting for a listener."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "install-system-packages"


def require_program(program: str, *packages: str) -> str:
    """Path of `program`; installs its Debian packages when running as root, else skips."""
    found = shutil.which(program) or _sbin(program)
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip(f"{program} is not installed (Debian: {' '.join(packages)}); run the tests as root "
                    f"or run {INSTALL_SCRIPT.relative_to(ROOT)} to install it")
    result = subprocess.run([str(INSTALL_SCRIPT), *packages], capture_output=True, text=True)
    found = shutil.which(program) or _sbin(program)
    if result.returncode != 0 or not found:
        pytest.fail(f"installing {' '.join(packages)} failed: {result.stderr.strip()[-2000:]}")
    return found


def _sbin(program: str) -> str | None:
    for directory in ("/usr/sbin", "/sbin", "/usr/lib/postgresql/15/bin"):
        candidate = Path(directory) / program
        if candidate.exists():
            return str(candidate)
    return None


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 for TCP (and, for DNS servers, checked free for UDP too)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 30.0,
                  log: Path | None = None) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            detail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with status {process.returncode} before listening\n{detail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
