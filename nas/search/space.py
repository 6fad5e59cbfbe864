"""The search space: which C1C2C3C4O designs a study may sample.

A space file (TOML) lists, for each knob, its choices; `suggest` turns an Optuna trial into an
`ArchConfig`, so a user changes the space by editing the file, never the code. The training recipe
is not searched: it is fixed for the whole study (see docs/search.md, "What a trial's learning
rate means"). Knobs, per block b = 1..4:

    cb_channels    width of block b                   (channels[b-1])
    cb_conv1       kind of conv 1                     (conv1_kind[b-1])
    cb_conv2       kind of conv 2 (width-preserving)  (conv2_kind)
    cb_dilation    dilation of conv 2                 (dilation)
    cb_downsample  conv 3 of C1..C3: stride-2, dilated (d=2) stride-2, or none: a stride-1
                   conv, so that the next block keeps this one's resolution; or early_stride2:
                   conv 1 strides instead, so convs 2 and 3 already work at half the resolution
                   (downsample[b-1])
    c4_conv3       kind of C4's conv 3                (conv1_kind[3])
    cb_shortcut    residual shortcut                  (shortcut)
and for the whole network: dropout, head, order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution

from nas.design.config import ArchConfig, ConvSpec, parse_dataclass
from nas.design.files import REFERENCE, config_from_dict, load_config, read_table
from nas.errors import ConfigError, NasError

DOWNSAMPLE = {"stride2": {"kind": "standard", "stride": 2},  # conv 3 of a block, by choice
              "dilated_stride2": {"kind": "standard", "stride": 2, "dilation": 2, "padding": 2},
              "none": {"kind": "standard"},
              "early_stride2": {"kind": "standard"}}  # conv 1 strides: fewer activations, faster
EARLY = "early_stride2"


@dataclass(frozen=True)
class SearchSpace:
    """Choices for every knob (see the module docstring)."""

    name: str
    channels: tuple[tuple[int, ...], ...]  # one tuple of widths per block
    conv1_kind: tuple[tuple[str, ...], ...]  # one tuple of choices per block C1..C4
    conv2_kind: tuple[str, ...]
    dilation: tuple[int, ...]
    downsample: tuple[tuple[str, ...], ...]  # one tuple of choices per block C1..C3
    shortcut: tuple[str, ...]
    dropout: tuple[float, ...]
    head: tuple[str, ...]
    order: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data that `space_from_dict` turns back into this space (stored on a study)."""
        return asdict(self)

    def digest(self) -> str:
        """A short hash of the space's content: two studies with the same digest sample alike."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def design(self, params: dict[str, Any], number: int = 0) -> ArchConfig:
        """The design a trial with these parameters trained (the inverse of `params_of`): a
        baseline's when they set a constant knob."""
        baseline = any(key in params for key in self.constants())
        return self.suggest(optuna.trial.FixedTrial(params, number), baseline=baseline)

    def suggest(self, trial: optuna.Trial, baseline: bool = False) -> ArchConfig:
        """One design from `trial`. A knob with one choice is a constant, not a parameter, so a
        sampled trial does not store it; a `baseline` trial (enqueued with `params_of`'s
        parameters) stores it, and may set it to any value a space file allows (`_ALLOWED`):
        so the twin stays a study's baseline where the space has narrowed a knob it needs (in
        the fast space, C1's downsampling). Optuna refuses one parameter with two sets of
        choices in a study, hence the constants."""
        def pick(name: str, choices: tuple[Any, ...]) -> Any:
            if len(choices) > 1:
                return trial.suggest_categorical(name, choices)
            if baseline:
                return trial.suggest_categorical(name, _outside(name, choices))
            return choices[0]

        blocks = []
        for b, widths in enumerate(self.channels, start=1):
            convs = [{"kind": pick(f"c{b}_conv1", self.conv1_kind[b - 1])},
                     {"kind": pick(f"c{b}_conv2", self.conv2_kind),
                      "dilation": pick(f"c{b}_dilation", self.dilation)}]
            if b < len(self.channels):
                choice = pick(f"c{b}_downsample", self.downsample[b - 1])
                convs.append(DOWNSAMPLE[choice])
                if choice == EARLY:
                    convs[0]["stride"] = 2
            else:
                convs.append({"kind": pick(f"c{b}_conv3", self.conv1_kind[b - 1])})
            blocks.append({"channels": pick(f"c{b}_channels", widths), "convs": convs,
                           "shortcut": pick(f"c{b}_shortcut", self.shortcut)})
        dropout = pick("dropout", self.dropout)
        for block in blocks:
            block["dropout"] = dropout
        data = {"name": f"{self.name}-trial-{trial.number}", "blocks": blocks,
                "order": pick("order", self.order),
                "output": {"head": pick("head", self.head), "bias": False}}
        return config_from_dict(data, f"space {self.name}, trial {trial.number}")

    def params_of(self, config: ArchConfig) -> dict[str, Any]:
        """The parameters of a baseline trial that make `suggest` return `config` (to enqueue a
        known design; a sampled trial's lack the constants); ConfigError when the design lies
        outside this space but for its constants."""
        params: dict[str, Any] = {}
        for b, block in enumerate(config.blocks, start=1):
            conv1, conv2, conv3 = block.convs
            params |= {f"c{b}_channels": block.channels, f"c{b}_conv1": conv1.kind,
                       f"c{b}_conv2": conv2.kind, f"c{b}_dilation": conv2.dilation,
                       f"c{b}_shortcut": block.shortcut}
            if b < len(config.blocks):
                params[f"c{b}_downsample"] = next(
                    (name for name, spec in DOWNSAMPLE.items()
                     if ConvSpec(**spec) == conv3 and (conv1.stride == 2) == (name == EARLY)), conv3)
            else:
                params[f"c{b}_conv3"] = conv3.kind
        params |= {"dropout": config.blocks[0].dropout, "order": config.order,
                   "head": config.output.head}
        constants = self.constants()
        for key, dist in self.distributions().items():
            value = params[key]
            if value not in (_outside(key, dist.choices) if key in constants else dist.choices):
                raise ConfigError(f"space {self.name}", key, f"{value!r} is not in the space")
        return params

    def constants(self) -> set[str]:
        """The knobs with one choice: not sampled (see `suggest`)."""
        return {key for key, dist in self.distributions().items() if len(dist.choices) == 1}

    def cheapest(self) -> ArchConfig:
        """The design with the fewest parameters the space allows: each knob's cheapest choice."""
        cost = {"depthwise": 0, "separable": 1, "standard": 2,
                "none": 0, "identity": 1, "conv1x1": 2, "conv3x3": 3}
        params = {}
        for key, dist in self.distributions().items():
            if key.endswith("_channels"):
                params[key] = min(dist.choices)
            else:
                params[key] = min(dist.choices, key=lambda c: cost.get(c, 0))
        return self.suggest(optuna.trial.FixedTrial(params))

    def distributions(self) -> dict[str, CategoricalDistribution]:
        """Every knob's Optuna distribution, by parameter name."""
        dists: dict[str, CategoricalDistribution] = {}
        cat = CategoricalDistribution
        for b, widths in enumerate(self.channels, start=1):
            dists |= {f"c{b}_channels": cat(widths), f"c{b}_conv1": cat(self.conv1_kind[b - 1]),
                      f"c{b}_conv2": cat(self.conv2_kind), f"c{b}_dilation": cat(self.dilation),
                      f"c{b}_shortcut": cat(self.shortcut)}
            if b < len(self.channels):
                dists[f"c{b}_downsample"] = cat(self.downsample[b - 1])
            else:
                dists[f"c{b}_conv3"] = cat(self.conv1_kind[b - 1])
        dists |= {"dropout": cat(self.dropout), "order": cat(self.order), "head": cat(self.head)}
        return dists


