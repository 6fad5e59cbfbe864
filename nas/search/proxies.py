"""Zero-cost proxies: training-free scores of a design at initialisation.

Each score takes well under a second on CPU for a ~200k-parameter network and a batch of 64
CIFAR-10 images, so a search can rank (or prune) thousands of designs before training any:

    synflow(model)                       Tanaka et al. 2020, "Pruning neural networks without any
                                         data by iteratively conserving synaptic flow"
    naswot(model, images)                Mellor et al. 2021, "Neural architecture search without
                                         training" (log |det| of the ReLU activation-code kernel)
    grad_norm(model, images, labels)     L2 norm of the loss gradient over all parameters
    scores(config, images, labels)       all three for a fresh model built with a fixed seed

No proxy changes the model it is given: each works on a deep copy (weights, BatchNorm running
statistics and `.grad` stay as they were). `images` are N×3×H×W floats as the network sees them in
training (normalised); uint8 images are scaled to [0, 1] and standardised per channel over the batch.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn

from nas.data.cifar10 import Cifar10
from nas.data.splits import make_splits
from nas.design.config import ArchConfig
from nas.design.model import build_model

_WEIGHTED = (nn.Conv2d, nn.Linear)


def _as_input(images: torch.Tensor) -> torch.Tensor:
    """Float N×3×H×W; uint8 images are scaled to [0, 1] and standardised per channel."""
    if images.dtype == torch.uint8:
        x = images.float() / 255.0
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
        return (x - mean) / std
    return images.float()


def _batch_stats_mode(model: nn.Module) -> nn.Module:
    """Train mode (BatchNorm normalises with the batch's statistics, as at the start of training),
    but dropout off, so that a score is a deterministic function of the weights and the batch."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout | nn.Dropout2d | nn.AlphaDropout):
            m.eval()
    return model


def synflow(model: nn.Module, input_shape: tuple[int, int, int] = (3, 32, 32)) -> float:
    """SynFlow: the sum over every conv and linear weight of |θ ⊙ ∂R/∂θ|, where R is the sum of the
    outputs of the linearised network (all weights replaced by |θ|) on an all-ones input.

    As the paper's code does: float64 (the product of |θ| over depth can overflow float32), and
    BatchNorm in eval mode, which at initialisation (running mean 0, variance 1, γ = 1, β = 0) is
    the identity up to 1/sqrt(1 + eps), so it neither rescales nor adds data statistics. The model
    given is not touched (a copy is linearised)."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *input_shape), dtype=torch.float64)
    net(ones).sum().backward()
    with torch.no_grad():
        terms = [(m.weight * m.weight.grad).abs().sum() for m in net.modules()
                 if isinstance(m, _WEIGHTED) and m.weight.grad is not None]
    return float(torch.stack(terms).sum()) if terms else 0.0


class _CodeKernel:
    """Forward hooks on every ReLU that add each layer's activation-code kernel to `self.kernel`.

    Hooks read each ReLU's output: with nn.ReLU(inplace=True) that is the rectified input tensor
    itself, and relu(x) > 0 exactly where x > 0, so the code is the same as from the input. For
    codes c ∈ {0, 1} over F units, c·cᵀ + (1 − c)·(1 − c)ᵀ = F − s_i − s_j + 2·c·cᵀ (s = row sums):
    one matmul instead of two, exact in float32 while F < 2²⁴ (integers), summed in float64."""

    def __init__(self, net: nn.Module, n: int) -> None:
        self.kernel = torch.zeros((n, n), dtype=torch.float64)
        self.handles = [m.register_forward_hook(self._hook) for m in net.modules()
                        if isinstance(m, nn.ReLU)]

    def _hook(self, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        with torch.no_grad():
            codes = output.detach().reshape(output.shape[0], -1) > 0
            units = codes.shape[1]
            codes = codes.to(torch.float32 if units < 2**24 else torch.float64)
            agree = 2.0 * (codes @ codes.T).double()
            active = codes.sum(dim=1).double()
            self.kernel += agree - active[:, None] - active[None, :] + units

    def score(self) -> float:
        for handle in self.handles:
            handle.remove()
        _sign, logabsdet = torch.linalg.slogdet(self.kernel)
        return float(logabsdet)  # -inf when two images get identical codes everywhere (K singular)


def _grad_l2(net: nn.Module) -> float:
    squares = [p.grad.double().pow(2).sum() for p in net.parameters() if p.grad is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


def naswot(model: nn.Module, images: torch.Tensor) -> float:
    """NASWOT: log |det K|, where K[i, j] sums over every ReLU the number of units on which images
    i and j agree (both active or both inactive): K = c·cᵀ + (1 − c)·(1 − c)ᵀ for the binary codes
    c (one row per image). Designs whose ReLUs tell the images apart score higher. BatchNorm uses
    the batch's statistics (train mode, as in the paper's code), dropout is off."""
    net = _batch_stats_mode(copy.deepcopy(model))
    x = _as_input(images)
    codes = _CodeKernel(net, x.shape[0])
    try:
        with torch.no_grad():
            net(x)
    finally:
        value = codes.score()
    return value


def grad_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The L2 norm, over all parameters together, of the gradient of the cross-entropy loss on the
    batch at initialisation (BatchNorm with batch statistics, dropout off)."""
    net = _batch_stats_mode(copy.deepcopy(model))
    net.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(_as_input(images)), labels.long()).backward()
    return _grad_l2(net)


