"""Augmentation throughput, images/s, of the three ways to run the training pipeline (`AugmentConfig()`):

  (a) albumentations, image by image in one process (`train_transform`, as a DataLoader worker does,
      batches stacked as the DataLoader's collate does);
  (b) kornia, batched on the device, configured to the same spec (flip, affine with the mean colour as
      border, normalise, then a 16×16 erase with 0, i.e. the mean colour after normalisation);
  (c) `nas.data.batch_augment.BatchAugment`, batched on the device.

Each row starts from uint8 images (HWC numpy for (a), an N×3×H×W tensor already on the device for
(b) and (c)) and ends with a normalised float batch. Rates are medians over chunks of 4 batches (see
`rate`). Run on CPU, and on CUDA when visible; the images are random (the cost does not depend on
their content). kornia is optional: its rows are skipped when it is not installed.

    python benchmarks/augment_speed.py [--images 5120] [--album-images 2048] [--batch 256] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no PyPI version check on import

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nas.data.augment import train_transform
from nas.data.augment_config import AugmentConfig, mean_fill
from nas.data.batch_augment import BatchAugment  # noqa: E402

MEAN = (0.4914, 0.4822, 0.4465)  # CIFAR-10's
STD = (0.2470, 0.2435, 0.2616)
EPOCH = 50_000


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(run_batch: Callable[[int], object], batches: int, batch: int, device: torch.device,
         repeats: int = 3, chunk: int = 4) -> float:
    """images/s: `repeats` passes over `batches` batches after two warm-up batches, timed in chunks of
    `chunk` batches; the median chunk, so that bursts of other processes on the machine do not count."""
    for i in range(2):
        run_batch(i)
    rates = []
    chunk = min(chunk, batches)
    for _ in range(repeats):
        for first in range(0, batches - chunk + 1, chunk):
            sync(device)
            start = time.perf_counter()
            for i in range(first, first + chunk):
                run_batch(i)
            sync(device)
            rates.append(chunk * batch / (time.perf_counter() - start))
    return float(np.median(rates))


def kornia_pipeline(cfg: AugmentConfig, device: torch.device, side: int):
    """kornia configured to the spec, or None when kornia is not installed."""
    try:
        import kornia.augmentation as K
    except ImportError:
        return None
    fill = torch.tensor(mean_fill(MEAN), dtype=torch.float32, device=device) / 255
    # RandomErasing fills with one scalar in [0, 1], so it cannot take a per-channel mean colour
    # before normalisation: it runs after it, filling with 0 (= the mean colour there).
    return torch.nn.Sequential(
        K.RandomHorizontalFlip(p=cfg.p_flip),
        K.RandomAffine(degrees=cfg.rotate, translate=(cfg.shift, cfg.shift), scale=cfg.scale,
                       padding_mode="fill", fill_value=fill, p=cfg.p_affine),
        K.Normalize(mean=torch.tensor(MEAN, device=device), std=torch.tensor(STD, device=device)),
        K.RandomErasing(scale=(cfg.hole ** 2 / side ** 2,) * 2, ratio=(1.0, 1.0), value=0.0, p=cfg.p_cutout),
    ).to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5120, help="images per batched row (default 5120)")
    parser.add_argument("--album-images", type=int, default=2048, help="images for the albumentations row")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice); 1 compares per core, and is the "
                             "steadier measure on a machine that other processes share")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, b = AugmentConfig(), args.batch
    shape = (max(args.images, args.album_images), 32, 32, 3)
    hwc = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}), torch "
          f"{torch.__version__} with {torch.get_num_threads()} threads; batch {b}; AugmentConfig() defaults")

    album = train_transform(MEAN, STD, cfg=cfg, seed=0)
    n_album = args.album_images // b
    rows = [("(a) albumentations, per image", "cpu",
             rate(lambda i: torch.stack([album(image=im)["image"] for im in hwc[i % n_album * b:][:b]]),
                  n_album, b, torch.device("cpu")))]
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        images = torch.from_numpy(hwc[:args.images]).to(device).permute(0, 3, 1, 2).contiguous()
        n = args.images // b
        batches = [images[i * b:(i + 1) * b] for i in range(n)]
        kornia = kornia_pipeline(cfg, device, 32)
        if kornia is None and device.type == "cpu":
            print("kornia is not installed (pip install kornia): its rows are skipped")
        elif kornia is not None:
            torch.manual_seed(0)  # kornia draws from the global generator
            rows.append(("(b) kornia, batched", device.type,
                         rate(lambda i: kornia(batches[i % n].float().div_(255)), n, b, device)))
        ours, generator = BatchAugment(cfg, MEAN, STD), torch.Generator(device=device).manual_seed(0)
        rows.append(("(c) BatchAugment, batched", device.type,
                     rate(lambda i: ours(batches[i % n], generator), n, b, device)))

    base = rows[0][2]
    print(f"\n{'pipeline':<32}{'device':>7}{'images/s':>12}{'vs (a)':>9}{'s / 50k epoch':>15}")
    for name, device_type, r in rows:
        print(f"{name:<32}{device_type:>7}{r:>12,.0f}{r / base:>8.1f}×{EPOCH / r:>15.2f}")


if __name__ == "__main__":
    main()
