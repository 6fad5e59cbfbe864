"""`nas predict` and `nas export`: a trained model in use. Both read the run folder's `model.pt`
(`nas.export`), which holds the design, the weights and the normalisation."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from nas.export import export_onnx, load_model, predict_images


def predict(args: argparse.Namespace, console: Console) -> int:
    """Top classes with probabilities for each image file."""
    classifier, classes = load_model(args.run)
    for path, top in zip(args.images, predict_images(classifier, classes, args.images, top=args.top)):
        console.print(f"{path}: " + ", ".join(f"{name} {p:.1%}" for name, p in top), soft_wrap=True)
    return 0


def export(args: argparse.Namespace, console: Console) -> int:
    """A self-contained ONNX file, checked against PyTorch's logits."""
    out = Path(args.out or Path(args.run) / f"model-{args.input}.onnx")
    export_onnx(args.run, out, args.input)
    console.print(f"wrote {out}: input 'images' N×3×32×32 {'uint8 (0-255)' if args.input == 'uint8' else 'float32 in [0, 1]'}, "
                  "output 'logits' N×10; normalisation included; onnxruntime's logits match PyTorch's")
    return 0
