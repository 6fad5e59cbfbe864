"""Predictions on image files: each file's most likely classes under a run's model.

    classifier, classes = load_model("runs/reference")           # nas.training.modelfile
    predict_images(classifier, classes, [Path("cat.jpg")])   # [[("cat", 0.71), ("dog", 0.12), ...]]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from nas.errors import NasError


def read_image(path: str | Path, size: int = 32) -> torch.Tensor:
    """One image file (PNG, JPEG, anything Pillow reads; any size and mode) as uint8 3×size×size:
    RGB-converted, resized with Pillow's antialiased bilinear filter. NasError when unreadable."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        what = "is a folder, not an image file" if path.is_dir() else "no such image file"
        raise NasError(f"{path}: {what}; give the path of a PNG or JPEG image")
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        kind = "not an image Pillow can read" if isinstance(err, UnidentifiedImageError) else \
            f"cannot be decoded ({str(err).strip() or type(err).__name__})"
        raise NasError(f"{path}: {kind}; give a PNG or JPEG image") from None
    data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return data.view(size, size, 3).permute(2, 0, 1).contiguous()


def predict_images(classifier: nn.Module, classes: Sequence[str], paths: Sequence[str | Path],
                   top: int = 3) -> list[list[tuple[str, float]]]:
    """For each image file, its `top` most likely classes with their softmax probabilities, most
    likely first. All files are read (and checked) before the network runs."""
    if top < 1:
        raise NasError(f"top must be at least 1, got {top}")
    if not paths:
        return []
    size = getattr(classifier, "input_size", 32)
    batch = torch.stack([read_image(p, size) for p in paths])
    was_training = classifier.training
    classifier.eval()
    try:
        with torch.inference_mode():
            device = next((b.device for b in classifier.buffers()), torch.device("cpu"))
            probs = classifier(batch.to(device)).float().softmax(dim=1).cpu()
    finally:
        classifier.train(was_training)
    values, indices = probs.topk(min(top, probs.shape[1]), dim=1)
    return [[(classes[i], float(v)) for v, i in zip(vs.tolist(), ix.tolist(), strict=True)]
            for vs, ix in zip(values, indices, strict=True)]
