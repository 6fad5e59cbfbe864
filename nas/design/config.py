"""The architecture config: a frozen, declarative description of one C1C2C3C4O network.

Every 3×3 conv is described by a `ConvSpec`, every block by a `BlockSpec`; `parse_dataclass` turns
plain dicts (from TOML or JSON) into these frozen dataclasses with errors that name the key.
Reading and writing files is `nas.design.files`; `nas.design.model.build_model` turns a config into a module.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from nas.errors import ConfigError

ConvKind = Literal["standard", "depthwise", "separable"]
Shortcut = Literal["none", "identity", "conv1x1", "conv3x3"]
NormOrder = Literal["relu_bn", "bn_relu"]
Head = Literal["conv1x1", "fc"]


@dataclass(frozen=True)
class ConvSpec:
    """One 3×3 conv of a block.

    kind: "standard"; "depthwise" (groups = channels, no pointwise); or "separable"
    (depthwise 3×3 then pointwise 1×1). padding defaults to `dilation`, which keeps the map size.
    """

    kind: ConvKind = "standard"
    dilation: int = 1
    stride: int = 1
    padding: int | None = None

    def __post_init__(self) -> None:
        if self.padding is None:
            object.__setattr__(self, "padding", self.dilation)


@dataclass(frozen=True)
class BlockSpec:
    """One block C1..C4: its convs, output width, residual shortcut and dropout after it."""

    channels: int
    convs: tuple[ConvSpec, ...]
    shortcut: Shortcut = "none"
    dropout: float = 0.0


@dataclass(frozen=True)
class OutputSpec:
    """Output block: global average pooling, then a 1×1 conv or an FC layer to the classes."""

    head: Head = "conv1x1"
    bias: bool = False


@dataclass(frozen=True)
class ArchConfig:
    """A whole network: the blocks in order, then the output block."""

    blocks: tuple[BlockSpec, ...]
    output: OutputSpec = field(default_factory=OutputSpec)
    name: str = "unnamed"
    order: NormOrder = "relu_bn"  # conv → ReLU → BN (as the reference), or conv → BN → ReLU
    in_channels: int = 3
    num_classes: int = 10
    input_size: int = 32

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (every field explicit, tuples as lists) that `config_from_dict` turns
        back into `self`."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


# --- parsing: a plain dict (from TOML or JSON) into the frozen dataclasses, with clear errors ---

_POSITIVE = {"channels", "dilation", "stride", "in_channels", "num_classes", "input_size"}
# The verdict runs one image of this size through the model, and no parameter count bounds
# it: a side of 100,000 would ask for 120 GB. CIFAR-10's images are 32×32.
MAX_INPUT_SIZE = 256


def _parse_value(hint: Any, value: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return parse_dataclass(hint, value, key, source)
    if origin is tuple:
        if not isinstance(value, list | tuple) or not value:
            raise ConfigError(source, key, f"expected a non-empty list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_parse_value(item, v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(source, key, f"expected a table, got {type(value).__name__}")
        return value
    if hint is typing.Any:
        return value
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(source, key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):  # `int | None`
        if value is None:
            return None
        return _parse_value(typing.get_args(hint)[0], value, key, source)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint in (int, float) and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(source, key, f"expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def parse_dataclass(cls: type, data: Any, key: str, source: str) -> Any:
    """Build `cls` from a plain dict: unknown, missing and mistyped keys raise ConfigError."""
    prefix = f"{key}." if key else ""
    if not isinstance(data, dict):
        raise ConfigError(source, key or "<top>", f"expected a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(source, prefix + unknown[0], f"unknown key (known: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(source, prefix + name, "missing required key")
            continue
        value = _parse_value(hints[name], data[name], prefix + name, source)
        if name in _POSITIVE and isinstance(value, int) and value < 1:
            raise ConfigError(source, prefix + name, f"must be a positive integer, got {value}")
        if name == "input_size" and value > MAX_INPUT_SIZE:
            raise ConfigError(source, prefix + name, f"must be at most {MAX_INPUT_SIZE} "
                              f"(CIFAR-10's images are 32×32), got {value}")
        if name == "name" and (value.strip() in ("", ".", "..") or "/" in value or "\\" in value):
            # it names folders: studies/<design name> for a run, the study for a space
            raise ConfigError(source, prefix + name, f"must be a plain name for a folder, got {value!r}")
        if name == "padding" and value is not None and value < 0:
            raise ConfigError(source, prefix + name, f"must be >= 0, got {value}")
        if name == "dropout" and isinstance(value, float) and not 0.0 <= value < 1.0:
            raise ConfigError(source, prefix + name, f"must be in [0, 1), got {value}")
        kwargs[name] = value
    return cls(**kwargs)


def dict_diff(there: dict[str, Any], here: dict[str, Any], prefix: str = "") -> str:
    """"lr 0.2 there, 0.1 here; ..." for every key whose value differs between two plain dicts."""
    parts = []
    for key in sorted(set(there) | set(here)):
        a, b = there.get(key), here.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            parts += filter(None, [dict_diff(a, b, f"{prefix}{key}.")])
        elif a != b:
            parts.append(f"{prefix}{key} {a} there, {b} here")
    return "; ".join(parts)
