"""`nas search --jobs N`: N search workers on one machine, sharing one study.

The command re-runs itself N - 1 times as worker processes (each `--jobs 1`, output to a log file
in a temporary `nas-workers-*` folder, removed when every worker succeeded) and is the N-th worker
itself, with the live view; they meet in the study's storage, which hands out trial numbers
atomically, so no design is trained twice and the study ends with exactly the requested trials
(`nas.search.optimize.claim_slot`). SQLite takes the few writes per epoch of a handful of workers;
many machines want PostgreSQL. Workers share the device: on a GPU several small trainings at once
keep it busy where one cannot.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a device's type is read: the command line does not import torch for it
    import torch

# On CUDA N trainings of a 200k-parameter net share one GPU; on a 2-core CPU one training already
# uses both cores, so more workers only compete.
CUDA_JOBS = 4


def default_jobs(device: torch.device) -> int:
    return CUDA_JOBS if device.type == "cuda" else 1


def worker_argv(argv: list[str]) -> list[str]:
    """The worker's command line: the same search with --jobs 1 and no final rung (the command
    itself runs it, once every worker is done)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--jobs":
            skip = True
        elif not arg.startswith("--jobs="):
            out.append(arg)
    return [sys.executable, "-m", "nas", *out, "--jobs", "1", "--final-rung", "0"]


@contextmanager
def extra_workers(argv: list[str], n: int) -> Iterator[list[str]]:
    """Start n worker processes of this search, each writing to a log in a new temporary folder
    (none for n = 0); on leaving, wait for them and yield (through the list) one line per worker
    that failed, naming its log. The folder is removed when none failed."""
    problems: list[str] = []
    if n == 0:
        yield problems
        return
    folder = Path(tempfile.mkdtemp(prefix="nas-workers-"))
    logs = [folder / f"worker-{k + 1}.log" for k in range(n)]
    procs = []
    for path in logs:
        with open(path, "w") as log:
            procs.append(subprocess.Popen(worker_argv(argv), stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL))
    try:
        yield problems
    finally:
        for k, (proc, log) in enumerate(zip(procs, logs), start=1):
            code = proc.wait()
            if code not in (0, 130):  # 130: stopped by the user's Ctrl-C, as this process was
                last = (log.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
                problems.append(f"worker {k} exited with code {code}: {last} (log: {log})")
        if not problems:
            shutil.rmtree(folder, ignore_errors=True)
