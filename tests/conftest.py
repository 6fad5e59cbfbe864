"""Shared fixtures: the repository root, the reference config and a config factory."""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

# what `nas.cli.main.main` sets for the command line, for tests that import the library directly
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "search_spaces" / "reference.toml"

def real_data() -> Path | None:
    """The real CIFAR-10's folder (the parent of cifar-10-batches-bin/) from $NAS_DATA_DIR, as CI
    sets it; None where it is not set or holds no CIFAR-10: the few real-data tests are skipped."""
    if not (env := os.environ.get("NAS_DATA_DIR")):
        return None
    folder = Path(env)
    folder = folder.parent if folder.name == "cifar-10-batches-bin" else folder
    return folder if (folder / "cifar-10-batches-bin").is_dir() else None


REAL_DATA = real_data()


@pytest.fixture
def reference_dict() -> dict[str, Any]:
    """The reference design as a plain dict, free to modify."""
    return copy.deepcopy(tomllib.loads(REFERENCE.read_text()))


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """A learnable CIFAR-10 look-alike in the official binary layout: 5×200 train, 200 test
    images; the red channel encodes the class, so a few epochs learn it."""
    import numpy as np

    from nas.data.cifar10 import BIN_DIR, FILES, to_records

    root = tmp_path_factory.mktemp("tiny-cifar")
    folder = root / BIN_DIR
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in FILES:
        labels = np.arange(200) % 10
        images = rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8)
        images[..., 0] = (labels * 25)[:, None, None]
        to_records(images, labels).tofile(folder / name)
    return root


@pytest.fixture(autouse=True)
def quick_speed(monkeypatch) -> None:
    """One timed step per figure where a search measures its designs' speed: tests/test_speed.py
    tests the figures with a fake clock; elsewhere the full timing would only cost seconds."""
    from nas.training import budget, speed

    quick = speed.Timing(warmup=0, min_steps=1, max_steps=1, seconds=0.0)
    monkeypatch.setattr(speed, "TIMING", quick)
    monkeypatch.setattr(budget, "TIMING", quick)
    monkeypatch.setattr(budget, "PLAN_TIMING", quick)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch) -> None:
    """Print CLI tables at 200 columns, so cell text is not wrapped across lines."""
    from nas.cli.views import console

    monkeypatch.setattr(console, "width", 200)
