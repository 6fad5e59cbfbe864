"""Several `nas search` workers on one study: two processes on PostgreSQL (a real server:
.ci/start-postgres), and `--jobs 2` on SQLite; the workers' log folder."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from nas.cli.main import main
from nas.cli.workers import extra_workers
from tests.conftest import ROOT
from tests.test_search import FAST, search_args

URL = os.environ.get("NAS_TEST_POSTGRES")


@pytest.mark.skipif(not URL, reason="set NAS_TEST_POSTGRES (.ci/start-postgres prints one)")
def test_two_workers_share_one_study(tiny_data_dir) -> None:
    study_name = f"workers-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "nas.cli.main", "search", "--trials", "6", "--study", study_name,
           "--storage", URL, "--data-dir", str(tiny_data_dir), *FAST]
    workers = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for _ in range(2)]
    outputs = [w.communicate(timeout=400)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name=study_name,
                              storage=URL.replace("postgresql://", "postgresql+psycopg://"))
    done = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(done) == 6
    assert [t.user_attrs.get("baseline") for t in study.trials].count("reference") == 1
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert all(t.user_attrs["fail_reason"].startswith("surplus") for t in failed)
    trained = [t for t in done if "train_seconds" in t.user_attrs]
    designs = [tuple(sorted(t.params.items())) for t in trained]
    assert len(set(designs)) == len(designs), "a design was trained twice"
    assert len({t.user_attrs["worker"] for t in trained}) == 2  # both workers trained trials


def test_jobs_2_on_sqlite_gives_exactly_the_trials(tmp_path, tiny_data_dir) -> None:
    storage = f"sqlite:///{tmp_path}/nas.db"
    cmd = [sys.executable, "-m", "nas", "search", "--trials", "6", "--study", "jobs", "--jobs", "2",
           "--storage", storage, "--data-dir", str(tiny_data_dir), *FAST]
    temp = tmp_path / "temp"
    temp.mkdir()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=os.environ | {"TMPDIR": str(temp)})
    assert done.returncode == 0, done.stderr
    # the worker's log folder went with it: the worker succeeded (torch may leave its own cache there)
    assert not list(temp.glob("nas-workers-*"))
    study = optuna.load_study(study_name="jobs", storage=storage)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 6
    assert [t.user_attrs.get("baseline") for t in study.trials].count("reference") == 1
    assert all(t.user_attrs["fail_reason"].startswith("surplus")
               for t in study.get_trials(states=(TrialState.FAIL,)))
    trained = [t for t in finished if "train_seconds" in t.user_attrs]
    designs = [tuple(sorted(t.params.items())) for t in trained]
    assert len(set(designs)) == len(designs), "a design was trained twice"
    assert len({t.user_attrs["worker"] for t in finished}) == 2  # two processes shared it


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """The folder where `tempfile` makes its folders, for this test alone."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def test_jobs_1_makes_no_worker_folder(tmp_path, tiny_data_dir, temp_dir) -> None:
    tight = ("--max-params", "60000")  # every design breaks it: no training
    assert main(search_args(tmp_path, tiny_data_dir, 2, "one", *tight, "--jobs", "1")) == 0
    assert not list(temp_dir.iterdir())


def test_worker_logs_are_kept_only_when_a_worker_failed(temp_dir) -> None:
    with extra_workers(["--help"], 1) as problems:  # exits 0 at once
        pass
    assert problems == [] and not list(temp_dir.iterdir())
    with extra_workers(["search", "--no-such-flag"], 1) as problems:  # exits 2
        pass
    [folder] = temp_dir.iterdir()
    assert len(problems) == 1 and f"(log: {folder / 'worker-1.log'})" in problems[0]
    assert "unrecognized arguments: --no-such-flag" in (folder / "worker-1.log").read_text()
