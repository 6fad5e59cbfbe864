"""`nas show`, `nas predict` and `nas export`: a design measured (and timed, with --speed), a
finished run's model in use."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.cli.arguments import limits_from, runtime_from
from nas.cli.views import console
from nas.errors import NasError

if TYPE_CHECKING:
    from nas.design.config import ArchConfig


def show(args: argparse.Namespace) -> int:
    from nas.design.files import load_config, resolve_design
    from nas.design.rules import check
    from nas.design.summary import render

    config = load_config(resolve_design(args.config))
    verdict = check(config, limits_from(args))
    speed = {"speed": measured_speed(config, args)} if args.speed else {}
    if args.json:
        print(json.dumps({"config": args.config, **verdict.to_dict(), **speed}, indent=2))
        return 0
    console.print(render(config, verdict))
    console.print("FLOPs are fvcore's count: one multiply-add = one FLOP, for one image.")
    if speed:
        s = speed["speed"]
        console.print(f"Measured on {s['device']} ({s['precision']}, batch {s['batch_size']}): training "
                      f"{s['train_images_per_s']:,.0f} images/s, {s['epoch_seconds']:,.1f} s per 50,000-image "
                      f"epoch; inference {s['infer_images_per_s']:,.0f} images/s at batch {s['infer_batch']}, "
                      f"{s['latency_ms']:.2f} ms for one image (medians; measured in "
                      f"{s['measure_seconds']:.1f} s, slower while other programs run).")
    return 0


def measured_speed(config: ArchConfig, args: argparse.Namespace) -> dict[str, Any]:
    """`config`'s speed on this machine (`nas.training.speed`) with --batch-size and the runtime
    flags, and what it was measured on: the CPU's model or the GPU's name, the precision."""
    from nas.training.recipe import Recipe
    from nas.training.speed import INFER_BATCH, measure_speed

    recipe, runtime = Recipe(batch_size=args.batch_size), runtime_from(args)
    machine = runtime.record()
    device = machine["cpu"] + f" ({machine['cores']} cores)" if machine["device"] == "cpu" else machine["device"]
    return {"device": device, "precision": machine["precision"], "batch_size": recipe.batch_size,
            "infer_batch": INFER_BATCH, **measure_speed(config, recipe, runtime).attrs()}


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