def with_widths(config: ArchConfig, widths: Sequence[int]) -> ArchConfig:
    """`config` with block b's width set to `widths[b]`, everything else as it was (a design
    filled to the parameter limit is its sampled design with other widths)."""
    blocks = tuple(replace(block, channels=int(w)) for block, w in zip(config.blocks, widths, strict=True))
    return replace(config, blocks=blocks)


_ALLOWED = {"conv1_kind": {"standard", "separable"},  # conv 1 and C4's conv 3 may change the width
            "conv2_kind": {"standard", "separable", "depthwise"},
            "downsample": set(DOWNSAMPLE), "shortcut": {"none", "identity", "conv1x1", "conv3x3"},
            "head": {"conv1x1", "fc"}, "order": {"relu_bn", "bn_relu"}}


_KIND = {"conv1": "conv1_kind", "conv3": "conv1_kind", "conv2": "conv2_kind", "downsample": "downsample",
         "shortcut": "shortcut", "head": "head", "order": "order"}  # a knob's suffix: its _ALLOWED key


def _outside(name: str, choices: tuple[Any, ...]) -> tuple[Any, ...]:
    """What a baseline may set the constant knob `name` to: any choice a space file allows
    (widths, dilations and dropouts: the space's own)."""
    kind = _KIND.get(name.split("_", 1)[-1])
    return tuple(sorted(_ALLOWED[kind])) if kind else choices


