"""Start-up time of `dcgw --help` next to its anchor, `python -m uvicorn --help`.
Run: python bench/cli_startup.py [--runs N] [--quick]

Both run as fresh interpreters, interleaved pair by pair; the ratio is the median of the
per-pair ratios (target: <= 2x). `dcgw preview --help` is shown too: it must start as fast.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "dcgw --help": [sys.executable, "-m", "gateway.cli", "--help"],
    "dcgw preview --help": [sys.executable, "-m", "gateway.cli", "preview", "--help"],
    "python -m uvicorn --help": [sys.executable, "-m", "uvicorn", "--help"],
}
ANCHOR = "python -m uvicorn --help"


def elapsed(command: list[str]) -> float:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=environ_for(environment), cwd=ROOT)
    return time.perf_counter() - start


def environ_for(environment: dict[str, str]) -> dict[str, str]:
    environment.pop("PYTHONDONTWRITEBYTECODE", None)  # both sides use their bytecode caches
    return environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="two runs: check that the benchmark runs")
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs
    for command in COMMANDS.values():  # warm the page cache and bytecode
        elapsed(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, command in COMMANDS.items():
            times[name].append(elapsed(command))
    anchor = times[ANCHOR]
    print(f"{'command':<26} {'median':>9} {'ratio to anchor':>16}")
    for name, values in times.items():
        ratio = statistics.median(v / a for v, a in zip(values, anchor))
        label = "(anchor)" if name == ANCHOR else f"{ratio:.2f}x"
        print(f"{name:<26} {statistics.median(values) * 1000:>6.0f} ms {label:>16}")
    print("target: dcgw --help <= 2x python -m uvicorn --help")


if __name__ == "__main__":
    main()
