"""`nas show`, `nas predict` and `nas export`: a design measured, a finished run's model in use."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nas.cli.arguments import limits_from
from nas.cli.views import console
from nas.errors import NasError


def show(args: argparse.Namespace) -> int:
    from nas.design.budget import check
    from nas.design.files import load_config, resolve_design
    from nas.design.summary import render

    config = load_config(resolve_design(args.config))
    verdict = check(config, limits_from(args))
    if args.json:
        print(json.dumps({"config": args.config, **verdict.to_dict()}, indent=2))
    else:
        console.print(render(config, verdict))
        console.print("FLOPs are fvcore's count: one multiply-add = one FLOP, for one image.")
    return 0


def predict(args: argparse.Namespace) -> int:
    """Top classes with probabilities for each image file."""
    from nas.inference.predict import predict_images
    from nas.training.modelfile import load_model

    if args.top < 1:
        raise NasError(f"--top {args.top}: give 1 or more classes per image")
    classifier, classes = load_model(args.run)
    for path, top in zip(args.images, predict_images(classifier, classes, args.images, top=args.top)):
        console.print(f"{path}: " + ", ".join(f"{name} {p:.1%}" for name, p in top), soft_wrap=True)
    return 0


def export(args: argparse.Namespace) -> int:
    """A self-contained ONNX file, checked against PyTorch's logits."""
    from nas.inference.onnx import export_onnx

    out = Path(args.out or Path(args.run) / f"model-{args.input}.onnx")
    export_onnx(args.run, out, args.input)
    console.print(f"wrote {out}: input 'images' N×3×32×32 {'uint8 (0-255)' if args.input == 'uint8' else 'float32 in [0, 1]'}, "
                  "output 'logits' N×10; normalisation included; onnxruntime's logits match PyTorch's")
    return 0
