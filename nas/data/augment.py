"""Training and evaluation pipelines (albumentations 2.x) and the dataset that applies them.

Training: horizontal flip, a shift-scale-rotate (`A.Affine`), one 16×16 cutout hole filled with the
data set's mean colour, then normalisation to zero mean and unit variance per channel.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2
from torch.utils.data import Dataset, get_worker_info

from nas.data.augment_config import AugmentConfig, Stats, mean_fill


def train_transform(mean: Stats, std: Stats, p_flip: float | None = None,
                    cfg: AugmentConfig = AugmentConfig(), seed: int | None = None) -> A.Compose:
    """Flip, affine, cutout, normalise, to tensor. p_flip, when given, overrides cfg.p_flip."""
    fill = mean_fill(mean)
    shift = (-cfg.shift, cfg.shift)
    return A.Compose([
        A.HorizontalFlip(p=cfg.p_flip if p_flip is None else p_flip),
        # Border: constant, filled with the mean colour, which normalises to 0 (like the cutout
        # hole), i.e. "no information"; reflection would invent mirrored object parts at 32×32.
        # translate_percent as a dict: a tuple would draw ONE shift for both axes (diagonal only);
        # keep_ratio: a tuple scale is otherwise drawn independently per axis (a stretch).
        A.Affine(translate_percent={"x": shift, "y": shift}, scale=cfg.scale, keep_ratio=True,
                 rotate=(-cfg.rotate, cfg.rotate), border_mode=cv2.BORDER_CONSTANT, fill=fill, p=cfg.p_affine),
        # In albumentations 2.x a hole is placed wholly inside the image (never clipped at the border,
        # unlike the original Cutout), so it always covers exactly hole×hole pixels.
        A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(cfg.hole, cfg.hole),
                        hole_width_range=(cfg.hole, cfg.hole), fill=fill, p=cfg.p_cutout),
        A.Normalize(mean=mean, std=std, max_pixel_value=255.0),
        ToTensorV2(),
    ], seed=seed)


def eval_transform(mean: Stats, std: Stats) -> A.Compose:
    """Normalise and convert to a tensor, nothing random."""
    return A.Compose([A.Normalize(mean=mean, std=std, max_pixel_value=255.0), ToTensorV2()])


class AugmentedDataset(Dataset):
    """uint8 N×32×32×3 images and labels, transformed on access to (float32 3×32×32 tensor, int label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: A.Compose) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels, self.transform = images, labels, transform
        self._worker_seed: int | None = None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        # DataLoader workers are forked with identical copies of the transform's random state, so
        # without a reseed every worker would draw the same augmentations; torch gives each worker
        # (and each epoch) its own seed.
        if (info := get_worker_info()) is not None and info.seed != self._worker_seed:
            self._worker_seed = info.seed
            self.transform.set_random_seed(info.seed % 2**32)
        return self.transform(image=self.images[i])["image"], int(self.labels[i])
