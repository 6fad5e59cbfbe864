"""The package's layers: each folder of `nas/` is a layer, and imports only point down.

    nas.errors  <  nas.design, nas.data  <  nas.training  <  nas.search, nas.inference  <  nas.report  <  nas.cli

A module may import its own package and any layer below its own, never one above it nor a peer of
the same layer (design and data stay independent, and so do search and inference). Imports inside
functions count too: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NAS = Path(__file__).resolve().parent.parent / "nas"
LAYERS = [{"errors"}, {"design", "data"}, {"training"}, {"search", "inference"}, {"report"}, {"cli"}]
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


def package_of(module: str) -> str | None:
    """'nas.design.model' -> 'design'; None for anything outside nas."""
    parts = module.split(".")
    return parts[1] if parts[0] == "nas" and len(parts) > 1 else None


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every `nas.*` import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "nas" else [f"nas.{a.name}" for a in node.names]
            found += [(node.lineno, name) for name in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, module) for line, module in found if package_of(module)]


def layered_modules() -> list[Path]:
    return sorted(p for p in NAS.rglob("*.py") if p.parent != NAS or p.stem == "errors")


def test_every_package_has_a_layer():
    packages = {p.name for p in NAS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages | {"errors"} == set(RANK)


@pytest.mark.parametrize("path", layered_modules(), ids=lambda p: str(p.relative_to(NAS)))
def test_imports_point_down(path: Path):
    own = path.parent.name if path.parent != NAS else path.stem
    wrong = [f"{path.relative_to(NAS.parent)}:{line} imports {module}"
             for line, module in imports_of(path)
             if (target := package_of(module)) != own and RANK[target] >= RANK[own]]
    assert not wrong, "imports that point up or across a layer:\n" + "\n".join(wrong)


def test_the_check_sees_a_wrong_arrow(tmp_path: Path):
    bad = tmp_path / "model.py"
    bad.write_text("def f():\n    from nas.search.trials import settings_of\n")
    assert imports_of(bad) == [(2, "nas.search.trials")]
    assert RANK[package_of("nas.search.trials")] > RANK["design"]
