"""Measured speed: exact figures from a fake clock, slower designs measured slower, no side
effects on the training that follows, `nas show --speed`, and the report of studies with and
without speeds."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import optuna
import pytest
import torch

from nas import build_model, config_from_dict
from nas.cli.main import main
from nas.training import budget, speed
from nas.training.recipe import Recipe
from nas.training.runtime import Runtime
from nas.training.speed import EPOCH_IMAGES, Speed, Timing, measure_speed
from tests.test_search import search_args

CPU = Runtime.pick("cpu", "fp32", workers=0)
TIMING = Timing(warmup=1, min_steps=3, max_steps=3, seconds=0.0)


@pytest.fixture
def small_inference(monkeypatch) -> int:
    """Inference timed at batch 16 instead of 256: the figures are as exact, the test quicker."""
    monkeypatch.setattr(speed, "INFER_BATCH", 16)
    return 16


class FakeClock:
    """A clock that moves `tick` seconds at every reading, and more when told (`advance`)."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick, self.readings = 0.0, tick, 0

    def __call__(self) -> float:
        self.now += self.tick
        self.readings += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def narrow(reference_dict, divisor: int):
    """The reference design with every block's width divided by `divisor`: fast to run."""
    data = copy.deepcopy(reference_dict)
    for block in data["blocks"]:
        block["channels"] //= divisor
    return config_from_dict(data | {"name": f"reference-over-{divisor}"})


def test_a_fake_clock_gives_exact_figures(reference_dict, small_inference) -> None:
    clock = FakeClock(0.25)  # every timed step spans two readings: 0.25 s
    got = measure_speed(narrow(reference_dict, 8), Recipe(batch_size=8), CPU, timing=TIMING, clock=clock)
    assert got == Speed(train_images_per_s=8 / 0.25, epoch_seconds=EPOCH_IMAGES * 0.25 / 8,
                        infer_images_per_s=small_inference / 0.25, latency_ms=250.0,
                        measure_seconds=0.25 * (clock.readings - 1))
    assert clock.readings == 2 + 3 * 3 * 2  # start and end, and 3 figures × 3 steps × 2 readings


def test_steps_are_timed_until_the_seconds_are_spent(reference_dict, small_inference) -> None:
    clock = FakeClock(0.1)
    timing = Timing(warmup=0, min_steps=2, max_steps=6, seconds=0.35)  # 4 steps of 0.1 s pass 0.35
    measure_speed(narrow(reference_dict, 8), Recipe(batch_size=4), CPU, timing=timing, clock=clock)
    assert clock.readings == 2 + 3 * 4 * 2


def test_the_inference_figures_can_be_timed_apart_from_the_training_step(reference_dict, small_inference,
                                                                        monkeypatch) -> None:
    """A plan times the training step for 5 s and the two inference figures, which plan only the
    evaluations, as a search does: half the timing's cost on the 2-core CPU."""
    clock = FakeClock(0.1)
    train, infer = Timing(warmup=0, min_steps=6, max_steps=6), Timing(warmup=0, min_steps=2, max_steps=2)
    measure_speed(narrow(reference_dict, 8), Recipe(batch_size=4), CPU, timing=train, infer_timing=infer,
                  clock=clock)
    assert clock.readings == 2 + 6 * 2 + 2 * 2 * 2  # start and end; 6 training steps; 2 + 2 inference
    timed: list = []
    monkeypatch.setattr(budget, "PLAN_TIMING", train)
    monkeypatch.setattr(budget, "TIMING", infer)
    monkeypatch.setattr(budget, "measure_speed", lambda *a, timing, infer_timing: timed.append((timing, infer_timing)))
    budget.plan_speed(narrow(reference_dict, 8), Recipe(batch_size=4), CPU)
    assert timed == [(train, infer)]


def test_a_slower_design_measures_slower(reference_dict, small_inference, monkeypatch) -> None:
    """Each training step of a design takes (in fake seconds) a microsecond per parameter more."""
    clock, real_step = FakeClock(0.25), speed.train_step

    def step(learner, *args):
        clock.advance(sum(p.numel() for p in learner.model.parameters()) * 1e-6)
        return real_step(learner, *args)

    monkeypatch.setattr(speed, "train_step", step)
    designs = narrow(reference_dict, 8), narrow(reference_dict, 4)
    fast, slow = (measure_speed(config, Recipe(batch_size=8), CPU, timing=TIMING, clock=clock)
                  for config in designs)
    params = [sum(p.numel() for p in build_model(config).parameters()) for config in designs]
    assert fast.train_images_per_s == pytest.approx(8 / (0.25 + params[0] * 1e-6))
    assert slow.train_images_per_s == pytest.approx(8 / (0.25 + params[1] * 1e-6))
    assert slow.train_images_per_s < fast.train_images_per_s and slow.epoch_seconds > fast.epoch_seconds


def test_measuring_leaves_the_random_state_as_it_was(reference_dict, small_inference) -> None:
    """A search measures a design just before training it: the training's seed must still hold."""
    torch.manual_seed(7)
    measure_speed(narrow(reference_dict, 8), Recipe(batch_size=4), CPU, timing=TIMING)
    after = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(after, torch.rand(3))


def test_show_speed_json_names_the_figures_and_the_machine(capsys) -> None:
    assert main(["show", "reference", "--speed", "--json", "--batch-size", "8", "--device", "cpu",
                 "--precision", "fp32"]) == 0
    measured = json.loads(capsys.readouterr().out)["speed"]
    assert measured["precision"] == "fp32" and measured["batch_size"] == 8 and measured["device"]
    for key in ("train_images_per_s", "epoch_seconds", "infer_images_per_s", "latency_ms",
                "measure_seconds"):
        assert measured[key] > 0, key


def test_show_speed_prints_the_figures(capsys, monkeypatch) -> None:
    figures = Speed(1234.4, 40.5, 5678.0, 3.25, 4.0)
    monkeypatch.setattr(speed, "measure_speed", lambda *args, **kwargs: figures)
    assert main(["show", "reference", "--speed", "--device", "cpu", "--precision", "fp32"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"Measured on {CPU.record()['cpu']}" in out
    assert "(fp32, batch 256): training 1,234 images/s, 40.5 s per 50,000-image epoch" in out
    assert "inference 5,678 images/s at batch 256, 3.25 ms for one image" in out


def test_a_study_without_speeds_still_reports(tmp_path, tiny_data_dir, monkeypatch, capsys) -> None:
    """A study searched before speeds were measured: "—" in the img/s column, no speed plot."""
    monkeypatch.setattr("nas.search.optimize.measure_speed",
                        lambda *args, **kwargs: SimpleNamespace(attrs=dict))
    assert main(search_args(tmp_path, tiny_data_dir, 2, "old")) == 0
    study = optuna.load_study(study_name="old", storage=f"sqlite:///{tmp_path}/nas.db")
    assert not any("train_images_per_s" in t.user_attrs for t in study.trials)
    capsys.readouterr()
    doc = tmp_path / "REPORT.md"
    assert main(["report", "--study", "old", "--storage", f"sqlite:///{tmp_path}/nas.db",
                 "--markdown", str(doc)]) == 0
    table = capsys.readouterr().out
    assert "img/s" in table and "—" in table
    assert "Measured training speed" not in doc.read_text() and not (tmp_path / "REPORT-speed.png").exists()
