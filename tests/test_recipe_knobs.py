"""The knobs of a stronger recipe (EMA, no decay on norms and biases, a BN-bias lr scale,
alternating flip, MixUp / CutMix with a ramp, a whitened first conv): each reaches the training loop, resumes exactly,
and a bad value is one line before anything is read or written. Synthetic data only."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import nas
from nas.cli.main import main
from nas.data.augment_config import AugmentConfig
from nas.data.batch_augment import DeviceBatches, MixBatch, normalise
from nas.data.cifar10 import load_cifar10
from nas.data.splits import make_splits
from nas.errors import NasError
from nas.training.batches import make_batches
from nas.training.loop import Hooks, make_optimizer, make_schedule, mixed_loss, train
from nas.training.metrics import evaluate
from nas.training.recipe import Recipe, as_written_today
from tests.conftest import REFERENCE
from tests.test_train import CPU, MEAN, STD, small_model, synthetic_splits

PLAIN = AugmentConfig(p_affine=0, p_cutout=0)  # only the flip left: what a test can follow


def norm_params(model: torch.nn.Module) -> tuple[set[int], set[int]]:
    """ids of every BatchNorm weight, and of every BatchNorm bias."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    return {id(m.weight) for m in bns}, {id(m.bias) for m in bns}


# --- EMA ---

def test_ema_weights_are_the_ones_evaluated_and_saved(tmp_path, tiny_data_dir) -> None:
    out = tmp_path / "run"
    assert main(["train", "reference", "--out", str(out), "--epochs", "1", "--data-fraction", "0.1",
                 "--batch-size", "10", "--ema", "0.8", "--workers", "0", "--precision", "fp32",
                 "--data-dir", str(tiny_data_dir)]) == 0
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    ema = {k.removeprefix("module."): v for k, v in checkpoint["ema"].items() if k != "n_averaged"}
    raw = checkpoint["model"]
    assert int(checkpoint["ema"]["n_averaged"]) == 100 // 10  # one update per step
    assert any(not torch.equal(ema[k], raw[k]) for k in raw if raw[k].is_floating_point())
    assert set(ema) == set(raw)  # the BatchNorm buffers too: measured for the averaged weights
    saved = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], ema[k]) for k in raw), "model.pt holds the averaged weights"

    splits = make_splits(load_cifar10(tiny_data_dir), "test", fraction=0.1, seed=0)
    _, eval_batches = make_batches(splits, 10, AugmentConfig(), CPU)
    losses = {}
    for name, weights in (("ema", ema), ("raw", raw)):
        model = nas.build_model(nas.load_config(REFERENCE))
        model.load_state_dict(weights)
        losses[name] = evaluate(model, eval_batches, CPU.device, None).loss
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    assert last["eval_loss"] == pytest.approx(losses["ema"], rel=1e-6)  # every epoch: the average
    assert metrics["loss"] == pytest.approx(losses["ema"], rel=1e-6)  # and the final test
    assert abs(losses["raw"] - losses["ema"]) > 1e-4


def test_norm_stats_are_measured_for_the_given_weights() -> None:
    """The averaged weights' BatchNorm statistics are their own activations' over the first
    images (cumulative, not a momentum average), and the model's mode and momentum stay."""
    from nas.training.ema import measure_norm_stats

    torch.manual_seed(0)
    conv, norm = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)
    model = torch.nn.Sequential(conv, norm).eval()
    batches = [(torch.randn(8, 3, 6, 6) * 3 + 1, torch.zeros(8)) for _ in range(4)]
    measure_norm_stats(model, batches, torch.device("cpu"), None, images=24)  # 3 of the 4 batches
    with torch.no_grad():
        acts = [conv(b) for b, _ in batches[:3]]
    assert torch.allclose(norm.running_mean, torch.cat(acts).mean((0, 2, 3)), atol=1e-5)
    batch_vars = torch.stack([a.var((0, 2, 3)) for a in acts])  # each batch's, as BatchNorm sees it
    assert torch.allclose(norm.running_var, batch_vars.mean(0), rtol=1e-4)
    assert not model.training and norm.momentum == 0.1


# --- resume: every knob at once ---

ALL_KNOBS = Recipe(epochs=2, batch_size=16, ema=0.9, no_decay_norm_bias=True, norm_bias_lr_scale=3.0,
                   mixup=0.4, cutmix=1.0, mix_ramp=0.34, augment=AugmentConfig(flip="alternating"),
                   whiten_init=True)


