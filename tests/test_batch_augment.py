"""nas.data.batch_augment against the albumentations pipeline (`nas.data.augment.train_transform`, the oracle),
statistically, on synthetic images: flip rate, the affine's parameter ranges, the cutout, the border
fill; `DeviceBatches`; determinism. Tolerances are 5 sigma or more."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nas.data.batch_augment as batch_augment
from nas.data.augment import eval_transform, train_transform
from nas.data.augment_config import AugmentConfig, mean_fill
from nas.data.batch_augment import BatchAugment, DeviceBatches, normalise

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
FILL = np.array(mean_fill(MEAN), dtype=np.float64)  # (125, 123, 114)
CENTRE = 15.5  # of a 32×32 image, in pixel-centre coordinates


def ours(images: np.ndarray, cfg: AugmentConfig, seed: int = 0, device: str = "cpu") -> np.ndarray:
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).contiguous()
    return BatchAugment(cfg, MEAN, STD)(x, torch.Generator(device=device).manual_seed(seed)).cpu().numpy()


def ours_cuda(images: np.ndarray, cfg: AugmentConfig, seed: int = 0) -> np.ndarray:
    return ours(images, cfg, seed, "cuda")


def albumentations(images: np.ndarray, cfg: AugmentConfig, seed: int = 0) -> np.ndarray:
    t = train_transform(MEAN, STD, cfg=cfg, seed=seed)
    return np.stack([t(image=image)["image"].numpy() for image in images])


NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
PIPELINES = pytest.mark.parametrize("pipeline", [ours, albumentations, pytest.param(ours_cuda, marks=NO_CUDA)],
                                    ids=["ours", "albumentations", "ours-cuda"])


def pixels(x: np.ndarray) -> np.ndarray:
    """Normalised N×3×H×W -> N×H×W×3 in the 0..255 scale, unrounded."""
    return (x.transpose(0, 2, 3, 1) * np.array(STD) + np.array(MEAN)) * 255


def within_5_sigma(rate: float, p: float, n: int) -> bool:
    return abs(rate - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-9


def uniform_ok(values: np.ndarray, lo: float, hi: float, tol: float) -> None:
    """Draws from uniform(lo, hi), measured with error up to `tol`: range, mean and std."""
    n, width = len(values), hi - lo
    assert lo - tol <= values.min() <= lo + 0.05 * width + tol
    assert hi - 0.05 * width - tol <= values.max() <= hi + tol
    assert abs(values.mean() - (lo + hi) / 2) <= 5 * width / math.sqrt(12 * n) + tol
    assert abs(values.std() / (width / math.sqrt(12)) - 1) <= 0.08 + tol / width


@PIPELINES
def test_flip_rate(pipeline) -> None:
    ramp = np.broadcast_to(np.arange(0, 256, 8, dtype=np.uint8)[None, :, None], (32, 32, 3))
    images = np.stack([ramp] * 3000)
    out = pixels(pipeline(images, AugmentConfig(p_flip=0.3, p_affine=0, p_cutout=0)))
    same = np.abs(out - ramp).max((1, 2, 3)) < 1e-3
    flipped = np.abs(out - ramp[:, ::-1]).max((1, 2, 3)) < 1e-3
    assert (same ^ flipped).all()
    assert within_5_sigma(flipped.mean(), 0.3, len(images))


# Three 3×3 dots, one per channel, on the mean colour: each channel's centroid after the warp gives
# one point, and three points give the similarity (shift, scale, angle).
DOTS = np.array([[9.0, 11.0], [22.0, 11.0], [15.0, 23.0]])  # (x, y) pixel centres of red, green, blue


def dots_image() -> np.ndarray:
    image = np.empty((32, 32, 3), np.uint8)
    image[:] = FILL.astype(np.uint8)
    for c, (x, y) in enumerate(DOTS.astype(int)):
        image[y - 1:y + 2, x - 1:x + 2, c] = 255
    return image


def similarity(out: np.ndarray) -> tuple[np.ndarray, ...]:
    """(shift x, shift y in pixels, scale, angle in degrees) per image, from the dots' centroids; the
    forward map is p -> t + s·[[cos, sin], [-sin, cos]]·p about the centre, as albumentations' Affine."""
    weight = out - FILL  # N×H×W×3, 0 off the dots and in the border
    weight = np.where(weight > 0.5, weight, 0)
    total = weight.sum((1, 2))
    ys, xs = np.arange(32.0)[None, :, None, None], np.arange(32.0)[None, None, :, None]
    q = np.stack([(weight * xs).sum((1, 2)) / total, (weight * ys).sum((1, 2)) / total], 2) - CENTRE  # N×3×2
    p = DOTS - CENTRE
    # qx = a px + b py + tx, qy = -b px + a py + ty: 6 equations, unknowns (a, b, tx, ty)
    design = np.zeros((6, 4))
    design[0::2] = np.column_stack([p[:, 0], p[:, 1], np.ones(3), np.zeros(3)])
    design[1::2] = np.column_stack([p[:, 1], -p[:, 0], np.zeros(3), np.ones(3)])
    a, b, tx, ty = (np.linalg.pinv(design) @ q.reshape(-1, 6, 1))[..., 0].T
    return tx, ty, np.hypot(a, b), np.degrees(np.arctan2(b, a))


