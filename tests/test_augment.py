"""nas.data.augment: the cutout hole, the flip rate, the affine, normalisation, the dataset, no warnings."""

from __future__ import annotations

import copy
import types
import warnings

import numpy as np
import pytest
import torch

import nas.data.augment as augment
from nas.data.augment import AugmentedDataset, eval_transform, train_transform
from nas.data.augment_config import AugmentConfig, mean_fill

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
FILL = (125, 123, 114)
ONLY_CUTOUT = AugmentConfig(p_flip=0.0, p_affine=0.0, p_cutout=1.0)
ONLY_AFFINE = AugmentConfig(p_flip=0.0, p_affine=1.0, p_cutout=0.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Undo Normalize + ToTensorV2: back to the HWC uint8 image the geometric steps produced."""
    hwc = x.numpy().transpose(1, 2, 0) * np.array(STD) + np.array(MEAN)
    return np.rint(hwc * 255).astype(np.uint8)


def ramp() -> np.ndarray:
    """An image that differs from its mirror image."""
    return np.broadcast_to(np.arange(0, 256, 8, dtype=np.uint8)[None, :, None], (32, 32, 3)).copy()


def test_mean_fill() -> None:
    assert mean_fill(MEAN) == FILL


def test_no_albumentations_warnings() -> None:
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # albumentations warns (not fails) on unknown or invalid kwargs
        for cfg in (AugmentConfig(), AugmentConfig(p_flip=1, p_affine=1, p_cutout=1)):
            train_transform(MEAN, STD, cfg=cfg)(image=image)
        eval_transform(MEAN, STD)(image=image)


def test_cutout_is_one_whole_16x16_hole_of_the_mean_colour() -> None:
    colour = (0, 255, 0)  # far from the fill in every channel
    image = np.full((32, 32, 3), colour, dtype=np.uint8)
    corners = set()
    for seed in range(40):
        out = to_uint8(train_transform(MEAN, STD, cfg=ONLY_CUTOUT, seed=seed)(image=image)["image"])
        hole = (out == FILL).all(-1)
        assert hole.sum() == 256
        (y0, x0), (y1, x1) = np.argwhere(hole).min(0), np.argwhere(hole).max(0)
        assert (y1 - y0, x1 - x0) == (15, 15)  # a full square: albumentations 2.x never clips it at the border
        assert (out[~hole] == colour).all()
        corners.add((y0, x0))
    assert len(corners) > 20  # the position is random


def test_flip_rate() -> None:
    image = ramp()
    ds = AugmentedDataset(np.stack([image] * 2000), np.zeros(2000, np.int64),
                          train_transform(MEAN, STD, cfg=AugmentConfig(p_affine=0, p_cutout=0), seed=0))
    flipped = [bool((to_uint8(ds[i][0]) == image[:, ::-1]).all()) for i in range(len(ds))]
    assert 0.45 <= np.mean(flipped) <= 0.55
    for p, expected in ((0.0, 0), (1.0, 20)):  # the p_flip argument overrides the config
        t = train_transform(MEAN, STD, p_flip=p, cfg=AugmentConfig(p_affine=0, p_cutout=0))
        assert sum(bool((to_uint8(t(image=image)["image"]) == image[:, ::-1]).all()) for _ in range(20)) == expected


def test_eval_transform_normalises_exactly() -> None:
    image = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = eval_transform(MEAN, STD)(image=image)["image"]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    expected = ((image / 255.0 - np.array(MEAN)) / np.array(STD)).transpose(2, 0, 1)
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-6)


def test_train_output_shape_and_dtype() -> None:
    image = np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = train_transform(MEAN, STD, seed=0)(image=image)["image"]
    assert isinstance(x, torch.Tensor) and x.shape == (3, 32, 32) and x.dtype == torch.float32


def test_affine_changes_images_and_fills_the_border_with_the_mean() -> None:
    image = np.random.default_rng(5).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    plain = eval_transform(MEAN, STD)(image=image)["image"]
    t = train_transform(MEAN, STD, cfg=ONLY_AFFINE, seed=0)
    assert all(not torch.allclose(t(image=image)["image"], plain) for _ in range(10))
    shrink = AugmentConfig(p_flip=0, p_affine=1, p_cutout=0, scale=(0.8, 0.8), rotate=0, shift=0)
    out = to_uint8(train_transform(MEAN, STD, cfg=shrink)(image=image)["image"])
    assert (out[0, 0] == FILL).all() and (out[-1, -1] == FILL).all()  # the uncovered corners


def test_dataset_items() -> None:
    images = np.random.default_rng(6).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    ds = AugmentedDataset(images, np.arange(5), eval_transform(MEAN, STD))
    x, y = ds[3]
    assert len(ds) == 5 and x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert type(y) is int and y == 3
    with pytest.raises(ValueError):
        AugmentedDataset(images, np.arange(4), eval_transform(MEAN, STD))


def test_workers_draw_different_augmentations(monkeypatch: pytest.MonkeyPatch) -> None:
    images = np.random.default_rng(7).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    ds = AugmentedDataset(images, np.zeros(1, np.int64), train_transform(MEAN, STD, cfg=ONLY_AFFINE, seed=0))
    draws = []
    for worker_seed in (11, 12):  # what DataLoader workers (forked copies of the dataset) see
        worker = copy.deepcopy(ds)
        monkeypatch.setattr(augment, "get_worker_info", lambda s=worker_seed: types.SimpleNamespace(seed=s))
        draws.append(worker[0][0])
    assert not torch.equal(draws[0], draws[1])
