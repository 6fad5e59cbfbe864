"""The final rung inside `nas search` (`--final-rung K`): the top K trials' truths after the
trials, resumed after Ctrl-C and a kill without training a finished truth again, the highest truth
picked, the search's cost stored; and the default budget: the reference twin's epochs timed here.
Tiny synthetic data; a truth here is 2 epochs (the real one is the calibration's 10)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState

import nas.report.table
import nas.search.optimize
import nas.search.rung
import nas.search.storage
import nas.search.trials
import nas.training.budget
from nas.cli.main import main
from nas.search.settings import (EQUAL_EPOCHS, EQUAL_TIME, MIDDLE_LENGTH, TIME_SHARE, TWIN_EPOCHS,
                                 Fidelity, StudySettings, trial_steps)
from nas.search.space import load_space
from nas.search.space import TWIN
from nas.search.storage import STALE_REASON
from nas.search.trials import (COST, MIDDLE, RUNG, RUNG_SPEEDS, best_trial, recorded_results,
                               search_cost, truths)
from nas.training.budget import minutes_of
from nas.training.speed import Speed
from tests.conftest import ROOT
from tests.test_search import load, search_args

TRUTH_EPOCHS = 2


@pytest.fixture(autouse=True)
def short_truths(monkeypatch) -> None:
    """A truth of TRUTH_EPOCHS epochs, for the rung and for what counts as one alike."""
    for module in (nas.search.rung, nas.search.trials):
        monkeypatch.setattr(module, "truth_epochs", lambda: TRUTH_EPOCHS)


def rung_args(tmp_path, data_dir, k: int, study: str = "r", trials: int = 4) -> list[str]:
    return search_args(tmp_path, data_dir, trials, study, "--final-rung", str(k),
                       "--out", str(tmp_path / "rung"))


def rung_of(study, k: int) -> list[int]:
    return [t.number for t in nas.search.rung.rung_trials(study, k)]


def test_the_rung_gives_the_top_trials_their_truth_resumes_after_ctrl_c_and_picks_the_highest(
        tmp_path, tiny_data_dir, monkeypatch, capsys) -> None:
    real = nas.search.rung.train_run
    calls: list[tuple[str, bool]] = []

    def interrupted_in_the_second(spec, data, runtime, progress):
        calls.append((spec.out.name, spec.resume))
        if len(calls) == 2:  # Ctrl-C as the second truth's second epoch starts
            epoch_started = progress.epoch_started

            def stop(epoch, epochs, steps):
                if epoch == 2:
                    raise KeyboardInterrupt
                epoch_started(epoch, epochs, steps)
            progress.epoch_started = stop
        return real(spec, data, runtime, progress)

    monkeypatch.setattr(nas.search.rung, "train_run", interrupted_in_the_second)
    assert main(rung_args(tmp_path, tiny_data_dir, 2)) == 130
    top = rung_of(load(tmp_path, "r"), 2)
    first, second = [f"trial-{n}-val" for n in top]
    assert calls == [(first, False), (second, False)]
    assert len((tmp_path / "rung" / second / "log.jsonl").read_text().splitlines()) == 1
    assert list(truths(load(tmp_path, "r"))) == [top[0]]
    # the same command: the first truth is not trained again, the second continues from epoch 1
    assert main(rung_args(tmp_path, tiny_data_dir, 2)) == 0
    assert calls[2:] == [(second, True)]
    assert len((tmp_path / "rung" / second / "log.jsonl").read_text().splitlines()) == TRUTH_EPOCHS

    study = load(tmp_path, "r")
    assert study.user_attrs[RUNG] == {"k": 2, "middle": 0, "trials": top, "out": str(tmp_path / "rung")}
    known = truths(study)
    assert sorted(known) == sorted(top)  # the top two, and no other, have a truth
    for number in top:
        [run] = recorded_results(study, "val")[number]
        assert run["out"] == str(tmp_path / "rung" / f"trial-{number}-val")
        metrics = json.loads((tmp_path / "rung" / f"trial-{number}-val" / "metrics.json").read_text())
        assert metrics["eval_split"] == "val" and metrics["epochs"] == TRUTH_EPOCHS
        assert metrics["command"].startswith(f"nas train-best --study r --storage sqlite:///{tmp_path}")
        assert f"--validate --trial {number} --out {run['out']}" in metrics["command"]
    assert best_trial(study).number == max(known, key=known.get)
    cost = study.user_attrs[COST]
    rung_seconds = sum(run["wall_seconds"] for runs in recorded_results(study, "val").values() for run in runs)
    assert cost["rung_minutes"] == round(rung_seconds / 60, 2) > 0 and cost["trials_minutes"] > 0
    assert cost["total_minutes"] == pytest.approx(cost["trials_minutes"] + cost["rung_minutes"], abs=0.02)
    out = capsys.readouterr().out
    assert "final rung: the truths of 2 trials" in out and "cost: " in out

    # killed after a truth's metrics were written and before they were recorded: recorded from them
    results = study.user_attrs["val_results"]
    study.set_user_attr("val_results", {k: v for k, v in results.items() if k != str(top[1])})
    assert main(rung_args(tmp_path, tiny_data_dir, 2)) == 0
    assert calls[3:] == [] and truths(load(tmp_path, "r")) == known

    assert main(["report", "--study", "r", "--storage", f"sqlite:///{tmp_path}/nas.db",
                 "--markdown", str(tmp_path / "doc" / "REPORT.md")]) == 0
    assert "the search's cost" in capsys.readouterr().out
    rows, _, _ = nas.report.table.rows(load(tmp_path, "r"))
    assert sorted(int(row[1]) for row in rows if "final rung" in row[-1]) == sorted(top)
    text = (tmp_path / "doc" / "REPORT.md").read_text()
    reproduce = text[text.index("Reproduce"):text.index("##", text.index("Reproduce"))]
    assert "--final-rung 2" in reproduce and "--validate" not in reproduce  # the search makes them


def test_final_rung_0_is_the_search_without_it(tmp_path, tiny_data_dir) -> None:
    assert main(rung_args(tmp_path, tiny_data_dir, 0, trials=2)) == 0
    study = load(tmp_path, "r")
    assert RUNG not in study.user_attrs and truths(study) == {}
    assert not (tmp_path / "rung").exists()
    assert study.user_attrs[COST]["rung_minutes"] == 0


def scored_study(trials: list[tuple[float, float, bool]], steps: int = 0,
                 speeds: list[float] | None = None) -> optuna.Study:
    """A study of complete trials (score, FLOPs in millions, twin or not; the training images/s
    of `speeds`) at equal time, its trials paced by time (`steps` 0) or by `steps`."""
    study = optuna.create_study(direction="maximize")
    settings = StudySettings(load_space(EQUAL_TIME.space).to_dict(), budget_minutes=27.3,
                             fidelity=Fidelity(time_share=TIME_SHARE, steps=steps))
    study.set_user_attr("settings", settings.to_dict())
    for i, (score, mflops, twin) in enumerate(trials):
        speed = {"train_images_per_s": speeds[i]} if speeds else {}
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=score,
            user_attrs={"flops": mflops * 1e6, **speed, **({"baseline": TWIN} if twin else {})}))
    return study


def test_the_rung_takes_the_best_score_then_the_most_flops_above_the_twin() -> None:
    # studies/equal-time-main's search seed 0 (trials paced by time): the fidelity's top two
    # reached 84.52 and 83.88 % at M; the twelfth, the heaviest of those above the twin, 85.70 %
    study_of = scored_study

    main_seed_0 = [(0.6700, 20.2, True), (0.6766, 16.4, False), (0.7268, 4.2, False),
                   (0.7126, 5.0, False), (0.7116, 3.9, False), (0.7074, 6.1, False),
                   (0.6562, 30.0, False)]  # trial 6: the heaviest, but below the twin
    assert rung_of(study_of(main_seed_0), 1) == [2]  # the best score alone, as before
    assert rung_of(study_of(main_seed_0), 2) == [2, 1]  # then the most FLOPs above the twin
    # then the rest of the front of score against FLOPs (3, then 5), then the rest by score
    assert rung_of(study_of(main_seed_0), 7) == [2, 1, 3, 5, 4, 0, 6]
    # without a twin, every trial is a candidate: the heaviest comes second
    no_twin = [(score, mflops, False) for score, mflops, _ in main_seed_0]
    assert rung_of(study_of(no_twin), 2) == [2, 6]
    # the twin best by score: nothing is above it, so the rung is the top by score
    assert rung_of(study_of([(0.70, 20.2, True), (0.69, 25.0, False), (0.68, 5.0, False)]), 2) == [0, 1]


def timed_by_the_rung(monkeypatch, figures: dict[int, float]) -> list[int]:
    """The rung's timing gives each trial its figure here (12 s of timing each); the trials timed."""
    timed: list[int] = []

    def fake_plan_speed(number, recipe, runtime) -> Speed:
        timed.append(number)
        return Speed(figures[number], 1.0, 1.0, 1.0, 12.0)

    monkeypatch.setattr(nas.search.rung, "trial_design", lambda study, trial: trial.number)
    monkeypatch.setattr(nas.search.rung, "plan_speed", fake_plan_speed)
    return timed


