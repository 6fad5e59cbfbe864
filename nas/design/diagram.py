"""A design as a Mermaid flowchart (GitHub renders it in markdown): one box per block with its three
convs (kind, dilation, stride, width, output size) and the shortcut added around them, then the
output block.
Generated from the config through `nas.design.geometry.trace`, so it shows the sizes the model has."""

from __future__ import annotations

from nas.design.config import ArchConfig, ConvSpec
from nas.design.geometry import Layer, trace

KIND = {"standard": "conv 3×3", "separable": "depthwise-separable 3×3",
        "depthwise": "depthwise 3×3 (no pointwise)"}


def conv_label(conv: ConvSpec, layer: Layer) -> str:
    """e.g. "depthwise-separable 3×3, dilation 2, stride 2 → 64 × 16×16"."""
    parts = [KIND[conv.kind]]
    if conv.dilation > 1:
        parts.append(f"dilation {conv.dilation}")
    if conv.stride > 1:
        parts.append(f"stride {conv.stride}")
    return f"{', '.join(parts)} → {layer.out_channels} × {layer.size}×{layer.size}"


def mermaid(config: ArchConfig) -> str:
    """The flowchart's source, fenced for markdown."""
    layers = {layer.name: layer for layer in trace(config)}
    lines = ["```mermaid", "flowchart TB",
             f'  input["input {config.in_channels} × {config.input_size}×{config.input_size}"]']
    before = "input"
    for b, block in enumerate(config.blocks, start=1):
        lines.append(f'  subgraph C{b}["C{b}: {block.channels} channels'
                     + (f", dropout {block.dropout:g}" if block.dropout else "") + '"]')
        names = [f"c{b}_{c}" for c in range(1, len(block.convs) + 1)]
        for c, (name, conv) in enumerate(zip(names, block.convs, strict=True), start=1):
            lines.append(f'    {name}["{conv_label(conv, layers[f"c{b}.conv{c}"])}"]')
        if block.shortcut != "none":  # output = convs(x) + shortcut(x)
            names.append(f"c{b}_add")
            lines.append(f'    {names[-1]}(("+"))')
        lines.append("    " + " --> ".join(names))
        lines.append("  end")
        lines.append(f"  {before} --> {names[0]}")
        if block.shortcut != "none":
            lines.append(f"  {before} -. {block.shortcut} shortcut .-> {names[-1]}")
        before = names[-1]
    head = "1×1 conv" if config.output.head == "conv1x1" else "fully connected"
    lines += [f'  out["global average pooling, {head} → {config.num_classes} classes"]',
              f"  {before} --> out", "```"]
    return "\n".join(lines)