PER_BLOCK = {"conv1_kind": 4, "downsample": 3}  # knobs with a list of choices per block C1..Cn
MAX_WIDTH = 1024  # wider blocks cannot meet any limit this tool is for, and would take GBs to build


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a space file; ConfigError names the file, the key and the problem."""
    return space_from_dict(read_table(path, "search-space"), str(path))


def space_from_dict(data: dict[str, Any], source: str) -> SearchSpace:
    """Validate a plain dict (a space file's content, or a study's stored copy) into a space."""
    for key, n in PER_BLOCK.items():  # one list for all blocks (the form of older files)
        if all(isinstance(choice, str) for choice in data.get(key, [[]])):
            data = data | {key: [data[key]] * n}
    space = parse_dataclass(SearchSpace, data, "", source)
    if len(space.channels) != 4:
        raise ConfigError(source, "channels", f"needs one list of widths per block C1..C4, got {len(space.channels)}")
    for key, n in PER_BLOCK.items():
        if len(getattr(space, key)) != n or not all(getattr(space, key)):
            raise ConfigError(source, key, f"needs one list of choices for all blocks, or one per block C1..C{n}")
    if any(not 1 <= w <= MAX_WIDTH for widths in space.channels for w in widths):
        raise ConfigError(source, "channels", f"widths must be from 1 to {MAX_WIDTH}")
    for key, allowed in _ALLOWED.items():
        choices = getattr(space, key)
        if bad := set(sum(choices, ()) if key in PER_BLOCK else choices) - allowed:
            raise ConfigError(source, key, f"unknown choice(s) {sorted(bad)}; allowed: {sorted(allowed)}")
    if any(d < 1 for d in space.dilation) or any(not 0 <= p < 1 for p in space.dropout):
        raise ConfigError(source, "dilation/dropout", "dilations must be >= 1 and dropouts in [0, 1)")
    return space


TWIN = "reference, C2 conv2 separable"  # the twin's label: a baseline trial's `baseline` attribute


def baseline_params(space: SearchSpace) -> list[tuple[str, dict[str, Any]]]:
    """The reference design as trial 0 and, since the strict depthwise-separable rule fails it
    (its C2 depthwise conv has no pointwise), its separable twin as trial 1: a feasible baseline.
    None when the space does not contain the reference's architecture."""
    try:
        params = space.params_of(load_config(REFERENCE))
    except NasError:
        return []
    twin = dict(params, c2_conv2="separable")
    return [("reference", params), (TWIN, twin)]