def test_resume_with_every_knob_ends_identical(tmp_path, monkeypatch) -> None:
    batches = make_batches(synthetic_splits(96), 16, ALL_KNOBS.augment, CPU)
    epochs_told, real = [], DeviceBatches.set_epoch

    def set_epoch(self, epoch: int, seed: int) -> None:
        epochs_told.append((epoch, seed))
        real(self, epoch, seed)

    monkeypatch.setattr(DeviceBatches, "set_epoch", set_epoch)
    for run in ("straight", "cut"):
        (tmp_path / run).mkdir()
    straight = small_model()
    history = train(straight, batches, ALL_KNOBS, CPU, run_dir=tmp_path / "straight")
    assert epochs_told == [(1, 0), (2, 0)]  # the loop tells the batches the epoch

    def stop_after_1(log) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small_model(), batches, ALL_KNOBS, CPU, run_dir=tmp_path / "cut",
              hooks=Hooks(on_epoch=stop_after_1))
    batches = make_batches(synthetic_splits(96), 16, ALL_KNOBS.augment, CPU)  # a fresh process's
    resumed = small_model()
    history2 = train(resumed, batches, ALL_KNOBS, CPU, run_dir=tmp_path / "cut", resume=True)
    assert history2[-1].train_loss == history[-1].train_loss
    for key, value in straight.state_dict().items():  # the averaged weights, which both end with
        assert torch.equal(value, resumed.state_dict()[key]), key
    raw = [torch.load(tmp_path / run / "checkpoint.pt", weights_only=False)["model"]
           for run in ("straight", "cut")]
    assert all(torch.equal(raw[0][k], raw[1][k]) for k in raw[0])


def test_a_recipe_saved_before_the_knobs_still_resumes() -> None:
    old = Recipe().to_dict()
    for key in ("ema", "no_decay_norm_bias", "norm_bias_lr_scale", "mixup", "cutmix", "mix_ramp", "preset",
                "whiten_init"):
        del old[key]
    del old["augment"]["flip"]
    assert as_written_today(old) == Recipe().to_dict()
    assert as_written_today({"lr": "junk"}) == {"lr": "junk"}  # no recipe: left to differ


# --- parameter groups ---

@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_no_decay_on_norms_and_biases(optimizer) -> None:
    model = small_model()
    recipe = Recipe(optimizer=optimizer, no_decay_norm_bias=True)
    groups = make_optimizer(model, recipe).param_groups
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert len(decay) == sum(1 for _ in model.parameters())  # each parameter in one group
    bn_weights, bn_biases = norm_params(model)
    for name, param in model.named_parameters():
        no_decay = id(param) in bn_weights | bn_biases or name.endswith("bias")
        assert decay[id(param)] == (0.0 if no_decay else recipe.weight_decay), name
    assert groups[0]["name"] == "weights" and groups[0]["weight_decay"] == recipe.weight_decay

    # pure decay (zero gradients, lr > 0): conv weights shrink, BatchNorm weights keep their size
    opt = make_optimizer(model, recipe)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(1.5)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, param in model.named_parameters():
        if id(param) in bn_weights:
            assert torch.equal(param, before[name]), name
        elif param.ndim == 4:
            assert param.norm() < before[name].norm(), name


def test_default_recipe_keeps_one_group() -> None:
    groups = make_optimizer(small_model(), Recipe()).param_groups
    assert len(groups) == 1 and groups[0]["weight_decay"] == Recipe().weight_decay


@pytest.mark.parametrize("schedule", ["onecycle", "linear", "cosine"])
def test_norm_bias_lr_scale_in_groups_and_schedule(schedule) -> None:
    model = small_model()
    recipe = Recipe(norm_bias_lr_scale=4.0, schedule=schedule, epochs=2)
    optimizer = make_optimizer(model, recipe)
    by_name = {g["name"]: g for g in optimizer.param_groups}
    _, bn_biases = norm_params(model)
    assert {id(p) for p in by_name["norm_biases"]["params"]} == bn_biases
    assert by_name["norm_weights_and_biases"]["weight_decay"] == recipe.weight_decay  # decay as before
    sched = make_schedule(optimizer, recipe, steps_per_epoch=10)
    if schedule != "cosine":
        assert by_name["norm_biases"]["max_lr"] == pytest.approx(4 * recipe.lr)
        assert by_name["weights"]["max_lr"] == pytest.approx(recipe.lr)
    names = [g["name"] for g in optimizer.param_groups]
    for _ in range(19):
        lrs = dict(zip(names, sched.get_last_lr()))
        assert lrs["norm_biases"] == pytest.approx(4 * lrs["weights"])
        assert lrs["norm_weights_and_biases"] == pytest.approx(lrs["weights"])
        optimizer.step()
        sched.step()


