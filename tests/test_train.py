"""The trainer: resume gives the same weights, NaN stops clearly, metrics are right, real data runs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import nas
from nas.cli.main import main
from nas.data.augment_config import AugmentConfig
from nas.data.splits import Splits
from nas.errors import NasError
from nas.training.batches import make_batches
from nas.training.loop import Hooks, NonFiniteLoss, train
from nas.training.metrics import Evaluation
from nas.training.progress import TrainingProgress
from nas.training.recipe import Recipe
from nas.training.runtime import Runtime, autocast, autocast_dtype, pick_device
from tests.conftest import REAL_DATA, REFERENCE

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
CPU = Runtime.pick("cpu", workers=0)


def synthetic_splits(n: int = 192, seed: int = 0) -> Splits:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    images[..., 0] = (labels * 25)[:, None, None]  # learnable: the red channel encodes the class
    return Splits(images, labels, images[:64], labels[:64], "val", tuple("abcdefghij"))


def synthetic_sets(n: int = 192, seed: int = 0, batch_size: int = 32, runtime: Runtime | None = None,
                   engine: str = "batched"):
    return make_batches(synthetic_splits(n, seed), batch_size, AugmentConfig(engine=engine), runtime or CPU)


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return nas.build_model(nas.load_config(REFERENCE))


@pytest.mark.parametrize("engine,workers", [("batched", 0), ("albumentations", 0), ("albumentations", 1)])
def test_resume_after_interruption_gives_identical_weights(tmp_path, engine, workers) -> None:
    recipe = Recipe(epochs=3, batch_size=32)
    runtime = Runtime.pick("cpu", workers=workers)
    train_set, eval_set = synthetic_sets(runtime=runtime, engine=engine)
    straight = small_model()
    history = train(straight, (train_set, eval_set), recipe, runtime)

    def stop_after_2(log) -> None:
        if log.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small_model(), (train_set, eval_set), recipe, runtime, run_dir=tmp_path,
              hooks=Hooks(on_epoch=stop_after_2))
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 2
    resumed = small_model()
    history2 = train(resumed, (train_set, eval_set), recipe, runtime, run_dir=tmp_path, resume=True)
    assert [h.epoch for h in history2] == [1, 2, 3]
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert history2[-1].train_loss == history[-1].train_loss


def test_resume_refuses_another_recipe(tmp_path) -> None:
    train_set, eval_set = synthetic_sets(64, batch_size=8)
    train(small_model(), (train_set, eval_set), Recipe(epochs=1, batch_size=8), CPU, run_dir=tmp_path)
    with pytest.raises(NasError, match="another recipe"):
        train(small_model(), (train_set, eval_set), Recipe(epochs=2, batch_size=8), CPU,
              run_dir=tmp_path, resume=True)


def test_training_learns_and_nan_loss_stops_with_clear_error() -> None:
    train_set, eval_set = synthetic_sets()
    history = train(small_model(), (train_set, eval_set), Recipe(epochs=3, batch_size=32), CPU)
    assert history[-1].train_loss < history[0].train_loss
    with pytest.raises(NonFiniteLoss, match="lower --lr"):
        train(small_model(), (train_set, eval_set), Recipe(epochs=1, batch_size=32, lr=1e12,
                                                          schedule="cosine"), CPU)


class Recorder(TrainingProgress):
    """Every event `train` reports, in order (the loss, accuracy and rate rounded away)."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def run_started(self, epochs: int, done: int) -> None:
        self.events.append(("run", epochs, done))

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        self.events.append(("epoch", epoch, epochs, steps))

    def step_done(self, step: int, loss: float, accuracy: float, images_per_s: float) -> None:
        assert loss > 0 and 0 <= accuracy <= 1 and images_per_s > 0
        self.events.append(("step", step))

    def epoch_ended(self, log) -> None:
        self.events.append(("ended", log.epoch))

    def run_ended(self) -> None:
        self.events.append(("done",))


def test_progress_hears_every_epoch_and_every_20th_step(tmp_path) -> None:
    batches = synthetic_sets(88, batch_size=4)  # 22 steps an epoch
    recipe = Recipe(epochs=2, batch_size=4, schedule="cosine")
    epoch = [("step", 20), ("step", 22)]
    progress = Recorder()
    train(small_model(), batches, recipe, CPU, run_dir=tmp_path,
          hooks=Hooks(progress, on_epoch=lambda log: progress.events.append(("on_epoch", log.epoch))))
    assert progress.events == [("run", 2, 0), ("epoch", 1, 2, 22), *epoch, ("ended", 1), ("on_epoch", 1),
                               ("epoch", 2, 2, 22), *epoch, ("ended", 2), ("on_epoch", 2), ("done",)]
    resumed = Recorder()  # a finished run resumed: nothing left to train
    train(small_model(), batches, recipe, CPU, run_dir=tmp_path, resume=True, hooks=Hooks(resumed))
    assert resumed.events == [("run", 2, 2), ("done",)]


def test_per_class_report_matches_hand_computation() -> None:
    confusion = np.array([[8, 2], [4, 6]])
    rows = Evaluation(loss=0.0, accuracy=0.7, confusion=confusion).per_class(("a", "b"))
    assert rows[0] == {"class": "a", "precision": round(8 / 12, 4), "recall": 0.8,
                       "f1": round(2 * (8 / 12) * 0.8 / (8 / 12 + 0.8), 4), "support": 10}
    assert rows[1]["precision"] == 0.75 and rows[1]["recall"] == 0.6


