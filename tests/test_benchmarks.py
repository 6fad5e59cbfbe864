"""The benchmark scripts still import: a name moved inside `nas` breaks a benchmark only when it is
run, which the suite never does (benchmarks/design_speed.py imported PLAN_TIMING from the module
it had left)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import ROOT

BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.name)
def test_every_benchmark_imports_and_has_a_main(script: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(script.parent))  # train_speed.py imports layout.py beside it
    spec = importlib.util.spec_from_file_location(f"benchmark_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its imports and definitions; main() runs only as a script
    assert callable(module.main)
