"""How fast the command line answers: `nas --help`, a command's help and an argument error, each
a whole process, against a bare Python start and an `import torch` measured in the same run.

    python benchmarks/cli_speed.py [--runs 7]

Prints min and median seconds per command and the median's ratio to the bare start. The goal:
every row under 0.5 s (the parser imports neither torch nor optuna; commands import them when
they run).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import time

PY = sys.executable
NAS = shutil.which("nas") or f"{PY} -m nas"
COMMANDS = {
    "python -c pass (baseline)": [PY, "-c", "pass"],
    "python -c 'import torch' (for scale)": [PY, "-c", "import torch"],
    "nas --help": [*NAS.split(), "--help"],
    "nas search --help": [*NAS.split(), "search", "--help"],
    "nas train-best --help": [*NAS.split(), "train-best", "--help"],
    "nas search --epochs x (argument error)": [*NAS.split(), "search", "--epochs", "x"],
}


def cpu_name() -> str:
    """The CPU model, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="counted runs per command (default 7)")
    runs = parser.parse_args().runs
    for argv in COMMANDS.values():  # warm the file cache
        timed(argv)
    # interleaved, so that a drift of the machine's speed touches every command alike
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, argv in COMMANDS.items():
            times[name].append(timed(argv))
    base = statistics.median(times["python -c pass (baseline)"])
    print(f"{cpu_name()}, Python {platform.python_version()}, {runs} runs each")
    print(f"{'command':<42} {'min s':>7} {'median s':>9} {'/ baseline':>11}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<42} {min(values):>7.3f} {median:>9.3f} {median / base:>10.1f}x")


if __name__ == "__main__":
    main()