@PIPELINES
def test_affine_ranges_and_rate(pipeline) -> None:
    cfg = AugmentConfig(p_flip=0, p_affine=0.5, p_cutout=0)
    n = 3000
    tx, ty, scale, angle = similarity(pixels(pipeline(np.stack([dots_image()] * n), cfg)))
    warped = (np.abs(angle) > 0.05) | (np.abs(scale - 1) > 0.002) | (np.hypot(tx, ty) > 0.02)
    assert within_5_sigma(warped.mean(), cfg.p_affine, n)
    # the untouched images come back as they were (the fit of an unwarped image is exact to ~1e-6);
    # the fit of a warped one is off by up to 0.4°, 0.006 in scale, 0.06 px (bilinear blur, uint8 rounding)
    assert np.abs(angle[~warped]).max() < 1e-3 and np.abs(scale[~warped] - 1).max() < 1e-5
    uniform_ok(angle[warped], -cfg.rotate, cfg.rotate, tol=0.6)
    uniform_ok(scale[warped], *cfg.scale, tol=0.01)
    bound = cfg.shift * 32
    for t in (tx[warped], ty[warped]):
        if pipeline is not albumentations:
            uniform_ok(t, -bound, bound, tol=0.12)
        else:  # albumentations 2.0 truncates the shift to whole pixels: see the next test
            assert np.abs(t).max() <= bound + 0.12 and abs(t.mean()) <= 5 * 0.71 / math.sqrt(len(t)) + 0.12


def test_albumentations_truncates_the_shift_to_whole_pixels() -> None:
    """A known deviation of the oracle from the spec (int(fraction × side) in A.Affine): ±2 px asked,
    shifts of -1, 0 or +1 px drawn. BatchAugment draws the continuous ±2 px the spec asks for."""
    cfg = AugmentConfig(p_flip=0, p_affine=1, p_cutout=0, scale=(1, 1), rotate=0)
    tx, ty, _, _ = similarity(pixels(albumentations(np.stack([dots_image()] * 400), cfg)))
    for t in (tx, ty):
        assert np.abs(t - np.round(t)).max() < 0.02 and set(np.round(t)) == {-1, 0, 1}


@PIPELINES
def test_cutout(pipeline) -> None:
    colour = np.array([0, 255, 0])  # far from the fill in every channel
    cfg = AugmentConfig(p_flip=0, p_affine=0, p_cutout=0.4)
    n = 3000
    x = pipeline(np.full((n, 32, 32, 3), colour, np.uint8), cfg)
    out = pixels(x)
    hole = (np.abs(out - FILL) < 0.5).all(-1)  # N×H×W
    assert (np.abs(out[~hole] - colour) < 1e-3).all()
    assert np.abs(x.transpose(0, 2, 3, 1)[hole]).max() < 0.01  # the mean colour: ≈ 0 after normalisation
    counts = hole.sum((1, 2))
    assert set(counts) == {0, cfg.hole ** 2}
    assert within_5_sigma((counts > 0).mean(), cfg.p_cutout, n)
    tops, lefts = [], []
    for h in hole[counts > 0]:
        (y0, x0), (y1, x1) = np.argwhere(h).min(0), np.argwhere(h).max(0)
        assert (y1 - y0 + 1, x1 - x0 + 1) == (cfg.hole, cfg.hole)  # one whole square, never clipped
        tops.append(y0)
        lefts.append(x0)
    for corner in (np.array(tops), np.array(lefts)):  # uniform over 0 .. 32 - hole
        assert corner.min() == 0 and corner.max() == 32 - cfg.hole
        sigma = math.sqrt(((32 - cfg.hole + 1) ** 2 - 1) / 12 / len(corner))
        assert abs(corner.mean() - (32 - cfg.hole) / 2) <= 5 * sigma