def scores(config: ArchConfig, images: torch.Tensor, labels: torch.Tensor,
           seed: int = 0) -> dict[str, float]:
    """All three proxies for `config`, built with `torch.manual_seed(seed)` (the global RNG is put
    back afterwards), plus "proxy_ms": the wall time of building and scoring, in milliseconds."""
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config)
    shape = (config.in_channels, config.input_size, config.input_size)
    result = {"synflow": synflow(model, shape)}
    # naswot and grad_norm both run the model in the same mode on the same batch: one forward
    # (with the ReLU hooks) serves both, giving the same values as the two functions apart
    net = _batch_stats_mode(model)
    x = _as_input(images)
    codes = _CodeKernel(net, x.shape[0])
    try:
        loss = nn.functional.cross_entropy(net(x), labels.long())
    finally:
        result["naswot"] = codes.score()
    loss.backward()
    result["grad_norm"] = _grad_l2(net)
    result["proxy_ms"] = (time.perf_counter() - start) * 1000.0
    return result


PROXY_IMAGES = 64  # the batch every trial's zero-cost proxies are measured on
# drawn from this stratified share of the search-training images, whatever a study's fidelity,
# so that proxies of studies at other fidelities and of the calibration are measured alike
PROXY_FRACTION = 0.1


def proxy_batch(data: Cifar10, seed: int, val_images: int, size: int = PROXY_IMAGES
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """`size` search-training images (of the PROXY_FRACTION split outside a `val_images` hold-out),
    drawn with `seed` and normalised as training sees them, with their labels: the one batch on
    which every design's proxies are measured."""
    splits = make_splits(data, "val", fraction=PROXY_FRACTION, seed=seed, val_images=val_images)
    picked = np.sort(np.random.default_rng(seed).choice(
        len(splits.train_labels), size=min(size, len(splits.train_labels)), replace=False))
    mean, std = (torch.tensor(values).view(1, 3, 1, 1) for values in splits.stats)
    # contiguous NCHW: the permuted view would be channels_last, whose backward pass oneDNN
    # stalls in for minutes on some designs on the project's CPU (see nas.training.runtime.Runtime.pick)
    images = torch.from_numpy(splits.train_images[picked]).permute(0, 3, 1, 2).contiguous()
    images = images.float() / 255.0
    return (images - mean) / std, torch.from_numpy(splits.train_labels[picked].astype(np.int64))


def short_float(value: float) -> float:
    """Five significant digits: enough to rank designs, short in the trial's attributes."""
    return float(f"{value:.5g}")


def proxy_attrs(config: ArchConfig, batch: tuple[torch.Tensor, torch.Tensor], seed: int
                ) -> dict[str, float]:
    """The design's zero-cost proxies as trial attributes (`PROXY_ATTRS`): proxy_synflow,
    proxy_naswot, proxy_grad_norm, and proxy_ms (the time of all three, building the model included)."""
    values = scores(config, *batch, seed=seed)
    attrs = {f"proxy_{name}": short_float(v) for name, v in values.items() if name != "proxy_ms"}
    return attrs | {"proxy_ms": round(values["proxy_ms"])}
