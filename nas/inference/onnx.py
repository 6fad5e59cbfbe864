"""ONNX export of a run's `model.pt`: one self-contained file for onnxruntime and other engines,
checked against PyTorch before it is written.

    export_onnx("runs/reference", "reference.onnx", "uint8")

It needs the optional packages `onnx` and `onnxruntime` (pip install -e '.[export]').
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import torch

from nas.errors import NasError
from nas.training.modelfile import Classifier, load_model

OPSET = 17


def _require(module: str) -> Any:
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
    line). The model is checked with onnx.checker, and onnxruntime's logits are compared with
    PyTorch's on a random batch, before anything is written; NasError if they differ, or if
    `out_path` cannot be written."""
    if input_kind not in ("uint8", "float"):
        raise NasError(f"input kind must be uint8 or float, got {input_kind!r}")
    onnx = _require("onnx")
    ort = _require("onnxruntime")
    classifier, classes = load_model(run_dir)
    gen = torch.Generator().manual_seed(0)
    proto = onnx.load_from_string(_exported(classifier, _images(classifier, 2, input_kind, gen)))
    onnx.checker.check_model(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "classes", "\n".join(classes)
    data = proto.SerializeToString()

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    check = _images(classifier, 3, input_kind, gen)
    with torch.inference_mode():
        expected = classifier(check).numpy()
    got = session.run(["logits"], {"images": check.numpy()})[0]
    diff = abs(got - expected).max() if got.shape == expected.shape else float("inf")
    if not diff <= 1e-3:
        raise NasError(f"{run_dir}: onnxruntime's logits differ from PyTorch's (max |diff| "
                       f"{diff:.3g}, shapes {got.shape} and {expected.shape}); please report this")
    return _write(Path(out_path), data)


def _images(classifier: Classifier, n: int, input_kind: str, gen: torch.Generator) -> torch.Tensor:
    """A random batch of `n` images of the kind the exported model takes."""
    size, channels = classifier.input_size, classifier.mean.shape[1]
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=gen)
    return images.float() / 255.0 if input_kind == "float" else images


def _exported(classifier: Classifier, example: torch.Tensor) -> bytes:
    """The ONNX model of `classifier`, traced on `example`, with a dynamic batch axis."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, but works and needs
        warnings.simplefilter("ignore")  # no onnxscript; it writes one self-contained file
        torch.onnx.export(classifier, (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
                          do_constant_folding=True)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> Path:
    """Write `data` to `path` (its folder created), through a temporary file renamed at the end:
    NasError, and no file, when it cannot be written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):  # there may be no folder to remove it from
            tmp.unlink(missing_ok=True)
        raise NasError(f"cannot write {path}: {err.strerror or err}; choose another --out") from None
    return path
