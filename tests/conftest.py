"""Shared fixtures: the repository root, the reference config and a config factory."""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

# what `nas.cli.main` sets for the command line, for tests that import the library directly
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "search_spaces" / "reference.toml"
REAL_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def reference_dict() -> dict[str, Any]:
    """The reference design as a plain dict, free to modify."""
    return copy.deepcopy(tomllib.loads(REFERENCE.read_text()))


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """A learnable CIFAR-10 look-alike in the official binary layout: 5×200 train, 200 test
    images; the red channel encodes the class, so a few epochs learn it."""
    import numpy as np

    from nas.data import BIN_DIR, FILES, to_records

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
def wide_console(monkeypatch) -> None:
    """Print CLI tables at 200 columns, so cell text is not wrapped across lines."""
    from nas.commands import console

    monkeypatch.setattr(console, "width", 200)
