"""A trained model people can use: the self-contained `model.pt` of a finished run, predictions on
image files, and an ONNX export.

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
    predict_images(classifier, classes, [Path("cat.jpg")])   # [[("cat", 0.71), ("dog", 0.12), ...]]
    export_onnx("runs/reference", "reference.onnx", "uint8")

ONNX export needs the optional packages `onnx` and `onnxruntime` (pip install -e '.[export]').
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from nas.config import ArchConfig
from nas.designs import config_from_dict
from nas.errors import NasError
from nas.model import build_model

MODEL_FILE = "model.pt"
FORMAT, VERSION = "nas-model", 1
OPSET = 17
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
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NasError(f"{file}: not a model saved by nas ({first}); give the {MODEL_FILE} of a "
                       "finished training run") from None
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


def read_image(path: str | Path, size: int = 32) -> torch.Tensor:
    """One image file (PNG, JPEG, anything Pillow reads; any size and mode) as uint8 3×size×size:
    RGB-converted, resized with Pillow's antialiased bilinear filter. NasError when unreadable."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        what = "is a folder, not an image file" if path.is_dir() else "no such image file"
        raise NasError(f"{path}: {what}; give the path of a PNG or JPEG image")
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        kind = "not an image Pillow can read" if isinstance(err, UnidentifiedImageError) else \
            f"cannot be decoded ({str(err).strip() or type(err).__name__})"
        raise NasError(f"{path}: {kind}; give a PNG or JPEG image") from None
    data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return data.view(size, size, 3).permute(2, 0, 1).contiguous()


def predict_images(classifier: nn.Module, classes: Sequence[str], paths: Sequence[str | Path],
                   top: int = 3) -> list[list[tuple[str, float]]]:
    """For each image file, its `top` most likely classes with their softmax probabilities, most
    likely first. All files are read (and checked) before the network runs."""
    if top < 1:
        raise NasError(f"top must be at least 1, got {top}")
    if not paths:
        return []
    size = getattr(classifier, "input_size", 32)
    batch = torch.stack([read_image(p, size) for p in paths])
    was_training = classifier.training
    classifier.eval()
    try:
        with torch.inference_mode():
            device = next((b.device for b in classifier.buffers()), torch.device("cpu"))
            probs = classifier(batch.to(device)).float().softmax(dim=1).cpu()
    finally:
        classifier.train(was_training)
    values, indices = probs.topk(min(top, probs.shape[1]), dim=1)
    return [[(classes[i], float(v)) for v, i in zip(vs.tolist(), ix.tolist(), strict=True)]
            for vs, ix in zip(values, indices, strict=True)]


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise NasError(f"ONNX export needs the package {module}, which is not installed; "
                       "install it with: pip install -e '.[export]'") from None


def export_onnx(run_dir: str | Path, out_path: str | Path,
                input_kind: Literal["uint8", "float"] = "uint8") -> Path:
    """Write a self-contained ONNX model (weights and normalisation inside, opset 17, dynamic batch
    axis) of a run's `model.pt`: input "images", N×3×H×W uint8 (0..255) or float32 in [0, 1];
    output "logits", N×classes. The class names go into the model's metadata ("classes", one per
    line). The file is checked with onnx.checker, and onnxruntime's logits are compared with
    PyTorch's on a random batch; NasError if they differ."""
    if input_kind not in ("uint8", "float"):
        raise NasError(f"input kind must be uint8 or float, got {input_kind!r}")
    onnx = _require("onnx")
    ort = _require("onnxruntime")
    classifier, classes = load_model(run_dir)
    size = classifier.input_size
    in_ch = classifier.mean.shape[1]
    gen = torch.Generator().manual_seed(0)
    example = torch.randint(0, 256, (2, in_ch, size, size), dtype=torch.uint8, generator=gen)
    if input_kind == "float":
        example = example.float() / 255.0
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, but works and needs
        warnings.simplefilter("ignore")  # no onnxscript; it writes one self-contained file
        torch.onnx.export(classifier, (example,), str(out_path), dynamo=False, opset_version=OPSET,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
                          do_constant_folding=True)
    proto = onnx.load(str(out_path))
    onnx.checker.check_model(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "classes", "\n".join(classes)
    onnx.save(proto, str(out_path))

    session = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    check = torch.randint(0, 256, (3, in_ch, size, size), dtype=torch.uint8, generator=gen)
    if input_kind == "float":
        check = check.float() / 255.0
    with torch.inference_mode():
        expected = classifier(check).numpy()
    got = session.run(["logits"], {"images": check.numpy()})[0]
    diff = abs(got - expected).max() if got.shape == expected.shape else float("inf")
    if not diff <= 1e-3:
        raise NasError(f"{out_path}: onnxruntime's logits differ from PyTorch's (max |diff| "
                       f"{diff:.3g}, shapes {got.shape} and {expected.shape}); please report this")
    return out_path
