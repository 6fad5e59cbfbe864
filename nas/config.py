"""The architecture config: a frozen, declarative description of one C1C2C3C4O network.

A config round-trips through TOML and JSON (`load_config` / `save_config`); `nas.model.build_model`
turns it into a module. Every 3×3 conv is described by a `ConvSpec`, every block by a `BlockSpec`.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w

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
        """A plain dict (every field explicit) that `config_from_dict` turns back into `self`."""
        return dataclasses.asdict(self)


# --- parsing: a plain dict (from TOML or JSON) into the frozen dataclasses, with clear errors ---

_POSITIVE = {"channels", "dilation", "stride", "in_channels", "num_classes", "input_size"}


def _parse_value(hint: Any, value: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return parse_dataclass(hint, value, key, source)
    if origin is tuple:
        if not isinstance(value, list | tuple) or not value:
            raise ConfigError(source, key, f"expected a non-empty list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_parse_value(item, v, f"{key}[{i}]", source) for i, v in enumerate(value))
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
        if name == "padding" and value is not None and value < 0:
            raise ConfigError(source, prefix + name, f"must be >= 0, got {value}")
        if name == "dropout" and isinstance(value, float) and not 0.0 <= value < 1.0:
            raise ConfigError(source, prefix + name, f"must be in [0, 1), got {value}")
        kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> ArchConfig:
    """Validate a plain dict and build the config; raises ConfigError naming the key at fault."""
    from nas.geometry import trace  # geometry reads configs; import here to keep the flow one-way

    config = parse_dataclass(ArchConfig, data, "", source)
    trace(config, source)  # shapes that cannot work (maps below 1×1, mismatched shortcuts) fail here
    return config


def load_config(path: str | Path) -> ArchConfig:
    """Read a config from a .toml or .json file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "<file>", "no such file")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ConfigError(str(path), "<file>", "expected a .toml or .json file")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(str(path), "<file>", f"not valid {path.suffix[1:].upper()}: {err}") from None
    return config_from_dict(data, str(path))


def dumps_config(config: ArchConfig, fmt: Literal["toml", "json"]) -> str:
    """The config as TOML or JSON text."""
    data = config.to_dict()
    return tomli_w.dumps(data) if fmt == "toml" else json.dumps(data, indent=2) + "\n"


def save_config(config: ArchConfig, path: str | Path) -> Path:
    """Write a config to .toml or .json (by suffix)."""
    path = Path(path)
    fmt = "json" if path.suffix == ".json" else "toml"
    path.write_text(dumps_config(config, fmt))
    return path