def lrs_of(recipe: Recipe, steps_per_epoch: int = 20) -> list[float]:
    optimizer = make_optimizer(small_model(), recipe)
    sched = make_schedule(optimizer, recipe, steps_per_epoch)
    lrs = []
    for _ in range(recipe.epochs * steps_per_epoch):
        lrs.append(sched.get_last_lr()[0])
        optimizer.step()
        sched.step()
    return lrs


def test_the_linear_schedule_is_a_triangle() -> None:
    """--schedule linear: straight up to the peak at `warmup` of the steps, straight down to ~0;
    onecycle's halves, the same ends, are curves."""
    for schedule, straight in (("linear", True), ("onecycle", False)):
        lrs = lrs_of(Recipe(schedule=schedule, warmup=0.2, epochs=5, lr=0.2))
        peak = lrs.index(max(lrs))
        assert peak == 19 and lrs[peak] == pytest.approx(0.2) and lrs[-1] < 1e-3
        for part in (lrs[:peak + 1], lrs[peak:]):  # a straight line takes equal steps
            steps = np.diff(part)
            assert np.allclose(steps, steps[0], atol=1e-9) == straight, schedule


# --- alternating flip ---

def flipped(batches: DeviceBatches, images: np.ndarray, epoch: int) -> np.ndarray:
    """Which images (by index) `batches` mirrored in `epoch`."""
    batches.seed(epoch)  # the shuffling changes too: the flip must follow the image
    batches.set_epoch(epoch, seed=7)
    clean = normalise(torch.from_numpy(images).permute(0, 3, 1, 2), MEAN, STD)
    result = np.zeros(len(images), dtype=bool)
    for x, index in batches:
        mirrored = torch.isclose(x, clean[index].flip(-1), atol=1e-4).flatten(1).all(1)
        assert (mirrored | torch.isclose(x, clean[index], atol=1e-4).flatten(1).all(1)).all()
        result[index.numpy()] = mirrored.numpy()
    return result


def test_alternating_flip_mirrors_each_image_every_other_epoch() -> None:
    images = np.random.default_rng(0).integers(0, 256, (200, 32, 32, 3), dtype=np.uint8)
    cfg = replace(PLAIN, flip="alternating")
    batches = DeviceBatches(images, np.arange(200), 50, CPU.device, MEAN, STD, cfg, shuffle=True)
    epochs = [flipped(batches, images, e) for e in (1, 2, 3)]
    assert (epochs[0] ^ epochs[1]).all()  # exactly one of two consecutive epochs
    assert (epochs[0] == epochs[2]).all()
    assert 0.4 < epochs[0].mean() < 0.6 and 0.4 < epochs[1].mean() < 0.6
    again = DeviceBatches(images, np.arange(200), 50, CPU.device, MEAN, STD, cfg, shuffle=True)
    assert (flipped(again, images, 2) == epochs[1]).all()  # from the seed alone: a resumed run's
    random = DeviceBatches(images, np.arange(200), 50, CPU.device, MEAN, STD, PLAIN, shuffle=True)
    assert not (flipped(random, images, 1) ^ flipped(random, images, 2)).all()  # the default: coins


def test_alternating_flip_needs_the_batched_engine() -> None:
    with pytest.raises(NasError, match="--flip alternating needs --augment batched"):
        Recipe(augment=AugmentConfig(engine="albumentations", flip="alternating"))


# --- MixUp / CutMix ---

def batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(n)), torch.arange(n)


def test_mixup_is_a_convex_pair_of_images() -> None:
    images, labels = batch()
    mix = MixBatch(mixup=1.0, cutmix=0.0)
    mix.seed(3, p=1.0)
    for _ in range(5):
        mixed, partners, lam = mix(images, labels)
        assert 0 <= lam <= 1 and not torch.equal(mixed, images)
        assert torch.allclose(mixed, lam * images + (1 - lam) * images[partners], atol=1e-5)
        assert sorted(partners.tolist()) == labels.tolist()  # a permutation of the batch


def test_cutmix_pastes_one_box_of_the_partner() -> None:
    images, labels = batch()
    mix = MixBatch(mixup=0.0, cutmix=1.0)
    mix.seed(4, p=1.0)
    for _ in range(5):
        mixed, partners, lam = mix(images, labels)
        own = (mixed == images).all(1)  # pixels (N×H×W) left to the image itself
        theirs = (mixed == images[partners]).all(1)
        moved = partners != labels
        assert (own | theirs).all() and 0 <= lam <= 1
        assert own[moved].float().mean(dim=(1, 2)).allclose(torch.tensor(lam))  # λ: the share kept


