"""Optuna's current API only: a search and its report run with FutureWarning and DeprecationWarning
as errors, so that a deprecated call (Optuna warns a major version ahead of a removal) fails here
first; and the studies written with Optuna's older API (the committed studies/*/study.db) still
read."""

from __future__ import annotations

import shutil
import warnings

import pytest
from optuna import load_study
from optuna.trial import TrialState

import nas.cli.main
from nas.cli.main import main
from tests.conftest import ROOT
from tests.test_search import load, search_args


@pytest.fixture(autouse=True)
def strict_warnings(monkeypatch) -> None:
    """FutureWarning and DeprecationWarning as errors, in front of the filters the command line
    sets when it starts (a filter there must not hide a deprecation from this test); a warning
    silenced where it arises, in a `warnings.catch_warnings` block, stays silenced."""
    real = nas.cli.main.quiet_libraries

    def strict(command: str) -> None:
        real(command)
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)

    monkeypatch.setattr(nas.cli.main, "quiet_libraries", strict)


def test_a_search_and_its_report_use_no_deprecated_api(tmp_path, tiny_data_dir) -> None:
    assert main(search_args(tmp_path, tiny_data_dir, 3, "api")) == 0
    study = load(tmp_path, "api")
    # a warning raised inside a trial fails the trial, not the command: none failed
    assert len(study.trials) == 3 and not study.get_trials(states=(TrialState.FAIL,))
    assert main(["report", "--study", "api", "--storage", f"sqlite:///{tmp_path}/nas.db",
                 "--markdown", str(tmp_path / "REPORT.md")]) == 0


@pytest.mark.parametrize("folder", ["archive/c1c2c3c4o-v1", "c1c2c3c4o-final"])
def test_a_study_stored_by_the_old_api_still_reads(tmp_path, capsys, folder) -> None:
    # its verdicts are one list in the `constraints` system attribute (Optuna 4's constraints_func)
    db = tmp_path / "study.db"
    shutil.copy(ROOT / "studies" / folder / "study.db", db)  # a copy: the original stays as it is
    assert main(["report", "--study", "c1c2c3c4o", "--storage", f"sqlite:///{db}"]) == 0
    out = capsys.readouterr().out
    assert "pruned: constraint" in out and "★ best" in out


def test_a_study_stored_under_the_old_names_still_reads(tmp_path, capsys) -> None:
    """equal-time-v4 was stored before #35's renames: `fill_budget`, and its trials' rounds as the
    fidelity's `epochs`. It reads as this version names them, and its report counts rounds."""
    from nas.search.trials import settings_of

    db = tmp_path / "study.db"
    shutil.copy(ROOT / "studies" / "equal-time-v4" / "study.db", db)
    settings = settings_of(load_study(study_name="equal-time-v4", storage=f"sqlite:///{db}"))
    assert settings.fill_params == 0.0 and settings.budget_minutes == 14.7
    assert (settings.fidelity.time_share, settings.fidelity.rounds, settings.fidelity.passes) == (0.1, 4, 4)
    assert main(["report", "--study", "equal-time-v4", "--storage", f"sqlite:///{db}"]) == 0
    out = capsys.readouterr().out
    assert "rounds" in out and "in 4 rounds" in out and "★ best" in out
