"""`nas search` end to end on tiny synthetic data: constraints, baselines, resume, bad input."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from nas.cli.main import main
from nas.search.optimize import judge
from nas.search.storage import STALE_REASON, open_storage
from nas.search.trials import CONSTRAINTS, is_feasible, pruned_by, settings_of
from tests.conftest import ROOT

# 200 of the 800 non-validation tiny images, 2 epochs: enough to learn the tiny task, cheap for CI
FAST = ["--budget-minutes", "0", "--epochs", "2", "--data-fraction", "0.25", "--val-images", "200",
        "--batch-size", "32", "--workers", "0",
        "--fill-params", "0"]  # designs as sampled: narrow, fast; filling has its own tests


def search_args(tmp_path, data_dir, trials: int, study: str = "s", *extra: str) -> list[str]:
    return ["search", "--trials", str(trials), "--study", study, "--storage",
            f"sqlite:///{tmp_path}/nas.db", "--data-dir", str(data_dir), *FAST, *extra]


def load(tmp_path, study: str = "s") -> optuna.Study:
    return optuna.load_study(study_name=study, storage=f"sqlite:///{tmp_path}/nas.db")


def finished(study: optuna.Study) -> list:
    return study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))


def test_search_prunes_infeasible_without_training_and_resumes(tmp_path, tiny_data_dir) -> None:
    assert main(search_args(tmp_path, tiny_data_dir, 4)) == 0
    study = load(tmp_path)
    assert len(finished(study)) == 4
    reference, twin = study.trials[0], study.trials[1]
    # trial 0 is the reference: the strict depthwise-separable rule prunes it, untrained
    assert reference.user_attrs["baseline"] == "reference"
    assert reference.state == TrialState.PRUNED
    assert pruned_by(reference) == "constraint"
    assert reference.user_attrs["broken"] == ["depthwise_separable"]
    assert reference.user_attrs["n_params"] == 197_472 and "train_seconds" not in reference.user_attrs
    assert set(reference.constraints) == set(CONSTRAINTS)  # the verdict of every rule, by name
    assert reference.constraints["depthwise_separable"] > 0 and not is_feasible(reference)
    assert sum(value > 0 for value in reference.constraints.values()) == 1
    assert twin.user_attrs["n_params"] == 198_496 and twin.user_attrs["train_seconds"] > 0
    assert all(v <= 0 for v in twin.constraints.values())
    # the feasible design's measured speed (nas.training.speed), the infeasible one's none
    measured = {key: twin.user_attrs[key] for key in ("train_images_per_s", "epoch_seconds",
                                                       "infer_images_per_s", "latency_ms", "measure_seconds")}
    assert all(value > 0 for value in measured.values()), measured
    assert measured["epoch_seconds"] == pytest.approx(50_000 / measured["train_images_per_s"], rel=1e-3)
    assert "train_images_per_s" not in reference.user_attrs
    # rerunning the same command adds nothing; a larger --trials adds only the missing ones
    assert main(search_args(tmp_path, tiny_data_dir, 4)) == 0
    assert len(load(tmp_path).trials) == 4
    assert main(search_args(tmp_path, tiny_data_dir, 5)) == 0
    study = load(tmp_path)
    assert len(finished(study)) == 5
    assert sum("baseline" in t.user_attrs for t in study.trials) == 2


def test_tight_limits_prune_by_constraint(tmp_path, tiny_data_dir) -> None:
    assert main(search_args(tmp_path, tiny_data_dir, 3, "tight", "--max-params", "60000")) == 0
    for trial in load(tmp_path, "tight").trials:
        assert trial.state == TrialState.PRUNED and "params" in trial.user_attrs["broken"]
        assert trial.user_attrs["n_params"] >= 60_000 and "train_seconds" not in trial.user_attrs


def test_failing_trials_are_recorded_and_the_search_stops(tmp_path, tiny_data_dir) -> None:
    roomy = ("--max-params", "10000000", "--max-flops", "10000000000")  # every sampled design trains
    assert main(search_args(tmp_path, tiny_data_dir, 2, "nan", "--lr", "1e12", *roomy)) == 1  # explodes
    failed = load(tmp_path, "nan").get_trials(states=(TrialState.FAIL,))
    assert len(failed) >= 2
    assert all("NonFiniteLoss" in t.user_attrs["fail_reason"] for t in failed)


def test_dry_run_prints_its_figures_and_nothing_on_stderr() -> None:
    # a process of its own: Optuna sets its log level when first imported (here, long ago)
    done = subprocess.run([sys.executable, "-m", "nas", "search", "--dry-run", "--trials", "30"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr  # no Optuna line, no warning
    assert "dry run of 30 sampled designs" in done.stdout and "infeasible" in done.stdout


@pytest.mark.parametrize("args,message", [
    (["--space", "nowhere.toml"], "no such search-space file"),
    (["--max-params", "5000"], "impossible limits"),
    (["--max-params", "-1"], "impossible: give a positive number"),
    (["--storage", "postgresql://nobody@127.0.0.1:9/none"], "cannot open storage"),
    (["--storage", "nosuchdb://x"], "cannot open storage"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, tiny_data_dir, capsys, args, message) -> None:
    assert main(search_args(tmp_path, tiny_data_dir, 2, "bad", *args)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_unknown_space_key(tmp_path, tiny_data_dir, capsys) -> None:
    space = tmp_path / "bad.toml"
    space.write_text((ROOT / "search_spaces" / "c1c2c3c4o.toml").read_text() + "colour = ['red']\n")
    assert main(search_args(tmp_path, tiny_data_dir, 2, "bad", "--space", str(space))) == 2
    assert f"{space}: colour: unknown key" in capsys.readouterr().err


BLOCKING = ROOT / "tests" / "helpers" / "blocking_search.py"


def backdate_heartbeats(tmp_path) -> None:
    """Move every recorded heartbeat an hour back, as if its worker had died long ago: a test need
    not wait out the grace period (the storage's clock, SQLite's UTC text, as Optuna writes it)."""
    with contextlib.closing(sqlite3.connect(tmp_path / "nas.db")) as db, db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, '-1 hour')")


def start_blocking(tmp_path, block_at: str, study: str, *extra: str):
    """Start a search that blocks at `block_at` (see tests/helpers/blocking_search.py) in its
    own process group; return it once it is blocked there."""
    marker = tmp_path / f"{study}.blocked"
    log = (tmp_path / f"{study}.log").open("w")
    cmd = [sys.executable, str(BLOCKING), str(marker), block_at,
           *search_args(tmp_path, tiny_data_dir_of(tmp_path), 5, study, *extra)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 300
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1]
        time.sleep(0.2)
    return proc


@pytest.fixture
def data_link(tmp_path, tiny_data_dir):
    (tmp_path / "data").symlink_to(tiny_data_dir)


def tiny_data_dir_of(tmp_path):
    return tmp_path / "data"


@pytest.mark.usefixtures("data_link")
def test_kill_9_mid_trial_then_rerun_keeps_finished_trials(tmp_path) -> None:
    # epoch 3 of the run: the second trained trial's first epoch, after the twin finished
    proc = start_blocking(tmp_path, "epoch:3", "kill")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    before = {t.number: (t.state, t.values) for t in finished(load(tmp_path, "kill"))}
    killed = load(tmp_path, "kill").get_trials(states=(TrialState.RUNNING,))
    assert len(before) >= 2 and len(killed) == 1
    backdate_heartbeats(tmp_path)  # the killed worker's trial is now stale
    assert main(search_args(tmp_path, tmp_path / "data", 5, "kill")) == 0
    study = load(tmp_path, "kill")
    assert len(finished(study)) == 5
    for number, (state, values) in before.items():  # nothing finished was lost or redone
        assert (study.trials[number].state, study.trials[number].values) == (state, values)
    stale = study.trials[killed[0].number]
    assert stale.state == TrialState.FAIL
    assert stale.user_attrs["fail_reason"] == STALE_REASON
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == stale.number]
    assert len(retried) == 1 and retried[0].params == stale.params


def test_a_stale_trial_is_failed_with_its_reason_and_retried(tmp_path, tiny_data_dir) -> None:
    tight = ("--max-params", "60000")  # every design breaks it: no training
    assert main(search_args(tmp_path, tiny_data_dir, 1, "stale", *tight)) == 0
    storage = open_storage(f"sqlite:///{tmp_path}/nas.db", create=False)
    study = optuna.load_study(study_name="stale", storage=storage)
    settings = settings_of(study)
    with pytest.warns(UserWarning, match="Heartbeat of storage"):  # ask() is no worker's way
        orphan = study.ask()  # a worker judges its design, records a heartbeat, and "dies"
    with pytest.raises(optuna.TrialPruned):
        judge(orphan, settings.search_space(), settings.limits)
    storage.record_heartbeat(orphan._trial_id)
    backdate_heartbeats(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(search_args(tmp_path, tiny_data_dir, 3, "stale", *tight)) == 0
    study = load(tmp_path, "stale")
    stale = study.trials[orphan.number]
    assert stale.state == TrialState.FAIL and stale.user_attrs["fail_reason"] == STALE_REASON
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == orphan.number]
    assert len(retry) == 1 and retry[0].params == stale.params
    # the retry inherits its original's verdict (Optuna copies the system attributes): judged
    # again, it keeps it without Optuna's "constraint value is ignored" warning
    assert retry[0].constraints == stale.constraints and not is_feasible(retry[0])
    assert not [str(w.message) for w in caught if "constraint" in str(w.message)]


@pytest.mark.usefixtures("data_link")
@pytest.mark.parametrize("block_at", ["epoch:1", "between:2"])
def test_ctrl_c_to_the_process_group_exits_130_with_the_continue_command(tmp_path, block_at) -> None:
    # --workers 1: the loader's worker process gets the SIGINT too, as in a terminal
    proc = start_blocking(tmp_path, block_at, "int", "--workers", "1")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and err.count("\n") == 1, err
    assert "Continue with: nas search --trials 5 --study int" in err
    study = load(tmp_path, "int")
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert not study.get_trials(states=(TrialState.RUNNING,))
    if block_at.startswith("epoch"):  # the trial in training is failed, with its reason
        assert [t.user_attrs["fail_reason"] for t in failed] == ["interrupted by the user (Ctrl-C)"]
    else:  # between trials nothing was running: every finished trial is kept, none failed
        assert not failed and len(finished(study)) == 2


def test_the_first_pruner_stops_a_trial_after_its_first_round_only() -> None:
    from nas.search.samplers import make_pruner

    study = optuna.create_study(direction="maximize", pruner=make_pruner("first", 4))
    for first in (0.40, 0.45, 0.50, 0.55, 0.60):  # five complete trials: first rounds' median 0.55
        trial = study.ask()
        for step in range(1, 5):
            trial.report(first + 0.05 * step, step)
        study.tell(trial, first + 0.2)

    def stopped_at(values: list[float]) -> int | None:
        trial = study.ask()
        for step, value in enumerate(values, start=1):
            trial.report(value, step)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                return step
        study.tell(trial, values[-1])
        return None

    assert stopped_at([0.52, 0.70, 0.80, 0.90]) == 1  # below the median after round 1
    assert stopped_at([0.58, 0.30, 0.20, 0.10]) is None  # never after a later round


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_the_pruner_stops_trials_early_but_never_at_their_last_epoch(tmp_path, tiny_data_dir,
                                                                    monkeypatch) -> None:
    monkeypatch.setattr("nas.search.optimize.make_pruner", lambda name, epochs: AlwaysPrune())
    for study, epochs, state in (("two", "2", TrialState.PRUNED), ("one", "1", TrialState.COMPLETE)):
        # batch 16: OneCycle needs 8 steps even in a one-epoch trial
        assert main(search_args(tmp_path, tiny_data_dir, 3, study, "--epochs", epochs,
                                "--batch-size", "16")) == 0
        trained = [t for t in load(tmp_path, study).trials if "train_seconds" in t.user_attrs]
        assert trained and all(t.state == state and t.user_attrs["epochs_run"] == 1 for t in trained)
