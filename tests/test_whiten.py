"""`--whiten-init`: the first conv starts as the patch-whitening filters of the training images
(airbench). Synthetic data only."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from torch import nn

import nas
from nas.cli.main import main
from nas.errors import NasError
from nas.training.batches import make_batches
from nas.training.loop import train
from nas.training.recipe import Recipe
from nas.training.whiten import first_conv, patch_covariance, whiten_first_conv
from tests.conftest import REFERENCE
from tests.test_train import CPU, small_model, synthetic_splits


def correlated_batches(n: int = 64, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Images whose neighbouring pixels and channels are strongly correlated, as real ones are."""
    g = torch.Generator().manual_seed(seed)
    smooth = nn.functional.avg_pool2d(torch.randn(n, 3, 36, 36, generator=g), 5, stride=1)
    images = smooth + 0.3 * smooth.mean(1, keepdim=True) + 0.05 * torch.randn(n, 3, 32, 32, generator=g)
    return [(images[i:i + 16], torch.zeros(16)) for i in range(0, n, 16)]


def test_the_filters_whiten_the_patches() -> None:
    """The first conv's outputs over the patches are uncorrelated with unit variance (the top
    directions), and the second half are the negatives of the first."""
    model = small_model()
    batches = correlated_batches()
    conv = first_conv(model)
    pairs = whiten_first_conv(model, batches, eps=1e-6)
    assert pairs == conv.out_channels // 2  # the reference's C1 (16 wide) has fewer than 27 pairs
    w = conv.weight.flatten(1).double()
    assert torch.equal(conv.weight[pairs:2 * pairs], -conv.weight[:pairs])
    out_cov = w[:pairs] @ patch_covariance(conv, batches) @ w[:pairs].T
    assert torch.allclose(out_cov, torch.eye(pairs, dtype=torch.float64), atol=1e-3)


def test_patch_covariance_follows_the_kernel_and_dilation() -> None:
    """The moment of the very patches the conv multiplies: for each position, the conv's output
    without bias equals the filter times the patch (so w Σ wᵀ is the output's second moment)."""
    conv = nn.Conv2d(3, 4, 3, dilation=2, bias=False)
    batches = correlated_batches(32)
    with torch.no_grad():
        out = torch.cat([conv(b) for b, _ in batches])  # N × 4 × 28 × 28, no padding
    w = conv.weight.flatten(1).double()
    measured = torch.einsum("nchw,ndhw->cd", out.double(), out.double()) / (out.numel() / 4)
    assert torch.allclose(w @ patch_covariance(conv, batches) @ w.T, measured, rtol=1e-6)


def test_filters_beyond_the_patch_dimension_keep_their_init() -> None:
    """C1 64 wide: 27 directions (3×3×3 patches) as 54 filters; the last 10 stay as initialised."""
    config = nas.load_config(REFERENCE)
    wide = replace(config, blocks=(replace(config.blocks[0], channels=64), *config.blocks[1:]))
    torch.manual_seed(0)
    model = nas.build_model(wide)
    before = first_conv(model).weight.clone()
    assert whiten_first_conv(model, correlated_batches()) == 27
    after = first_conv(model).weight
    assert torch.equal(after[54:], before[54:]) and not torch.equal(after[:54], before[:54])


def test_a_separable_first_conv_is_refused_with_the_remedy() -> None:
    config = nas.load_config(REFERENCE)
    c1 = config.blocks[0]
    c1 = replace(c1, convs=(replace(c1.convs[0], kind="separable"), *c1.convs[1:]))
    model = nas.build_model(replace(config, blocks=(c1, *config.blocks[1:])))
    with pytest.raises(NasError, match="c1 conv 1 is separable; make it standard or leave --whiten-init off"):
        whiten_first_conv(model, correlated_batches())


def test_the_loop_whitens_a_fresh_run_only(monkeypatch) -> None:
    """A fresh run is whitened before its first step; a resumed one reads its weights from the
    checkpoint (tests/test_recipe_knobs.py resumes a whitened run to identical weights)."""
    import nas.training.loop

    calls = []
    monkeypatch.setattr(nas.training.loop, "whiten_first_conv", lambda model, batches: calls.append(model))
    recipe = Recipe(epochs=1, batch_size=8, whiten_init=True)
    model = small_model()
    train(model, make_batches(synthetic_splits(64), 8, recipe.augment, CPU), recipe, CPU)
    assert calls == [model]


def test_the_flag_reaches_recipe_json(tmp_path, tiny_data_dir) -> None:
    out = tmp_path / "run"
    assert main(["train", "reference", "--out", str(out), "--epochs", "1", "--data-fraction", "0.1",
                 "--batch-size", "10", "--whiten-init", "--preset", "none", "--workers", "0",
                 "--precision", "fp32", "--data-dir", str(tiny_data_dir)]) == 0
    assert json.loads((out / "recipe.json").read_text())["whiten_init"] is True
