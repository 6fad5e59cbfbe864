"""A budget kept during the run (`nas.training.budget`): a run's `Deadline` re-plans its epochs
and a search trial's `TrialClock` its steps per round, from the real epochs' time; the
learning-rate schedule is resized to end at the last step, and a resumed run continues the
re-planned schedule. Both are fed made-up epoch times: no real clock."""

from __future__ import annotations

import math

import pytest
import torch

from nas.training.budget import Deadline, Plan, RoundBatches, TrialClock
from nas.training.checkpoints import EpochLog
from nas.training.loop import Hooks, make_schedule, resize_schedule, train
from nas.training.recipe import Recipe
from tests.test_train import CPU, small_model, synthetic_sets


def epochs_of(*seconds: float, images_per_s: float = 100.0, steps: int = 0) -> list[EpochLog]:
    return [EpochLog(i, 1.0, 0.5, 1.0, 0.5, 0.1, s, images_per_s, steps)
            for i, s in enumerate(seconds, 1)]


def test_the_deadline_replans_from_the_recent_epochs() -> None:
    deadline = Deadline(seconds=100.0, reserve=4.0)
    # 96 s for the epochs; 3 of 10 s done: 66 s left, 6 more at 10 s
    assert deadline.epochs(epochs_of(10, 10, 10), planned=8) == 9
    # the machine slowed down: 25 s left at the last three epochs' median, 20 s: one more
    assert deadline.epochs(epochs_of(10, 20, 20, 21), planned=9) == 5
    # one slow epoch (another process's burst) is not the machine's speed: 36 s left at 10 s
    assert deadline.epochs(epochs_of(10, 40, 10), planned=9) == 6


def test_the_deadline_finishes_the_schedule_and_never_extends_a_finished_one() -> None:
    deadline = Deadline(seconds=30.0)
    # past the deadline with the schedule unfinished: one more epoch, so that the lr anneals
    assert deadline.epochs(epochs_of(10, 10, 15), planned=4) == 4
    # a finished schedule stays finished, however much time is left
    assert Deadline(seconds=1000.0).epochs(epochs_of(10, 10), planned=2) == 2


def test_a_trial_clock_replans_the_steps_of_the_rounds_left() -> None:
    clock = TrialClock(seconds=100.0, batch_size=10)
    # 10 steps at 50 images/s: 2 s of training, 1 s of evaluation. 97 s left for 3 rounds,
    # each 1 s of evaluation and 31.3 s of steps at 0.2 s: 157 steps
    assert clock.plan(epochs_of(3, images_per_s=50, steps=10), rounds=4, steps=10) == (4, 157)
    # rounds of 100 steps (20 s) and 1 s of evaluation: 58 s left for 2 rounds, (29 - 1) / 0.2
    history = epochs_of(21, 21, images_per_s=50, steps=100)
    assert clock.plan(history, rounds=4, steps=100) == (4, 140)
    # past its share: one step a round, so that its lr anneals; a finished trial keeps its plan
    assert clock.plan(epochs_of(120, images_per_s=50, steps=10), rounds=4, steps=10) == (4, 1)
    assert clock.plan(epochs_of(3, 3, images_per_s=50, steps=10), rounds=2, steps=10) == (2, 10)


def test_a_budget_file_gives_its_deadline() -> None:
    plan = {"budget_minutes": 2.0, "epochs": 5, "epoch_seconds": 20.0, "device": "cpu",
            "final_eval_seconds": 3.5}
    assert Plan.from_dict(plan).deadline() == Deadline(120.0, 3.5)
    older = {k: v for k, v in plan.items() if k != "final_eval_seconds"}  # saved before the reserve
    assert Plan.from_dict(older | {"budget_minutes": 1.0}).deadline() == Deadline(60.0, 0.0)


@pytest.mark.parametrize("schedule", ["onecycle", "linear", "cosine"])
def test_a_resized_schedule_ends_as_one_made_at_the_new_size(schedule) -> None:
    recipe = Recipe(epochs=10, schedule=schedule)

    def lrs(made: int, resized_at: int, total: int) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=recipe.lr)
        sched = make_schedule(optimizer, recipe, made // recipe.epochs)
        out = []
        for step in range(total):
            if step == resized_at:
                resize_schedule(sched, recipe, total)
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            sched.step()
        return out + [optimizer.param_groups[0]["lr"]]

    fresh = lrs(60, 0, 60)
    assert lrs(100, 0, 60) == pytest.approx(fresh)  # resized before the first step: the same
    longer, shorter = lrs(100, 70, 130), lrs(100, 70, 80)
    assert longer[:70] == pytest.approx(lrs(100, 0, 100)[:70])  # the steps taken keep their lrs
    # and the schedule still ends where a made one does: OneCycle's last step takes its least lr,
    # cosine reaches 0 after its last
    end = -1 if schedule == "cosine" else -2
    for resized in (longer, shorter):
        assert resized[end] == pytest.approx(fresh[end], rel=1e-6, abs=1e-9)
        assert max(resized[70:]) <= resized[69] + 1e-12  # past the peak, it only falls


@pytest.mark.parametrize("resized_at", [3, 8])  # in OneCycle's warm-up, and past its peak
def test_a_onecycle_resized_to_end_at_its_next_step_still_steps(resized_at) -> None:
    """A trial's clock can cut its last rounds to one step each: the schedule then ends at the
    very next step, and its fall must not be empty (torch divides by the fall's length)."""
    recipe = Recipe(epochs=2)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=recipe.lr)
    sched = make_schedule(optimizer, recipe, 10)
    for _ in range(resized_at):
        optimizer.step()
        sched.step()
    resize_schedule(sched, recipe, resized_at + 1)
    optimizer.step()
    sched.step()  # raised ZeroDivisionError before the fall was kept at least one step long
    assert math.isfinite(optimizer.param_groups[0]["lr"])


