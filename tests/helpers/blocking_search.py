"""`nas search` whose training blocks at a chosen moment, so that a test can interrupt or kill
it there without racing the search (the real command line, the real signals).

    python tests/helpers/blocking_search.py MARKER BLOCK_AT SEARCH-ARGS...

BLOCK_AT "epoch:N": the N-th training epoch of the run (counting every trial's epochs) starts,
fetches one batch (so loader workers are up), touches MARKER and sleeps. "between:N": after the
N-th finished trial, touches MARKER and sleeps.
"""

import signal
import sys
import time
from pathlib import Path

import nas.cli.views
import nas.training.loop
import nas.training.speed
from nas.cli.main import main

# Ctrl-C as in a terminal, even when the suite itself runs in the background (`pytest &`), whose
# children inherit SIGINT ignored, and Python then installs no KeyboardInterrupt for it
signal.signal(signal.SIGINT, signal.default_int_handler)

marker, block_at, *args = sys.argv[1:]
kind, _, count = block_at.partition(":")
calls = {"epoch": 0, "between": 0}


def block() -> None:
    Path(marker).touch()
    time.sleep(600)


real_epoch, real_finished = nas.training.loop.train_epoch, nas.cli.views.SearchView.trial_finished


def train_epoch(model, loader, *rest, **kwargs):
    calls["epoch"] += 1
    if kind == "epoch" and calls["epoch"] == int(count):
        next(iter(loader))
        block()
    return real_epoch(model, loader, *rest, **kwargs)


def trial_finished(self, study, trial):
    real_finished(self, study, trial)
    calls["between"] += 1
    if kind == "between" and calls["between"] == int(count):
        block()


nas.training.loop.train_epoch = train_epoch
nas.cli.views.SearchView.trial_finished = trial_finished
nas.training.speed.TIMING = nas.training.speed.Timing(0, 1, 1, 0.0)  # as tests/conftest.py's quick_speed
sys.exit(main(args))
