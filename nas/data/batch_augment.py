"""Batched, on-device augmentation: the split lives on the training device as one uint8 tensor,
and each batch is augmented at once with per-sample random parameters.

Same pipeline as `nas.data.augment.train_transform`: horizontal flip, shift-scale-rotate (one batched
bilinear `grid_sample`, border filled with the mean colour), one hole×hole cutout wholly inside the
image filled with the mean colour, normalisation. Randomness comes from a `torch.Generator` on the
images' device, so an epoch is reproducible from a seed on CPU and on CUDA. Alternating flip
(`AugmentConfig.flip`) needs the epoch: `DeviceBatches.set_epoch`. `MixBatch` (MixUp, CutMix) mixes
a finished batch with itself, in the training loop, whichever engine made it.

Differences from the albumentations pipeline: the warp is done in float (albumentations rounds the
warped image to uint8), and the shift is drawn continuously in ±cfg.shift of the side
(albumentations 2.0 truncates it to whole pixels: ±1 px at 32×32 with shift 0.0625).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from nas.data.augment_config import AugmentConfig, Stats, mean_fill


def _affine(images: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    scale, offset = stats
    return images.to(torch.float32, copy=True).mul_(scale).add_(offset)


def _stats(mean: Stats, std: Stats, device: torch.device,
           fill: Stats = (0.0, 0.0, 0.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, offset) that map (uint8 value - fill) to the normalised value."""
    m, s, f = (torch.tensor(v, dtype=torch.float64).view(1, 3, 1, 1) for v in (mean, std, fill))
    return (1 / (255 * s)).float().to(device), ((f / 255 - m) / s).float().to(device)


def normalise(images: torch.Tensor, mean: Stats, std: Stats) -> torch.Tensor:
    """uint8 N×3×H×W -> float32 with zero mean, unit std per channel (mean, std in the 0..1 scale)."""
    return _affine(images, _stats(mean, std, images.device))