# studies/equal-time-zen4, search seed 0: the two picks above the twin's score, both slower than
# the twin, reached 84.64 and 82.30 % at M; v4's winner (trial 12 there too), faster than the
# twin, scored 1.36 below it. Trials: (score, FLOPs in millions, twin or not)
ZEN4_SEED_0 = [(0.6688, 20.2, True), (0.6838, 16.0, False), (0.6736, 15.0, False),
               (0.6552, 20.4, False), (0.6512, 14.2, False), (0.6224, 5.0, False), (0.5962, 9.0, False)]
ZEN4_FIGURES = [1507, 1229, 1375, 1811, 1905, 1800, 1000]  # each trial's own half-second figure


def test_trials_paced_by_steps_pick_the_best_scores_among_those_as_fast_as_the_twin(monkeypatch) -> None:
    trials, figures = ZEN4_SEED_0, ZEN4_FIGURES
    timings = {0: 1434.0, 1: 1096.0, 2: 1420.0, 3: 1820.0, 4: 1890.0, 5: 1750.0}  # 2: a bit slower
    study = scored_study(trials, 410, figures)
    # a figure timed in another pass, without the twin (there: 50 minutes before, the machine faster)
    study.set_user_attr(RUNG_SPEEDS, {"1": {"train_images_per_s": 1500.0, "seconds": 12.0}})
    timed = timed_by_the_rung(monkeypatch, timings)
    nas.search.rung.time_candidates(study, None, 1)
    # the twin, then by score until one is as fast: trial 1 again, against this pass's twin;
    # trial 6 (under 0.7 of the twin's own figure) never
    assert timed == [0, 1, 2, 3]
    assert rung_of(study, 1) == [3]
    speeds = study.user_attrs[RUNG_SPEEDS]
    assert speeds["1"] == {"train_images_per_s": 1096.0, "seconds": 24.0, "twin_images_per_s": 1434.0}
    assert search_cost(study, [3])["rung_minutes"] == 1.0  # every timing counts in the cost
    nas.search.rung.time_candidates(study, None, 1)  # a resumed rung keeps its figures
    assert timed == [0, 1, 2, 3] and rung_of(study, 1) == [3]
    nas.search.rung.time_candidates(study, None, 2)  # a bigger rung: the twin again, then on
    assert timed == [0, 1, 2, 3, 0, 4]
    assert rung_of(study, 3) == [3, 4, 1]  # then the rest by score
    assert set(study.user_attrs[RUNG_SPEEDS]) == {"0", "1", "2", "3", "4"}