@PIPELINES
def test_border_after_a_large_shift_is_the_mean_colour(pipeline) -> None:
    cfg = AugmentConfig(p_flip=0, p_affine=1, p_cutout=0, shift=0.4, scale=(1, 1), rotate=0)
    out = pixels(pipeline(np.full((300, 32, 32, 3), 255, np.uint8), cfg))
    blend = (out - FILL) / (255 - FILL)  # 0: the fill, 1: the white image, between: bilinear edges
    assert (blend > -0.01).all() and (blend < 1.01).all()
    assert np.abs(blend - blend.mean(-1, keepdims=True)).max() < 0.01  # the same blend in each channel
    fill = np.abs(blend).max(-1) < 0.003  # N×H×W
    edges = np.stack([fill[:, 0].all(1), fill[:, -1].all(1), fill[:, :, 0].all(1), fill[:, :, -1].all(1)])
    assert edges.any(0).mean() > 0.8  # a whole border row or column of the mean colour in most images


def test_normalise_matches_eval_transform() -> None:
    images = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    expected = np.stack([eval_transform(MEAN, STD)(image=image)["image"].numpy() for image in images])
    x = normalise(torch.from_numpy(images).permute(0, 3, 1, 2), MEAN, STD)
    assert x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-5)


def test_determinism_and_no_side_effects() -> None:
    images = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (64, 3, 32, 32), dtype=np.uint8))
    before = images.clone()
    aug = BatchAugment(AugmentConfig(), MEAN, STD)
    a, b = (aug(images, torch.Generator().manual_seed(7)) for _ in range(2))
    c = aug(images, torch.Generator().manual_seed(8))
    assert a.shape == (64, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(images, before)
    with pytest.raises(TypeError):
        aug(images.float(), torch.Generator())


def test_warp_strategies_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU warps the chosen subset, CUDA all images (the unchosen with the identity): same output."""
    images = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (64, 3, 32, 32), dtype=np.uint8))
    aug = BatchAugment(AugmentConfig(), MEAN, STD)
    subset = aug(images, torch.Generator().manual_seed(1))
    monkeypatch.setattr(batch_augment, "_warp_subset", lambda device: False)
    torch.testing.assert_close(aug(images, torch.Generator().manual_seed(1)), subset, atol=1e-5, rtol=0)


def device_batches_case(device: torch.device) -> None:
    n, batch = 600, 64
    rng = np.random.default_rng(4)
    images, labels = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n)
    expected = normalise(torch.from_numpy(images).permute(0, 3, 1, 2), MEAN, STD)

    def epoch(batches: DeviceBatches, seed: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if seed is not None:
            batches.seed(seed)
        return [(x.cpu(), y.cpu()) for x, y in batches]

    shuffled = DeviceBatches(images, labels, batch, device, MEAN, STD, shuffle=True)
    first = epoch(shuffled, 1)
    assert len(shuffled) == len(first) == n // batch  # drop_last
    seen = torch.cat([y for _, y in first])
    assert len(set(seen.tolist())) == len(seen) == n // batch * batch  # each image at most once
    for x, y in first:
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and len(y) == batch
        torch.testing.assert_close(x, expected[y], atol=1e-6, rtol=0)  # no augment: exactly `normalise`
    assert all(torch.equal(y1, y2) for (_, y1), (_, y2) in zip(first, epoch(shuffled, 1)))
    assert not torch.equal(seen, torch.cat([y for _, y in epoch(shuffled, 2)]))

    ordered = DeviceBatches(images, labels, batch, device, MEAN, STD)
    plain = epoch(ordered)
    assert len(ordered) == len(plain) == math.ceil(n / batch) and len(plain[-1][1]) == n % batch
    assert torch.equal(torch.cat([y for _, y in plain]), torch.arange(n))
    torch.testing.assert_close(torch.cat([x for x, _ in plain]), expected, atol=1e-6, rtol=0)

    augmented = DeviceBatches(images, labels, batch, device, MEAN, STD, augment=AugmentConfig(), shuffle=True,
                              memory_format=torch.channels_last)
    one, two, other = epoch(augmented, 3), epoch(augmented, 3), epoch(augmented, 4)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(one, two))
    assert not torch.equal(one[0][0], other[0][0])
    assert next(iter(augmented))[0].is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError):
        DeviceBatches(images, labels[:-1], batch, device, MEAN, STD)


def test_device_batches() -> None:
    device_batches_case(torch.device("cpu"))


@NO_CUDA
def test_device_batches_on_cuda() -> None:
    device_batches_case(torch.device("cuda"))
