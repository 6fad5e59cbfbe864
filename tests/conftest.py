"""Shared fixtures: the repository root, the reference config and a config factory."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "search_spaces" / "reference.toml"
REAL_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def reference_dict() -> dict[str, Any]:
    """The reference design as a plain dict, free to modify."""
    return copy.deepcopy(tomllib.loads(REFERENCE.read_text()))