def test_the_middle_rung_trains_the_fast_candidates_at_equal_time_and_orders_the_final_rung(
        monkeypatch) -> None:
    # the same study: trials 2 and 3 trail the twin's score, 4 more; at 30 % of M the one that
    # scored lowest of the three leads (as v4's winner did, studies/equal-time-main section 8)
    study = scored_study(ZEN4_SEED_0, 410, ZEN4_FIGURES)
    timed_by_the_rung(monkeypatch, {0: 1500.0, 1: 1100.0, 2: 1530.0, 3: 1560.0, 4: 1780.0,
                                    5: 1750.0})
    longer = {2: 0.70, 3: 0.74, 4: 0.72}  # each candidate's val acc after its middle run
    trained: list[tuple[int, int]] = []

    def fake_race(config, batches, recipe, runtime, hooks):
        trained.append((config, batches[0].steps))
        return [SimpleNamespace(eval_acc=longer[config])]

    monkeypatch.setattr(nas.search.rung, "race", fake_race)
    monkeypatch.setattr(nas.search.rung, "search_batches",
                        lambda *a: (SimpleNamespace(epochs=4), ([], [])))
    clock = itertools.count(0.0, 30.0)  # each middle run takes 30 s
    monkeypatch.setattr(nas.search.rung, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    nas.search.rung.time_candidates(study, None, 3)
    nas.search.rung.middle_rung(study, 3, 1, None, None, nas.search.rung.SeriesProgress())
    # the first three as fast as the twin by score (trial 1 is slower), each 3 x 410 steps scaled
    # by its speed against the twin's, rounded up to whole rounds of four
    assert [n for n, _ in trained] == [2, 3, 4]
    assert [steps * 4 for _, steps in trained] == [1256, 1280, 1460]
    assert study.user_attrs[MIDDLE]["3"] == {"accuracy": 0.74, "steps": 1279, "seconds": 30.0}
    assert rung_of(study, 3) == [3, 4, 2]  # by the middle rung's score, not the trials'
    assert rung_of(study, 4) == [3, 4, 2, 1]
    nas.search.rung.middle_rung(study, 3, 1, None, None, nas.search.rung.SeriesProgress())
    assert len(trained) == 3  # resumed: nothing trained again
    assert search_cost(study, [])["rung_minutes"] == 1.0 + 1.5  # five timings of 12 s, three runs
    # no more candidates than the final rung's places: nothing to decide, nothing trained
    other = scored_study(ZEN4_SEED_0, 410, ZEN4_FIGURES)
    nas.search.rung.time_candidates(other, None, 2)
    nas.search.rung.middle_rung(other, 2, 2, None, None, nas.search.rung.SeriesProgress())
    assert len(trained) == 3 and MIDDLE not in other.user_attrs


def test_without_a_trial_as_fast_as_the_twin_the_rung_takes_the_best_scores(monkeypatch) -> None:
    trials = [(0.67, 20.2, True), (0.69, 16.0, False), (0.68, 15.0, False)]
    study = scored_study(trials, 410, [1500, 1200, 1300])
    timed = timed_by_the_rung(monkeypatch, {0: 1500.0, 1: 1100.0, 2: 1300.0})
    nas.search.rung.time_candidates(study, None, 1)
    assert timed == [0, 1, 2] and rung_of(study, 2) == [1, 2]
    no_twin = scored_study([(0.69, 16.0, False), (0.70, 15.0, False)], 410, [1200, 1300])
    nas.search.rung.time_candidates(no_twin, None, 1)  # no bar to time against: nothing timed
    assert timed == [0, 1, 2] and rung_of(no_twin, 1) == [1]
    paced_by_time = scored_study(trials, 0, [1500, 1200, 1300])
    nas.search.rung.time_candidates(paced_by_time, None, 1)  # FLOPs need no timing
    assert timed == [0, 1, 2] and RUNG_SPEEDS not in paced_by_time.user_attrs


def test_a_killed_workers_trial_costs_the_work_it_recorded_not_the_pause_until_the_rerun() -> None:
    # studies/equal-time-main: trial 20 of steps-seed-0, killed at 04:47 after one round, was
    # failed by the rerun at 05:16; its half hour of pause made the trials cost 110.5 min, not 81
    start = datetime(2026, 12, 7, 4, 44)
    study = scored_study([])

    def add(state: TrialState, begin: float, end: float, **attrs) -> None:
        study.add_trial(optuna.trial.FrozenTrial(
            len(study.trials), state, 0.5 if state == TrialState.COMPLETE else None,
            start + timedelta(minutes=begin), start + timedelta(minutes=end), {}, {}, attrs, {}, {}, 0))

    add(TrialState.COMPLETE, 0, 2)
    add(TrialState.FAIL, 2, 32, fail_reason=STALE_REASON, measure_seconds=6.0, train_seconds=54.0)
    add(TrialState.COMPLETE, 32, 35)
    add(TrialState.FAIL, 35, 36, fail_reason="interrupted by the user (Ctrl-C)", train_seconds=6.0)
    assert search_cost(study, [])["trials_minutes"] == 2 + 1 + 3 + 1


def test_the_rung_resumes_after_a_kill(tmp_path, tiny_data_dir, monkeypatch) -> None:
    """kill -9 during a truth run: its finished epochs are kept, and the same command continues
    it."""
    epochs = 5  # a longer truth, so that the kill lands inside it
    for module in (nas.search.rung, nas.search.trials):
        monkeypatch.setattr(module, "truth_epochs", lambda: epochs)
    args = rung_args(tmp_path, tiny_data_dir, 1, trials=2)
    code = ("import sys; import nas.search.rung, nas.search.trials\n"
            f"for m in (nas.search.rung, nas.search.trials): m.truth_epochs = lambda: {epochs}\n"
            "from nas.cli.main import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    logs = tmp_path / "rung"
    deadline = time.time() + 240  # against a hang only
    while not any(len(p.read_text().splitlines()) >= 1 for p in logs.glob("*/log.jsonl")):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1]
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    [log] = logs.glob("*/log.jsonl")
    done = len(log.read_text().splitlines())
    assert 1 <= done < epochs and not (log.parent / "metrics.json").exists()
    assert main(args) == 0  # the killed run's epochs are kept, the rest trained
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["epoch"] for line in lines] == list(range(1, epochs + 1))
    assert len(truths(load(tmp_path, "r"))) == 1


