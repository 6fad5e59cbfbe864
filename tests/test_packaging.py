"""`pip install .` (not editable) works from any folder: the shipped reference and default space
come with the package, and `import nas` changes nothing global."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_non_editable_install_ships_the_reference_and_the_space(tmp_path) -> None:
    target, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True, timeout=300)
    assert (target / "nas" / "search_spaces" / "reference.toml").is_file()
    env = os.environ | {"PYTHONPATH": str(target)}

    def nas(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "nas", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert '"params": 197472' in nas("show", "reference", "--json")
    assert "baseline reference: breaks depthwise_separable" in nas("search", "--dry-run", "--trials", "5")
    assert not any(elsewhere.iterdir())  # reading and a dry run write nothing


def test_import_nas_changes_nothing_global() -> None:
    # the libraries are imported first: their own imports add warning filters (torch, scipy) and
    # extend LD_LIBRARY_PATH (OpenCV); what is measured is what importing nas adds
    code = ("import os, warnings, logging, sys, torch, albumentations, cv2, optuna, sqlalchemy, rich, "
            "matplotlib.figure, fvcore.nn, scipy.stats; env = dict(os.environ); "
            "filters = list(warnings.filters); levels = {n: logging.getLogger(n).level for n in "
            "('optuna', 'fvcore')}; import nas, nas.cli.main, nas.cli.search, nas.cli.train, nas.search.optimize, nas.report.document; "
                        "assert dict(os.environ) == env, 'environment'; "
            "assert list(warnings.filters) == filters, 'warning filters'; "
            "assert {n: logging.getLogger(n).level for n in levels} == levels, 'logger levels'; "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"})
    assert done.returncode == 0, done.stderr


def test_every_dependency_is_bounded_and_met_by_the_installed_release() -> None:
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]
    for requirement in map(Requirement, requirements):
        operators = {spec.operator for spec in requirement.specifier}
        assert {">=", "<"} <= operators, f"{requirement}: give a lower and an upper bound"
        assert requirement.specifier.contains(version(requirement.name), prereleases=True), \
            f"{requirement.name} {version(requirement.name)} is outside {requirement.specifier}"
