"""The builder: one `ArchConfig` in, one `nn.Module` out, with telling submodule names.

    model.c1.conv3        a conv unit: conv (or depthwise + pointwise), ReLU and BatchNorm
    model.c2.shortcut     the block's residual projection (when it has one)
    model.output          global average pooling, then a 1×1 conv or FC to the classes

The model returns logits; the loss decides on (log-)softmax.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from nas.design.config import ArchConfig, BlockSpec, ConvSpec, NormOrder
from nas.design.geometry import KERNEL


class AtrousConv2d(nn.Conv2d):
    """A stride-1 dilated conv (padding = dilation) computed as an undilated conv on the d×d
    interleaved sub-grids of its input ("space to batch", as TensorFlow's atrous_conv2d does).
    Same weights, same output; on CPU, PyTorch's backward of a stride-1 dilated conv measured
    ~10× slower than that of the undilated conv on the sub-grids."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dilation[0]
        n, c, h, w = x.shape
        if h % d or w % d:  # the sub-grids must tile the map exactly
            return super().forward(x)
        grids = x.reshape(n, c, h // d, d, w // d, d).permute(0, 3, 5, 1, 2, 4)
        y = nn.functional.conv2d(grids.reshape(n * d * d, c, h // d, w // d), self.weight,
                                 self.bias, 1, 1, 1, self.groups)
        y = y.reshape(n, d, d, -1, h // d, w // d).permute(0, 3, 4, 1, 5, 2)
        return y.reshape(n, -1, h, w)


def conv3x3(in_ch: int, out_ch: int, spec: ConvSpec, groups: int = 1, kernel: int = KERNEL) -> nn.Conv2d:
    """nn.Conv2d, or its faster equivalent `AtrousConv2d` for stride-1 'same' dilated convs."""
    atrous = spec.dilation > 1 and spec.stride == 1 and spec.padding == spec.dilation and kernel == 3
    return (AtrousConv2d if atrous else nn.Conv2d)(
        in_ch, out_ch, kernel, stride=spec.stride, padding=spec.padding, dilation=spec.dilation,
        groups=groups, bias=False)


class ConvUnit(nn.Sequential):
    """conv → ReLU → BN (or conv → BN → ReLU). A separable conv is depthwise then pointwise."""

    def __init__(self, in_ch: int, out_ch: int, spec: ConvSpec, order: NormOrder,
                 kernel: int = KERNEL) -> None:
        if spec.kind == "standard":
            layers = [("conv", conv3x3(in_ch, out_ch, spec, kernel=kernel))]
        elif spec.kind == "depthwise":
            layers = [("depthwise", conv3x3(in_ch, out_ch, spec, groups=in_ch, kernel=kernel))]
        else:
            layers = [("depthwise", conv3x3(in_ch, in_ch, spec, groups=in_ch, kernel=kernel)),
                      ("pointwise", nn.Conv2d(in_ch, out_ch, 1, bias=False))]
        norm = [("relu", nn.ReLU(inplace=True)), ("bn", nn.BatchNorm2d(out_ch))]
        super().__init__(OrderedDict(layers + (norm if order == "relu_bn" else norm[::-1])))


class Block(nn.Module):
    """Three (or more) conv units; output = convs(x) + shortcut(x), then dropout."""

    def __init__(self, in_ch: int, spec: BlockSpec, order: NormOrder) -> None:
        super().__init__()
        ch = in_ch
        for i, conv in enumerate(spec.convs, start=1):
            self.add_module(f"conv{i}", ConvUnit(ch, spec.channels, conv, order))
            ch = spec.channels
        self.n_convs = len(spec.convs)
        if spec.shortcut == "identity":
            self.shortcut: nn.Module | None = nn.Identity()
        elif spec.shortcut in ("conv1x1", "conv3x3"):
            kernel = 3 if spec.shortcut == "conv3x3" else 1
            stride = math.prod(conv.stride for conv in spec.convs)
            self.shortcut = ConvUnit(in_ch, spec.channels,
                                     ConvSpec(stride=stride, padding=kernel // 2), order, kernel)
        else:
            self.shortcut = None
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for i in range(1, self.n_convs + 1):
            y = getattr(self, f"conv{i}")(y)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.dropout(y)


def output_head(in_ch: int, config: ArchConfig) -> nn.Sequential:
    """Global average pooling, then a 1×1 conv or an FC layer to `num_classes` logits."""
    pool = ("pool", nn.AdaptiveAvgPool2d(1))
    if config.output.head == "conv1x1":
        head = [pool, ("conv", nn.Conv2d(in_ch, config.num_classes, 1, bias=config.output.bias)),
                ("flatten", nn.Flatten())]
    else:
        head = [pool, ("flatten", nn.Flatten()),
                ("fc", nn.Linear(in_ch, config.num_classes, bias=config.output.bias))]
    return nn.Sequential(OrderedDict(head))


def build_model(config: ArchConfig) -> nn.Sequential:
    """The network a config describes: blocks c1, c2, ... then `output`."""
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    ch = config.in_channels
    for i, block in enumerate(config.blocks, start=1):
        modules[f"c{i}"] = Block(ch, block, config.order)
        ch = block.channels
    modules["output"] = output_head(ch, config)
    return nn.Sequential(modules)
