"""Two `nas search` workers on one PostgreSQL study (a real server: .ci/start-postgres)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import ROOT
from tests.test_search import FAST

URL = os.environ.get("NAS_TEST_POSTGRES")


@pytest.mark.skipif(not URL, reason="set NAS_TEST_POSTGRES (.ci/start-postgres prints one)")
def test_two_workers_share_one_study(tiny_data_dir) -> None:
    study_name = f"workers-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "nas.cli", "search", "--trials", "8", "--study", study_name,
           "--storage", URL, "--data-dir", str(tiny_data_dir), *FAST]
    workers = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for _ in range(2)]
    outputs = [w.communicate(timeout=400)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name=study_name,
                              storage=URL.replace("postgresql://", "postgresql+psycopg://"))
    done = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(done) == 8
    assert [t.user_attrs.get("baseline") for t in study.trials].count("reference") == 1
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert all(t.user_attrs["fail_reason"].startswith("surplus") for t in failed)
    trained = [t for t in done if "train_seconds" in t.user_attrs]
    designs = [tuple(sorted(t.params.items())) for t in trained]
    assert len(set(designs)) == len(designs), "a design was trained twice"
    # both workers really worked on the study
    assert all("trials" in out or "study" in out for out in outputs)
