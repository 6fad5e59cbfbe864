"""Shape and receptive-field arithmetic of a config, layer by layer, without building a model.

Receptive field recurrence (per spatial axis): a layer with kernel k, dilation d and stride s
grows the field by (d·(k-1))·j and multiplies the jump j (distance between neighbouring outputs,
in input pixels) by s. A block with a shortcut takes the larger field of its two paths.
Global average pooling is not counted: it would make every field the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.design.config import ArchConfig
from nas.errors import ConfigError

KERNEL = 3  # every conv of a block is 3×3, as the assignment asks


@dataclass(frozen=True)
class Layer:
    """One conv unit (or shortcut) after it runs: where it sits and what it sees."""

    name: str  # module name in the built model, e.g. "c2.conv3"
    kind: str
    in_channels: int
    out_channels: int
    size: int  # output map is size × size
    receptive_field: int
    jump: int


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output size of a convolution (PyTorch's formula)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def trace(config: ArchConfig, source: str = "<config>") -> list[Layer]:
    """Walk the config in order; every conv unit and shortcut becomes a `Layer`.

    Raises ConfigError when a map shrinks below 1×1, a depthwise conv would change the width,
    or a shortcut does not match its block's output.
    """
    layers: list[Layer] = []
    size, rf, jump, channels = config.input_size, 1, 1, config.in_channels
    for b, block in enumerate(config.blocks):
        block_in = (size, rf, jump, channels)
        for c, conv in enumerate(block.convs):
            key = f"blocks[{b}].convs[{c}]"
            if conv.kind == "depthwise" and channels != block.channels:
                raise ConfigError(
                    source, key, f"a depthwise conv keeps the width ({channels}), but the block "
                    f"has {block.channels} channels; use 'separable' or move it")
            in_channels, channels = channels, block.channels
            size = conv_out(size, KERNEL, conv.stride, conv.padding, conv.dilation)
            if size < 1:
                raise ConfigError(source, key, "the feature map shrinks below 1×1; "
                                  "use less stride/dilation or more padding")
            rf += conv.dilation * (KERNEL - 1) * jump
            jump *= conv.stride
            layers.append(Layer(f"c{b + 1}.conv{c + 1}", conv.kind, in_channels, channels,
                                size, rf, jump))
        if block.shortcut != "none":
            in_size, in_rf, in_jump, in_channels = block_in
            key = f"blocks[{b}].shortcut"
            stride = jump // in_jump
            kernel = 3 if block.shortcut == "conv3x3" else 1
            if block.shortcut == "identity" and (stride != 1 or in_channels != channels):
                raise ConfigError(source, key, "an identity shortcut needs the block to keep "
                                  "size and width; use conv1x1 or conv3x3")
            sc_size = conv_out(in_size, kernel, stride, kernel // 2, 1)
            if sc_size != size:
                raise ConfigError(source, key, f"the shortcut gives {sc_size}×{sc_size} maps but "
                                  f"the convs give {size}×{size}; change padding or drop it")
            sc_rf = in_rf + (kernel - 1) * in_jump
            layers.append(Layer(f"c{b + 1}.shortcut", block.shortcut, in_channels, channels,
                                size, sc_rf, jump))
            rf = max(rf, sc_rf)
    return layers


def receptive_field(config: ArchConfig) -> int:
    """Total receptive field of the network before global average pooling."""
    return max(layer.receptive_field for layer in trace(config))


def layer_params(layer: Layer) -> int:
    """Weights of one conv unit or shortcut, BatchNorm's scale and shift included (no conv bias)."""
    cin, cout = layer.in_channels, layer.out_channels
    weights = {"standard": KERNEL * KERNEL * cin * cout, "depthwise": KERNEL * KERNEL * cin,
               "separable": KERNEL * KERNEL * cin + cin * cout, "conv3x3": KERNEL * KERNEL * cin * cout,
               "conv1x1": cin * cout, "identity": 0}[layer.kind]
    return weights + (0 if layer.kind == "identity" else 2 * cout)


def activation_count(config: ArchConfig) -> int:
    """Output elements of every conv unit and shortcut for one image: what a forward pass holds."""
    return sum(layer.size * layer.size * layer.out_channels for layer in trace(config))


def param_count(config: ArchConfig) -> int:
    """The parameters of the built model, counted from the config alone (nothing is allocated)."""
    head_in = config.blocks[-1].channels
    head = head_in * config.num_classes + (config.num_classes if config.output.bias else 0)
    return sum(layer_params(layer) for layer in trace(config)) + head