def test_both_kinds_are_picked_and_p_zero_leaves_the_batch() -> None:
    images, labels = batch()
    mix = MixBatch(mixup=1.0, cutmix=1.0)
    mix.seed(5, p=1.0)
    kinds = set()
    for _ in range(20):
        mixed, partners, _ = mix(images, labels)
        moved = partners != labels  # a mixup of an image with itself would look untouched
        kinds.add("cutmix" if (mixed == images).all(1)[moved].any() else "mixup")
    assert kinds == {"cutmix", "mixup"}
    mix.seed(5, p=0.0)
    assert all(mix(images, labels)[2] == 1.0 for _ in range(10))


def test_mixed_loss_weighs_both_targets_with_smoothing() -> None:
    logits, a, b = torch.randn(8, 10), torch.randint(0, 10, (8,)), torch.randint(0, 10, (8,))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    assert mixed_loss(criterion, logits, a, b, 1.0) == criterion(logits, a)
    expected = 0.3 * criterion(logits, a) + 0.7 * criterion(logits, b)
    assert torch.allclose(mixed_loss(criterion, logits, a, b, 0.3), expected)


def test_mixing_reaches_the_loop_after_the_ramp() -> None:
    recipe = Recipe(epochs=2, batch_size=16, schedule="cosine", mixup=1.0, cutmix=1.0, mix_ramp=0.5)
    assert [recipe.mix_probability(e) for e in (1, 2)] == [0.0, 1.0]
    assert Recipe(epochs=10, mix_ramp=0.5).mix_probability(3) == pytest.approx(0.4)
    batches = make_batches(synthetic_splits(64), 16, AugmentConfig(), CPU)
    plain = train(small_model(), batches, replace(recipe, mixup=0.0, cutmix=0.0), CPU)
    mixed = train(small_model(), batches, recipe, CPU)
    assert mixed[0].train_loss == plain[0].train_loss  # the ramp's first epoch: no mixing
    assert mixed[1].train_loss != plain[1].train_loss


# --- the command line ---

BAD = [
    (["--ema", "1"], "--ema 1.0: must be in [0, 1)"),
    (["--ema", "-0.1"], "--ema -0.1: must be in [0, 1)"),
    (["--ema", "nan"], "--ema nan: must be in [0, 1)"),
    (["--norm-bias-lr-scale", "0"], "--norm-bias-lr-scale 0.0: must be positive and finite"),
    (["--norm-bias-lr-scale", "inf"], "--norm-bias-lr-scale inf: must be positive and finite"),
    (["--mixup", "-1"], "--mixup -1.0: must be zero (off) or a positive, finite Beta α"),
    (["--cutmix", "inf"], "--cutmix inf: must be zero (off) or a positive, finite Beta α"),
    (["--mix-ramp", "1.5"], "--mix-ramp 1.5: must be in [0, 1]"),
    (["--mix-ramp", "-0.1"], "--mix-ramp -0.1: must be in [0, 1]"),
    (["--flip", "alternating", "--augment", "albumentations"], "--flip alternating needs --augment batched"),
]


@pytest.mark.parametrize("flags,fragment", BAD, ids=[" ".join(f) for f, _ in BAD])
def test_a_bad_knob_is_one_line_before_anything_is_read(tmp_path, capsys, flags, fragment) -> None:
    out = tmp_path / "x"
    assert main(["train", "reference", "--out", str(out), "--data-dir", str(tmp_path / "none"),
                 *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not out.exists()


def test_an_unknown_flip_is_argparses_usage_error(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["train", "reference", "--out", str(tmp_path / "x"), "--flip", "sometimes"])
    assert exit.value.code == 2 and "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_every_flag_reaches_the_recipe() -> None:
    from nas.cli.arguments import recipe_from
    from nas.cli.main import build_parser

    args = build_parser().parse_args(
        ["train", "reference", "--ema", "0.99", "--no-decay-norm-bias", "--norm-bias-lr-scale", "8",
         "--mixup", "0.2", "--cutmix", "1", "--mix-ramp", "0.25", "--flip", "alternating"])
    recipe = recipe_from(args)
    assert (recipe.ema, recipe.no_decay_norm_bias, recipe.norm_bias_lr_scale) == (0.99, True, 8.0)
    assert recipe_from(build_parser().parse_args(["train", "reference", "--decay-norm-bias"]),
                       Recipe(no_decay_norm_bias=True)).no_decay_norm_bias is False
    assert (recipe.mixup, recipe.cutmix, recipe.mix_ramp) == (0.2, 1.0, 0.25)
    assert recipe.augment.flip == "alternating"
    defaults = recipe_from(build_parser().parse_args(["train", "reference"]))
    assert defaults == Recipe()  # every knob off unless asked for