@pytest.mark.skipif(REAL_DATA is None, reason="no real CIFAR-10: set NAS_DATA_DIR")
def test_one_epoch_on_a_real_subset_writes_the_run_folder(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    args = ["train", str(REFERENCE), "--out", str(out), "--epochs", "1", "--validate",
            "--data-fraction", "0.01", "--batch-size", "32", "--data-dir", str(REAL_DATA), "--workers", "0"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_split"] == "val" and metrics["eval_images"] == 5_000
    assert metrics["train_images"] == 450 and len(metrics["per_class"]) == 10
    assert 0.0 <= metrics["accuracy_flip_tta"] <= 1.0
    assert np.array(metrics["confusion"]).sum() == 5_000
    assert nas.load_config(out / "config.toml") == nas.load_config(REFERENCE)
    assert len((out / "log.jsonl").read_text().splitlines()) == 1
    assert "Confusion matrix" in (out / "summary.md").read_text()
    before = (out / "metrics.json").read_bytes()
    assert main(args) == 2  # a second run into the same folder must not overwrite it
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "metrics.json").read_bytes() == before


def test_missing_data_is_one_clear_line(tmp_path, capsys) -> None:
    assert main(["train", str(REFERENCE), "--out", str(tmp_path / "x"),
                 "--data-dir", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nas data download --data-dir" in err


def test_flip_tta_averages_an_image_and_its_mirror() -> None:
    class LeftMinusRight(torch.nn.Module):
        def forward(self, x):  # class 0 logit: left half minus right half; class 1 logit: 0
            d = x[..., :16].mean(dim=(1, 2, 3)) - x[..., 16:].mean(dim=(1, 2, 3))
            return torch.stack([d, torch.zeros_like(d)], dim=1)

    images = torch.zeros(4, 3, 32, 32)
    images[..., 16:] = 1.0  # right half bright: plain logits favour class 1
    loader = torch.utils.data.DataLoader(list(zip(images, torch.ones(4, dtype=torch.long))), batch_size=2)
    from nas.training.metrics import evaluate

    plain = evaluate(LeftMinusRight(), loader, torch.device("cpu"), None, num_classes=2)
    tta = evaluate(LeftMinusRight(), loader, torch.device("cpu"), None, num_classes=2, flip_tta=True)
    assert plain.accuracy == 1.0 and tta.accuracy_flip_tta == 0.0  # mirrored halves cancel: a tie → class 0
    assert plain.accuracy_flip_tta is None and tta.accuracy == 1.0  # the plain metrics, same pass


def test_channels_last_defaults_to_cuda_only(monkeypatch) -> None:
    assert Runtime.pick("cpu").layout == torch.contiguous_format
    assert Runtime.pick("cpu", channels_last=True).layout == torch.channels_last
    monkeypatch.setattr("nas.training.runtime.pick_device", lambda name: torch.device("cuda"))
    assert Runtime.pick("cuda").layout == torch.channels_last
    assert Runtime.pick("cuda", channels_last=False).layout == torch.contiguous_format


def test_precision_choice_and_autocast_switch() -> None:
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None and autocast_dtype(cpu, "bf16") == torch.bfloat16
    assert autocast_dtype(torch.device("cuda"), "auto") == torch.bfloat16
    fast_bf16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert autocast_dtype(cpu, "auto") == (torch.bfloat16 if fast_bf16 else None)
    layer, x = torch.nn.Linear(4, 4), torch.randn(2, 4)
    with autocast(cpu, None):
        assert layer(x).dtype == torch.float32  # None: plain fp32, autocast off
    with autocast(cpu, torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
    if not torch.cuda.is_available():
        with pytest.raises(NasError, match="no CUDA device"):
            pick_device("cuda")


def test_recipe_augmentation_reaches_the_training_pipeline() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 2)
    splits = Splits(images, labels, images, labels, "val", tuple("abcdefghij"))
    for engine in ("batched", "albumentations"):
        plain = AugmentConfig(engine=engine, p_flip=0, p_affine=0, p_cutout=0)
        train_set, eval_set = make_batches(splits, 20, plain, CPU)
        (shuffled, _), (clean, _) = next(iter(train_set)), next(iter(eval_set))
        # nothing applied: the training batch is the evaluation batch, shuffled
        assert torch.allclose(shuffled.sum(dim=(1, 2, 3)).sort().values,
                              clean.sum(dim=(1, 2, 3)).sort().values, atol=1e-2)
        train_set, _ = make_batches(splits, 20, replace(plain, p_cutout=1), CPU)
        holes = (next(iter(train_set))[0].abs() < 0.02).all(dim=1).sum(dim=(1, 2))
        assert (holes >= 16 * 16).all(), engine  # every image got its hole, filled with the mean colour rounded to uint8 (normalised ≈ 0)


@pytest.mark.parametrize("flag", ["--p-affine", "--p-cutout"])
def test_augmentation_probability_out_of_range_is_one_line(tmp_path, capsys, flag) -> None:
    assert main(["train", str(REFERENCE), "--out", str(tmp_path / "x"), flag, "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a probability" in err and not (tmp_path / "x").exists()
