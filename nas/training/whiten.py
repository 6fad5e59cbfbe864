"""Whitened initialisation of the first convolution (airbench's `init_whitening_conv`).

The first conv's filters start as the whitening transform of the training images' patches: the
top eigenvectors of the patch covariance, each scaled by 1/sqrt(eigenvalue), and each also with
its sign flipped, so that the ReLU after it passes both halves of every direction. From the first
step the layer hands on every direction of the patch space at equal strength, instead of learning
to over the first epochs, which is what a short schedule cannot spare.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from nas.errors import NasError

WHITEN_IMAGES = 5_120  # airbench measures its covariance on 5,000 training images
WHITEN_EPS = 5e-4  # airbench's: the weakest (noise) directions are not blown up without bound


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The conv that sees the images (`model.c1.conv1.conv`); NasError unless it is a standard one."""
    unit = model.get_submodule("c1.conv1")
    if not isinstance(getattr(unit, "conv", None), nn.Conv2d):
        kind = "separable" if hasattr(unit, "pointwise") else "depthwise"
        raise NasError(f"--whiten-init whitens the first convolution, which must be a standard one: "
                       f"this design's c1 conv 1 is {kind}; make it standard or leave --whiten-init off")
    return unit.conv


@torch.no_grad()
def patch_covariance(conv: nn.Conv2d, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                     images: int = WHITEN_IMAGES) -> torch.Tensor:
    """The second moment of the patches `conv` sees (its kernel and dilation, every position, no
    padding), over the first `images` images of `batches`: a D×D float64 matrix, D = C·kh·kw in
    the order of `conv.weight.flatten(1)`. The images are normalised, so this is their covariance."""
    dim = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    total, count, seen = None, 0, 0
    for batch, _ in batches:
        patches = nn.functional.unfold(batch.float(), conv.kernel_size, dilation=conv.dilation)
        flat = patches.transpose(1, 2).reshape(-1, dim).double()
        moment = flat.T @ flat
        total = moment if total is None else total + moment
        count, seen = count + len(flat), seen + len(batch)
        if seen >= images:
            break
    if total is None:
        raise NasError("--whiten-init: no training images to measure the patches on")
    return total / count


@torch.no_grad()
def whiten_first_conv(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                      images: int = WHITEN_IMAGES, eps: float = WHITEN_EPS) -> int:
    """Set the first conv's filters to the whitening filters of the patches of `batches` and their
    negatives, strongest directions first; filters beyond twice the patch dimension keep their
    initialisation. Returns how many directions were set (each as a ± pair)."""
    conv = first_conv(model)
    eigenvalues, eigenvectors = torch.linalg.eigh(patch_covariance(conv, batches, images))
    pairs = min(conv.out_channels // 2, len(eigenvalues))
    top = eigenvalues.argsort(descending=True)[:pairs]
    filters = (eigenvectors[:, top] / (eigenvalues[top].clamp(min=0) + eps).sqrt()).T  # pairs × D
    weight = conv.weight
    filters = filters.reshape(pairs, *weight.shape[1:]).to(weight.dtype).to(weight.device)
    weight[:pairs] = filters
    weight[pairs:2 * pairs] = -filters
    return pairs