def fake_speed(config, recipe, runtime, **_) -> Speed:  # 5,000 training images/s, whatever design
    return Speed(5000.0, 10.0, 20_000.0, 1.0, 0.0)


def test_without_a_budget_m_is_the_twins_epochs_timed_here_and_the_study_keeps_it(
        tmp_path, tiny_data_dir, monkeypatch, capsys) -> None:
    timed: list = []

    def measure(config, recipe, runtime, **kwargs):
        timed.append(dataclasses.replace(config, name=""))
        return fake_speed(config, recipe, runtime)

    for module in (nas.training.budget, nas.search.optimize):
        monkeypatch.setattr(module, "measure_speed", measure)
    args = search_args(tmp_path, tiny_data_dir, 2, "t", "--final-rung", "0", "--time-share", "0.001")
    at = args.index("--budget-minutes")
    args = [*args[:at], *args[at + 2:]]  # no budget given
    at = args.index("--epochs")
    args = [*args[:at], "--rounds", *args[at + 1:]]  # at equal time a trial trains in rounds
    assert main(args) == 0
    expected = round(minutes_of(TWIN_EPOCHS, fake_speed(None, None, None), 50_000, 10_000), 1)
    settings = nas.search.trials.settings_of(load(tmp_path, "t"))
    assert settings.budget_minutes == expected and settings.fidelity.rounds == 2
    # every trial the steps the twin trains in 0.1 % of M at its speed: 5,000 images/s, 32 a batch
    assert settings.fidelity.steps == round(0.001 * expected * 60 * 5000 / 32) == trial_steps(
        0.001, expected, 5000, 32)
    [twin_steps] = [t.user_attrs["train_steps"] for t in load(tmp_path, "t").trials if "train_steps" in t.user_attrs]
    assert twin_steps == 2 * 17  # 33 steps in 2 rounds: each round's rounded up
    twin = load(tmp_path, "t").trials[1]  # the twin is trial 1: timed first, for M
    assert timed[0] == dataclasses.replace(nas.search.trials.trial_design(load(tmp_path, "t"), twin), name="")
    assert f"budget: {expected:g} min, the reference twin's {TWIN_EPOCHS} epochs" in capsys.readouterr().out
    # rerun without a budget: the study's own M, nothing timed again for it
    timed.clear()
    assert main([*args[:args.index("--trials") + 1], "3", *args[args.index("--trials") + 2:]]) == 0
    assert "budget:" not in capsys.readouterr().out
    assert nas.search.trials.settings_of(load(tmp_path, "t")).budget_minutes == expected
    assert nas.search.trials.finished(load(tmp_path, "t")) == 3


