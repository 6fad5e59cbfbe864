"""The analytic receptive field equals the one measured from input gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nas


def empirical_receptive_field(config: nas.ArchConfig, size: int = 288) -> int:
    """Width of the input region whose gradient w.r.t. one centre output is non-zero.

    All weights positive and inputs positive keep every ReLU open, and float64 keeps the tiny
    gradients at the field's edge from underflowing, so no path can cancel or vanish.
    """
    model = nas.build_model(config).double().eval()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0 / m.weight[0].numel())
    features = model[:-1]  # everything before global average pooling
    image = torch.ones(1, config.in_channels, size, size, dtype=torch.float64, requires_grad=True)
    out = features(image)
    out[0, :, out.shape[-2] // 2, out.shape[-1] // 2].sum().backward()
    rows = image.grad[0].abs().sum(dim=(0, 2)).nonzero()
    cols = image.grad[0].abs().sum(dim=(0, 1)).nonzero()
    assert rows.min() > 0 and rows.max() < size - 1, "input too small: the field hit the border"
    assert (rows.max() - rows.min()) == (cols.max() - cols.min())
    return int(rows.max() - rows.min() + 1)


def variant(base: dict, edit) -> nas.ArchConfig:
    edit(base)
    return nas.config_from_dict(base)


def _no_shortcuts(d):
    for block in d["blocks"]:
        block["shortcut"] = "none"


def _separable_dilated_3(d):
    d["blocks"][1]["convs"][1] = {"kind": "separable", "dilation": 3}
    d["blocks"][3]["convs"][2] = {"kind": "standard", "dilation": 2}


def _stride_downsampling(d):
    for block in d["blocks"][:3]:
        block["convs"][2] = {"kind": "standard", "stride": 2}
        block["shortcut"] = "conv1x1"


def _dilated_no_padding(d):  # a dilated conv without padding shrinks the map by 4
    d["blocks"][2]["convs"][2] = {"kind": "standard", "dilation": 2, "padding": 0}
    d["blocks"][2]["shortcut"] = "none"
    d["order"] = "bn_relu"


@pytest.mark.parametrize("edit", [lambda d: None, _no_shortcuts, _separable_dilated_3,
                                  _stride_downsampling, _dilated_no_padding])
def test_analytic_matches_empirical(reference_dict, edit) -> None:
    config = variant(reference_dict, edit)
    assert nas.receptive_field(config) == empirical_receptive_field(config)


def test_reference_receptive_field_is_105(reference_dict) -> None:
    config = nas.config_from_dict(reference_dict)
    layers = {layer.name: layer.receptive_field for layer in nas.trace(config)}
    assert layers["c1.conv3"] == 9 and layers["c3.conv3"] == 57
    assert nas.receptive_field(config) == 105

