"""Where the data lives and how much of it is held out: the data layer's defaults, with no heavy
imports (the command line's help reads them)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "NAS_DATA_DIR"  # the data folder, when --data-dir is not given
DEFAULT_DATA_DIR = Path("~/.cache/nas/data").expanduser()  # where `nas data download` puts it
TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000  # CIFAR-10's training and test sets
VAL_IMAGES = 5_000  # the stratified hold-out searched on; never the official test set


def resolve_data_dir(arg: str | Path | None = None) -> Path:
    """The data folder: `arg` (--data-dir), else $NAS_DATA_DIR, else ~/.cache/nas/data."""
    if arg:
        return Path(arg).expanduser().absolute()
    if env := os.environ.get(DATA_ENV):
        return Path(env).expanduser().absolute()
    return DEFAULT_DATA_DIR