def test_the_modes_defaults_are_the_documented_ones() -> None:
    from nas.design.files import DEFAULT_SPACE, FAST_SPACE

    assert (EQUAL_TIME.space, EQUAL_TIME.fill_params, EQUAL_TIME.final_rung, TIME_SHARE) == \
        (FAST_SPACE, 0.0, 1, 0.1)  # studies/equal-time-v4's settings; the rung: equal-time-zen4
    assert (EQUAL_TIME.middle_rung, MIDDLE_LENGTH, EQUAL_EPOCHS.middle_rung) == (3, 3, 0)
    assert (EQUAL_TIME.speed_floor, EQUAL_EPOCHS.speed_floor) == (0.95, 0.0)  # equal-time-zen4-v2
    assert EQUAL_TIME.pruner == "first"  # studies/equal-time-main, section 7
    assert (EQUAL_EPOCHS.space, EQUAL_EPOCHS.fill_params, EQUAL_EPOCHS.final_rung, EQUAL_EPOCHS.pruner) == \
        (DEFAULT_SPACE, 0.9, 0, "hyperband")
    assert TWIN_EPOCHS == 20


def test_the_main_command_runs_end_to_end(tmp_path, tiny_data_dir, monkeypatch, capsys) -> None:
    """README's main command on the tiny data: `nas search --trials N` (at equal time, M the
    twin's epochs timed here: a fake speed makes them 0.1 min), its final rung, `nas train-best`
    for M minutes and `nas report`, each with its defaults but the tiny data's flags."""
    fast = Speed(166_000.0, 0.3, 1_000_000.0, 1.0, 0.0)  # per 50,000 images: 20 epochs are 0.1 min
    for module in (nas.training.budget, nas.search.optimize):
        monkeypatch.setattr(module, "measure_speed", lambda *a, **k: fast)
    monkeypatch.chdir(tmp_path)
    data = ["--data-dir", str(tiny_data_dir), "--workers", "0"]
    tiny = [*data, "--val-images", "200", "--batch-size", "32", "--time-share", "0.002", "--rounds", "2"]
    assert main(["search", "--trials", "5", *tiny]) == 0  # two of three sampled designs train
    assert main(["train-best", *data]) == 0
    assert main(["report", "--markdown", "runs/REPORT.md"]) == 0
    study = nas.search.storage.load_existing(EQUAL_TIME.space.stem, "sqlite:///runs/nas.db")
    settings = nas.search.trials.settings_of(study)
    assert settings.budget_minutes == 0.1 and settings.fill_params == EQUAL_TIME.fill_params
    rung = study.user_attrs[RUNG]["trials"]
    assert rung == rung_of(study, EQUAL_TIME.final_rung) and sorted(truths(study)) == sorted(rung)
    # two complete trials besides the twin, both as fast as it (every design has the fake speed):
    # the middle rung trained both for 3 times a trial's 62 steps, the final rung its pick
    sampled = [str(t.number) for t in study.trials
               if t.state == TrialState.COMPLETE and t.user_attrs.get("baseline") != TWIN]
    middle = study.user_attrs[MIDDLE]
    assert len(sampled) == 2 and sorted(middle) == sorted(sampled)
    assert all(run["steps"] == 3 * 62 for run in middle.values())
    assert rung == [best_trial(study).number] and str(rung[0]) in middle
    best = best_trial(study).number
    assert best in rung and (tmp_path / "runs" / study.study_name / "best" / "model.pt").is_file()
    [tested] = recorded_results(study, "test")[best]
    assert tested["budget_minutes"] == 0.1
    assert study.user_attrs[COST]["multiple_of_budget"] > 0
    assert "★ best" in (tmp_path / "runs" / "REPORT.md").read_text()