class Scripted:
    """A re-plan given in advance (the real ones are tested above): after epoch k it says
    `plans[k]`, epochs in all or (epochs, steps per epoch), or keeps the plan."""

    def __init__(self, plans: dict[int, int | tuple[int, int]]) -> None:
        self.plans = plans

    def plan(self, history, epochs: int, steps: int) -> tuple[int, int]:
        plan = self.plans.get(len(history), epochs)
        return plan if isinstance(plan, tuple) else (plan, steps)


def test_the_loop_runs_the_replanned_epochs_and_its_schedule_ends_with_them(tmp_path) -> None:
    train_set, eval_set = synthetic_sets()  # 6 steps an epoch
    recipe = Recipe(epochs=3, batch_size=32)
    history = train(small_model(), (train_set, eval_set), recipe, CPU, run_dir=tmp_path,
                    hooks=Hooks(replan=Scripted({1: 5, 3: 4})))
    assert [h.epoch for h in history] == [1, 2, 3, 4]
    # planned at 3 epochs, re-planned to 5, then 4: the schedule ends at the 24th step, the last
    schedule = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["scheduler"]
    assert schedule["total_steps"] == schedule["last_epoch"] == 24
    assert schedule["_schedule_phases"][-1]["end_step"] == 23


def test_a_resumed_budgeted_run_continues_its_replanned_schedule(tmp_path) -> None:
    train_set, eval_set = synthetic_sets()
    recipe = Recipe(epochs=3, batch_size=32)
    straight = small_model()
    deadline = Scripted({1: 5, 3: 4})
    history = train(straight, (train_set, eval_set), recipe, CPU, hooks=Hooks(replan=deadline))

    def stop_after_2(log) -> None:
        if log.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small_model(), (train_set, eval_set), recipe, CPU, run_dir=tmp_path,
              hooks=Hooks(on_epoch=stop_after_2, replan=deadline))
    resumed = small_model()
    again = train(resumed, (train_set, eval_set), recipe, CPU, run_dir=tmp_path, resume=True,
                  hooks=Hooks(replan=deadline))
    assert [h.epoch for h in again] == [1, 2, 3, 4]
    assert again[-1].train_loss == history[-1].train_loss
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key



def test_a_trial_runs_its_replanned_steps_and_its_schedule_ends_with_them(tmp_path) -> None:
    train_set, eval_set = synthetic_sets()
    recipe = Recipe(epochs=3, batch_size=32)
    steps: list[int] = []
    history = train(small_model(), (RoundBatches(train_set, 10), eval_set), recipe, CPU, run_dir=tmp_path,
                    hooks=Hooks(replan=Scripted({1: (3, 4), 2: (3, 7)}),
                                on_epoch=lambda log: steps.append(log.steps)))
    # rounds of 10, then 4, then 7 steps: the schedule ends at the 21st step, the last
    assert [h.steps for h in history] == steps == [10, 4, 7]
    schedule = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["scheduler"]
    assert schedule["total_steps"] == schedule["last_epoch"] == 21
    assert schedule["_schedule_phases"][-1]["end_step"] == 20


def test_time_of_gives_the_minutes_a_finished_run_took(tmp_path) -> None:
    """`nas train --time-of RUN`: equal time against a rival run, its measured wall time."""
    import argparse
    import json

    from nas.cli.train import given_minutes
    from nas.design.files import dumps_config, load_config, resolve_design
    from nas.errors import NasError

    (tmp_path / "config.json").write_text(dumps_config(load_config(resolve_design("reference")), "json"))
    (tmp_path / "log.jsonl").write_text("")
    (tmp_path / "metrics.json").write_text(json.dumps({"wall_seconds": 783.0}))
    flags = argparse.Namespace(budget_minutes=None, time_of=str(tmp_path), epochs=None)
    assert given_minutes(flags) == 13.05
    assert given_minutes(argparse.Namespace(budget_minutes=None, time_of=None, epochs=3)) is None
    with pytest.raises(NasError, match="--epochs 3 --time-of"):
        given_minutes(argparse.Namespace(budget_minutes=None, time_of=str(tmp_path), epochs=3))
