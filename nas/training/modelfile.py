"""The model file: the self-contained `model.pt` a finished run ends with, and the `Classifier` it
loads as (predictions and ONNX export, which use it, are in `nas.inference`).

`model.pt` (written by `save_model`, read by `load_model` with `torch.load(weights_only=True)`) is
one dict of plain values and CPU tensors; it needs the `nas` package to rebuild the network, but no
other file of the run:

    {"format": "nas-model", "version": 1,
     "config": ArchConfig.to_dict(),           # the design, as `config_from_dict` reads it
     "state_dict": {name: tensor},             # on CPU, contiguous (no channels_last strides)
     "mean": [r, g, b], "std": [r, g, b],      # the training normalisation, in the 0..1 scale
     "classes": [name, ...]}                   # class names, in logit order

`Classifier` wraps the network with that normalisation, so it takes images as they come: uint8
N×3×H×W (0..255) or float in [0, 1]; it returns logits.

    classifier, classes = load_model("runs/reference")
    classifier(images).softmax(dim=1)    # images: uint8 N×3×32×32; probabilities in `classes` order
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.design.config import ArchConfig
from nas.design.files import config_from_dict
from nas.design.model import build_model
from nas.errors import NasError

MODEL_FILE = "model.pt"
FORMAT, VERSION = "nas-model", 1
_KEYS = ("config", "state_dict", "mean", "std", "classes")


class Classifier(nn.Module):
    """A network with its input normalisation: uint8 N×3×H×W (0..255) or float N×3×H×W in [0, 1]
    in, logits out."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float],
                 input_size: int = 32) -> None:
        super().__init__()
        self.model = model
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([float(s) for s in std]).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            x = images.to(self.mean.dtype) / 255.0
        else:
            x = images.to(self.mean.dtype)
        return self.model((x - self.mean) / self.std)


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain network inside a Classifier and/or a torch.compile wrapper."""
    if isinstance(model, Classifier):
        model = model.model
    return getattr(model, "_orig_mod", model)


def save_model(path: str | Path, config: ArchConfig, model: nn.Module,
               mean: Sequence[float], std: Sequence[float], classes: Sequence[str]) -> Path:
    """Write the self-contained `model.pt` (the format is in the module docstring); `path` is the
    file, or an existing run folder to write `model.pt` into. Written to a temporary file, then renamed, so a
    crash never leaves a half-written model. Returns the file's path."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if len(mean) != config.in_channels or len(std) != config.in_channels:
        raise NasError(f"save_model: mean and std need {config.in_channels} values each, "
                       f"got {len(mean)} and {len(std)}")
    if len(classes) != config.num_classes:
        raise NasError(f"save_model: {len(classes)} class names for a {config.num_classes}-class model")
    state = {k: v.detach().cpu().contiguous() for k, v in _unwrap(model).state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "config": config.to_dict(), "state_dict": state,
               "mean": [float(m) for m in mean], "std": [float(s) for s in std],
               "classes": [str(c) for c in classes]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _model_file(run_dir_or_file: str | Path) -> Path:
    path = Path(run_dir_or_file)
    if path.is_dir():
        file = path / MODEL_FILE
        if not file.is_file():
            raise NasError(f"{path}: no {MODEL_FILE} in this folder; give the folder of a finished "
                           f"training run (it writes {MODEL_FILE} at the end) or the path of a {MODEL_FILE}")
        return file
    if not path.exists():
        raise NasError(f"{path}: no such run folder or model file; give a finished run's folder "
                       f"or its {MODEL_FILE}")
    return path


def load_model(run_dir_or_file: str | Path) -> tuple[Classifier, tuple[str, ...]]:
    """The classifier (eval mode, on CPU, normalisation included) and its class names, from a run
    folder or a `model.pt`. NasError (one line) when the file is missing or not a saved model."""
    file = _model_file(run_dir_or_file)
    try:
        payload: Any = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many kinds for a bad file, in long messages
        raise NasError(f"{file}: not a readable model file (damaged, or not made by nas); re-run "
                       f"the training, or give another run folder or {MODEL_FILE}") from None
    if not isinstance(payload, dict) or (missing := [k for k in _KEYS if k not in payload]):
        what = f"missing {', '.join(missing)}" if isinstance(payload, dict) else "not a dict"
        raise NasError(f"{file}: not a model saved by nas ({what}); give the {MODEL_FILE} of a "
                       "finished training run")
    if payload.get("version", VERSION) > VERSION:
        raise NasError(f"{file}: saved in model format {payload['version']}, newer than this nas "
                       f"reads ({VERSION}); upgrade nas")
    config = config_from_dict(payload["config"], str(file))
    model = build_model(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise NasError(f"{file}: the weights do not fit the saved design ({first}); the file is "
                       "damaged or was edited, re-save it from the run") from None
    classifier = Classifier(model, payload["mean"], payload["std"], config.input_size)
    return classifier.eval(), tuple(payload["classes"])