def test_trials_slower_than_the_twin_are_pruned_before_they_train(tmp_path, tiny_data_dir, monkeypatch,
                                                                   capsys) -> None:
    """At equal time paced by steps, a design timed under the floor times the twin's speed (the
    twin timed for 5 s, the others for half a second) is pruned untrained; --speed-floor 0 trains
    it, and the report's Reproduce names the floor a study was searched with."""
    from nas.design.geometry import param_count

    def measure(config, recipe, runtime, timing=None, **_):
        # the twin as fast as the fake speed, every other design half as fast however timed
        twin = param_count(config) == 198_496
        return fake_speed(config, recipe, runtime) if twin else Speed(2500.0, 20.0, 10_000.0, 2.0, 0.0)

    for module in (nas.training.budget, nas.search.optimize):
        monkeypatch.setattr(module, "measure_speed", measure)
    flags = ("--final-rung", "0", "--time-share", "0.001", "--trial-steps", "8", "--rounds", "2")
    args = search_args(tmp_path, tiny_data_dir, 6, "slow", *flags)
    args[args.index("--budget-minutes") + 1] = "1"  # at equal time, in rounds: no --epochs
    del args[args.index("--epochs"):args.index("--epochs") + 2]
    assert main(args) == 0
    study = load(tmp_path, "slow")
    counts = nas.search.trials.trial_counts(study)
    slow = [t for t in study.trials if nas.search.trials.pruned_by(t) == "speed"]
    assert counts["complete"] == 1 and counts["speed"] == len(slow) == 6 - 1 - counts["constraint"] > 0
    assert all(t.user_attrs[nas.search.trials.SLOW] == 0.5 and "train_steps" not in t.user_attrs
               for t in slow)
    assert study.user_attrs[nas.search.trials.FLOOR] == EQUAL_TIME.speed_floor
    assert "pruned as slower than the twin" in capsys.readouterr().out
    assert main(["report", "--study", "slow", "--storage", f"sqlite:///{tmp_path}/nas.db",
                 "--markdown", str(tmp_path / "R.md")]) == 0
    assert "0.50 of the twin's speed" in (tmp_path / "R.md").read_text()
    assert "--speed-floor" not in (tmp_path / "R.md").read_text()  # the default's
    # the same search without a floor trains them all
    at = args.index("--study")
    assert main([*args[:at + 1], "all", *args[at + 2:], "--speed-floor", "0"]) == 0
    study = load(tmp_path, "all")
    assert nas.search.trials.trial_counts(study)["speed"] == 0
    assert nas.search.trials.trial_counts(study)["complete"] + nas.search.trials.trial_counts(study)["pruner"] > 1
    assert main(["report", "--study", "all", "--storage", f"sqlite:///{tmp_path}/nas.db",
                 "--markdown", str(tmp_path / "A.md")]) == 0
    assert "--speed-floor 0.0" in (tmp_path / "A.md").read_text()


