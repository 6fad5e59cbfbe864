"""`nas search --jobs N`: N search workers on one machine, sharing one study.

The command re-runs itself N - 1 times as worker processes (each `--jobs 1`, output to a log file)
and is the N-th worker itself, with the live view; they meet in the study's storage, which hands
out trial numbers atomically, so no design is trained twice and the study ends with exactly the
requested trials (`nas.search.claim_slot`). SQLite takes the few writes per epoch of a handful of
workers; many machines want PostgreSQL. Workers share the device: on a GPU several small
trainings at once keep it busy where one cannot.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

# On CUDA N trainings of a 200k-parameter net share one GPU; on a 2-core CPU one training already
# uses both cores, so more workers only compete.
CUDA_JOBS = 4


def default_jobs(device: torch.device) -> int:
    return CUDA_JOBS if device.type == "cuda" else 1


def worker_argv(argv: list[str]) -> list[str]:
    """The worker's command line: the same search with --jobs 1."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--jobs":
            skip = True
        elif not arg.startswith("--jobs="):
            out.append(arg)
    return [sys.executable, "-m", "nas", *out, "--jobs", "1"]


@contextmanager
def extra_workers(argv: list[str], n: int) -> Iterator[list[str]]:
    """Start n worker processes of this search; on leaving, wait for them and yield (through the
    list) one line per worker that failed, naming its log."""
    logs = Path(tempfile.mkdtemp(prefix="nas-workers-"))
    procs = []
    for k in range(n):
        with open(logs / f"worker-{k + 1}.log", "w") as log:
            procs.append(subprocess.Popen(worker_argv(argv), stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL))
    problems: list[str] = []
    try:
        yield problems
    finally:
        for k, proc in enumerate(procs):
            code = proc.wait()
            if code not in (0, 130):
                log = logs / f"worker-{k + 1}.log"
                last = (log.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
                problems.append(f"worker {k + 1} exited with code {code}: {last} (log: {log})")
