"""The config round-trips, the builder builds exactly the reference, names are telling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nas
from nas.design.files import dumps_config
from tests.conftest import REFERENCE


def test_reference_has_exactly_197472_parameters_and_maps_32_16_8_4_4() -> None:
    config = nas.load_config(REFERENCE)
    model = nas.build_model(config)
    assert sum(p.numel() for p in model.parameters()) == 197_472
    sizes = []
    for name in ("c1", "c2", "c3", "c4"):
        getattr(model, name).register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
    logits = model.eval()(torch.randn(2, 3, 32, 32))
    assert sizes == [16, 8, 4, 4]
    assert logits.shape == (2, 10)


def test_submodules_have_telling_names() -> None:
    model = nas.build_model(nas.load_config(REFERENCE))
    names = dict(model.named_modules())
    assert isinstance(names["c1.conv3.conv"], nn.Conv2d)
    assert names["c1.conv3.conv"].dilation == (2, 2) and names["c1.conv3.conv"].stride == (2, 2)
    assert names["c2.conv2.depthwise"].groups == 32
    assert isinstance(names["c2.shortcut.conv"], nn.Conv2d)
    assert isinstance(names["output.pool"], nn.AdaptiveAvgPool2d)
    assert list(names["c1.conv1"]._modules) == ["conv", "relu", "bn"]  # reference order


def test_separable_bn_relu_fc_variant(reference_dict) -> None:
    reference_dict["order"] = "bn_relu"
    reference_dict["blocks"][1]["convs"][1]["kind"] = "separable"
    reference_dict["output"] = {"head": "fc", "bias": True}
    reference_dict["blocks"][0]["dropout"] = 0.1
    model = nas.build_model(nas.config_from_dict(reference_dict))
    names = dict(model.named_modules())
    assert list(names["c2.conv2"]._modules) == ["depthwise", "pointwise", "bn", "relu"]
    assert names["c2.conv2.pointwise"].kernel_size == (1, 1)
    assert isinstance(names["output.fc"], nn.Linear)
    # separable adds a 32→32 pointwise (1,024) to the depthwise; fc adds 10 biases
    assert sum(p.numel() for p in model.parameters()) == 197_472 + 1_024 + 10


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_config_round_trips(tmp_path, reference_dict, fmt) -> None:
    reference_dict["blocks"][2]["shortcut"] = "conv1x1"
    reference_dict["blocks"][3]["dropout"] = 0.05
    config = nas.config_from_dict(reference_dict)
    path = nas.save_config(config, tmp_path / f"design.{fmt}")
    again = nas.load_config(path)
    assert again == config
    assert dumps_config(again, fmt) == path.read_text()


def test_identity_shortcut_and_padding_default(reference_dict) -> None:
    block = reference_dict["blocks"][3]
    block["convs"][0] = {"kind": "standard", "dilation": 3}  # padding defaults to the dilation
    reference_dict["blocks"][3] = {"channels": 32, "convs": block["convs"], "shortcut": "identity"}
    config = nas.config_from_dict(reference_dict)
    assert config.blocks[3].convs[0].padding == 3
    model = nas.build_model(config)
    assert isinstance(model.c4.shortcut, nn.Identity)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("dilation,groups,size", [(2, 1, 16), (3, 1, 12), (2, 8, 8), (2, 1, 7)])
def test_atrous_conv_equals_dilated_conv(dilation, groups, size) -> None:
    from nas.design.model import AtrousConv2d

    torch.manual_seed(0)
    fast = AtrousConv2d(8, 8, 3, padding=dilation, dilation=dilation, groups=groups, bias=False)
    plain = nn.Conv2d(8, 8, 3, padding=dilation, dilation=dilation, groups=groups, bias=False)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(3, 8, size, size, requires_grad=True)
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)
    (g_fast,) = torch.autograd.grad(fast(x).square().sum(), x)
    (g_plain,) = torch.autograd.grad(plain(x).square().sum(), x)
    torch.testing.assert_close(g_fast, g_plain, rtol=1e-4, atol=1e-4)


def test_stride1_dilated_convs_use_the_atrous_path(reference_dict) -> None:
    from nas.design.model import AtrousConv2d

    reference_dict["blocks"][0]["convs"][1] = {"kind": "standard", "dilation": 2}
    reference_dict["blocks"][2]["convs"][1] = {"kind": "separable", "dilation": 2}
    model = nas.build_model(nas.config_from_dict(reference_dict))
    assert isinstance(model.c1.conv2.conv, AtrousConv2d)
    assert isinstance(model.c3.conv2.depthwise, AtrousConv2d)
    assert type(model.c1.conv3.conv) is nn.Conv2d  # stride-2 dilated: PyTorch's own is fast
    assert nas.check(nas.config_from_dict(reference_dict)).params == sum(
        p.numel() for p in model.parameters())