def test_the_speed_floor_judges_by_5_s_spares_the_twin_and_times_it_again_when_old(monkeypatch) -> None:
    study = scored_study([(0.6, 20.0, True)], steps=400, speeds=[1500.0])
    setup = SimpleNamespace(speed_floor=0.85, recipe=SimpleNamespace(seed=0), runtime=None, proxies=None)
    timed: list = []  # (design, timing) of each timing; a design's figure is its name's
    monkeypatch.setattr(nas.training.budget, "measure_speed", lambda config, *a, timing=None, **k:
                        timed.append((config, timing)) or Speed(float(config), 40.0, 5000.0, 1.0, 5.0))
    monkeypatch.setattr(nas.search.optimize, "measure_speed", nas.training.budget.measure_speed)
    monkeypatch.setattr(nas.search.optimize, "proxy_attrs", lambda *a: {})

    def too_slow(trial, figure: float, at=setup) -> str | None:
        return nas.search.optimize.too_slow(trial, {"train_images_per_s": figure}, at)

    # with a floor every design is timed as the rung times it, for 5 s; without, for half a second
    trial = study.ask()
    assert nas.search.optimize.measurements(trial, None, 1560.0, setup)["train_images_per_s"] == 1560.0
    nas.search.optimize.measurements(trial, None, 1.0, SimpleNamespace(**vars(setup) | {"speed_floor": 0.0}))
    assert timed == [(1560.0, nas.training.budget.PLAN_TIMING), (1.0, None)]
    assert too_slow(trial, 1.0) is None  # no twin timed yet: trained
    study.set_user_attr(nas.search.trials.YARDSTICK, {"train_images_per_s": 1500.0, "at": time.time()})
    assert too_slow(trial, 1276.0) is None  # 0.851 of the twin's: trained
    assert too_slow(trial, 900.0, SimpleNamespace(speed_floor=0.0)) is None  # no floor
    assert too_slow(trial, 1274.0) == "slower than the twin: 1,274 training images/s, 0.85 of its 1,500"
    assert study.trials[-1].user_attrs[nas.search.trials.SLOW] == 0.849
    twin = study.ask()
    twin.set_user_attr("baseline", TWIN)
    assert too_slow(twin, 1.0) is None
    # a figure YARDSTICK_AGE old: the twin is timed again for 5 s, and its new figure is the bar
    monkeypatch.setattr(nas.search.optimize, "trial_design", lambda study, trial: 1200.0)  # its figure
    old = time.time() - nas.search.optimize.YARDSTICK_AGE
    study.set_user_attr(nas.search.trials.YARDSTICK, {"train_images_per_s": 1500.0, "at": old})
    timed.clear()
    assert too_slow(study.ask(), 1100.0) is None  # 0.92 of the new bar, 1,200
    assert timed == [(1200.0, nas.training.budget.PLAN_TIMING)]
    assert study.user_attrs[nas.search.trials.YARDSTICK]["train_images_per_s"] == 1200.0
    assert too_slow(study.ask(), 1000.0) is not None  # 0.83: the bar is not timed again
    assert timed == [(1200.0, nas.training.budget.PLAN_TIMING)]
