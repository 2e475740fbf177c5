"""Every benchmark under bench/ still runs: each script once with `--quick` (tiny counts).

No timing is asserted: figures belong to the benchmarks' own output, never to a test.
A benchmark that breaks (an API it calls changed, a server it starts no longer comes up)
fails here instead of at the next measurement.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(path.name for path in (ROOT / "bench").glob("*.py"))


def test_every_benchmark_is_listed():
    assert {"engine.py", "backend_apply.py", "oauth_apply.py", "server.py", "signature.py", "zonefile.py",
            "hostile_consent.py"} <= set(BENCHMARKS)


@pytest.mark.parametrize("script", BENCHMARKS)
def test_benchmark_runs_with_tiny_counts(script):
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick"], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), f"{script} printed no figures"