class BatchAugment:
    """Flip, shift-scale-rotate, cutout and normalise a uint8 N×3×H×W batch, each image drawn on its own."""

    def __init__(self, cfg: AugmentConfig, mean: Stats, std: Stats) -> None:
        self.cfg, self.mean, self.std = cfg, mean, std
        self.fill = mean_fill(mean)
        self._consts: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if device not in self._consts:  # one host-to-device copy per device, not one per batch
            fill = torch.tensor(self.fill, dtype=torch.float32, device=device).view(1, 3, 1, 1)
            self._consts[device] = (fill, *_stats(self.mean, self.std, device, self.fill))
        return self._consts[device]

    def __call__(self, images: torch.Tensor, generator: torch.Generator,
                 flip: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 N×3×H×W on any device -> float32 normalised N×3×H×W; `generator` on the same device.
        `flip`: which images to mirror (N bools, alternating flip), instead of a coin per image."""
        cfg, (n, _, h, w) = self.cfg, images.shape
        if images.dtype != torch.uint8:
            raise TypeError(f"images: expected uint8, got {images.dtype}")
        if cfg.hole > min(h, w):
            raise ValueError(f"a {cfg.hole}×{cfg.hole} cutout does not fit {h}×{w} images")
        fill, scale, offset = self._constants(images.device)
        # Every draw at once and always the same number of them: the stream does not depend on the config.
        u = torch.rand(n, 9, generator=generator, device=images.device)
        x = images
        if cfg.p_flip > 0:  # a gather along the width, mirrored columns for the flipped images
            cols = torch.arange(w, device=x.device)
            mirror = u[:, 0] < cfg.p_flip if flip is None else flip
            src = torch.where(mirror[:, None], w - 1 - cols, cols)
            x = x.gather(3, src.view(n, 1, 1, w).expand(x.shape))
        x = x.float().sub_(fill)  # the mean colour is now 0: the warp's zero padding and the hole give it
        if cfg.p_affine > 0:
            x = self._warp(x, u[:, 1] < cfg.p_affine, u[:, 2:6])
        if cfg.p_cutout > 0:
            top = (u[:, 6] * (h - cfg.hole + 1)).long().clamp_(max=h - cfg.hole)  # uniform in [0, h - hole]
            left = (u[:, 7] * (w - cfg.hole + 1)).long().clamp_(max=w - cfg.hole)
            rows = torch.arange(h, device=x.device) - top[:, None]
            cols = torch.arange(w, device=x.device) - left[:, None]
            in_rows = ((rows >= 0) & (rows < cfg.hole) & (u[:, 8] < cfg.p_cutout)[:, None]).float()
            in_cols = ((cols >= 0) & (cols < cfg.hole)).float()
            x.mul_((1 - in_rows[:, :, None] * in_cols[:, None, :]).unsqueeze(1))
        return x.mul_(scale).add_(offset)

    def _warp(self, x: torch.Tensor, chosen: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Warp the chosen images: forward map p -> t + s·R(angle)·p about the centre, as albumentations'
        Affine (a positive angle turns the picture counter-clockwise); others stay untouched."""
        cfg, (n, _, h, w) = self.cfg, x.shape
        angle = (2 * r[:, 0] - 1) * math.radians(cfg.rotate)
        s = cfg.scale[0] + (cfg.scale[1] - cfg.scale[0]) * r[:, 1]
        tx, ty = (2 * r[:, 2:4] - 1).mul_(2 * cfg.shift).unbind(1)  # in affine_grid units: the side spans 2
        cos, sin, a = torch.cos(angle) / s, torch.sin(angle) / s, h / w
        # The inverse map, output -> input, in grid_sample's coordinates (-1..1 across the image).
        theta = torch.stack([cos, -sin * a, -(cos * tx - sin * ty * a),
                             sin / a, cos, -(sin * tx / a + cos * ty)], 1).view(n, 2, 3)
        if not _warp_subset(x.device):  # the identity warp returns the image exactly
            eye = torch.eye(2, 3, device=x.device).expand(n, 2, 3)
            return F.grid_sample(x, _grid(torch.where(chosen.view(n, 1, 1), theta, eye), h, w),
                                 mode="bilinear", padding_mode="zeros", align_corners=False)
        idx = chosen.nonzero().squeeze(1)
        warped = F.grid_sample(x[idx], _grid(theta[idx], h, w), mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        return x.index_copy_(0, idx, warped)


def _warp_subset(device: torch.device) -> bool:
    """Warp only the chosen images (CPU: 1.3× faster per batch than warping all at p_affine 0.5), or all
    of them, the unchosen with the identity (CUDA: no host sync to learn the subset's size)."""
    return device.type == "cpu"


def _grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """`F.affine_grid(theta, (n, c, h, w), align_corners=False)`, as two broadcast terms (several times
    faster on CPU, where affine_grid runs a slow batched matmul with an inner size of 3)."""
    n, dev = len(theta), theta.device
    xs = (torch.arange(w, device=dev) * 2 + 1) / w - 1  # pixel centres
    ys = (torch.arange(h, device=dev) * 2 + 1) / h - 1
    return ((theta[:, :, 1].view(n, 1, 1, 2) * ys.view(1, h, 1, 1) + theta[:, :, 2].view(n, 1, 1, 2))
            + theta[:, :, 0].view(n, 1, 1, 2) * xs.view(1, 1, w, 1))


class DeviceBatches:
    """A split held on the device as one uint8 N×3×H×W tensor; iterates (float images, int64 labels) batches."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, device: torch.device,
                 mean: Stats, std: Stats, augment: AugmentConfig | None = None, shuffle: bool = False,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        """images: uint8 N×H×W×3 (HWC, as loaded); labels: N integers."""
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images: expected uint8 N×H×W×3, got {images.dtype} {images.shape}")
        self.device = torch.device(device)
        hwc = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        self.images = hwc.permute(0, 3, 1, 2).contiguous()  # N×3×H×W, permuted on the device
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64).to(self.device)
        self.batch_size, self.shuffle, self.memory_format = batch_size, shuffle, memory_format
        self._norm = _stats(mean, std, self.device)
        self.augment = BatchAugment(augment, mean, std) if augment is not None else None
        self.generator = torch.Generator(device=self.device)
        self.seed(0)
        self.epoch, self._flip_bits, self._flip_seed = 0, torch.empty(0, dtype=torch.bool), None
        self.set_epoch(0, 0)

    def __len__(self) -> int:
        """Batches per epoch: the last, short batch is dropped when shuffling (as the DataLoader's drop_last)."""
        n = len(self.labels)
        return n // self.batch_size if self.shuffle else -(-n // self.batch_size)

    def seed(self, seed: int) -> None:
        """Reseed the shuffling and the augmentation, e.g. once per epoch."""
        self.generator.manual_seed(seed)

    def set_epoch(self, epoch: int, seed: int) -> None:
        """Alternating flip: in `epoch` an image is mirrored when the epoch's parity differs from
        its own random bit, drawn once from `seed` (the run's, so a resumed run draws the same)."""
        self.epoch = epoch
        if self._alternating() and self._flip_seed != seed:
            bits = torch.Generator(device=self.device).manual_seed(seed)
            self._flip_bits = torch.rand(len(self.labels), generator=bits, device=self.device) < 0.5
            self._flip_seed = seed

    def _alternating(self) -> bool:
        return self.augment is not None and self.augment.cfg.flip == "alternating"

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = (torch.randperm(n, generator=self.generator, device=self.device) if self.shuffle
                 else torch.arange(n, device=self.device))
        odd = self.epoch % 2 == 1
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            batch = self.images[idx]
            flip = self._flip_bits[idx] ^ odd if self._alternating() else None
            x = (self.augment(batch, self.generator, flip) if self.augment is not None
                 else _affine(batch, self._norm))
            yield x.contiguous(memory_format=self.memory_format), self.labels[idx]


class MixBatch:
    """MixUp and CutMix: a batch mixed with its own shuffled copy; the loss then weighs each image's
    two labels by λ ~ Beta(α, α), the share of the image that is its own. The draws come from a
    numpy generator reseeded every epoch (torch has no Beta sampler that takes a generator), so a
    resumed run mixes exactly as an uninterrupted one."""

    def __init__(self, mixup: float, cutmix: float) -> None:
        """mixup, cutmix: the α of each (0: that one off); with both, a coin picks one per batch."""
        self.mixup, self.cutmix = mixup, cutmix
        self.p, self.rng = 1.0, np.random.default_rng(0)

    def seed(self, seed: int, p: float) -> None:
        """Reseed for an epoch in which each batch is mixed with probability `p`."""
        self.rng, self.p = np.random.default_rng(seed), p

    def __call__(self, images: torch.Tensor, labels: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(images, partner labels, λ): for a batch left unmixed the images themselves and λ = 1."""
        n, h, w = len(images), *images.shape[-2:]
        # the same draws for every batch, mixed or not: a batch's coin does not shift the next's
        coin, pick, cy, cx = self.rng.random(4)
        perm = self.rng.permutation(n)
        cutmix = self.cutmix > 0 and (self.mixup == 0 or pick < 0.5)
        alpha = self.cutmix if cutmix else self.mixup
        lam = float(self.rng.beta(alpha, alpha))
        if coin >= self.p:
            return images, labels, 1.0
        order = torch.from_numpy(perm).to(images.device)
        if not cutmix:
            return torch.lerp(images[order], images, lam), labels[order], lam  # λ·x + (1-λ)·x[perm]
        # a box of about (1 - λ) of the area, centred anywhere, clipped at the border (as timm);
        # λ becomes the share the clipping really left to the image itself
        side = math.sqrt(1 - lam)
        ch, cw, y, x = int(h * side), int(w * side), int(cy * h), int(cx * w)
        top, bottom = max(y - ch // 2, 0), min(y + ch // 2, h)
        left, right = max(x - cw // 2, 0), min(x + cw // 2, w)
        mixed = images.clone()
        mixed[..., top:bottom, left:right] = images[order, :, top:bottom, left:right]
        return mixed, labels[order], 1 - (bottom - top) * (right - left) / (h * w)
