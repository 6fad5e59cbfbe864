"""The `nas` command line. Each subcommand is a thin shell over the library."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from nas.budget import DEFAULT_MAX_FLOPS, Limits
from nas.errors import NasError

console = Console()


def add_limit_args(parser: argparse.ArgumentParser) -> None:
    """--max-params / --max-flops / --min-rf: the hard budget."""
    defaults = Limits()
    parser.add_argument("--max-params", type=int, default=defaults.max_params,
                        help="parameters must be fewer than this (default %(default)s)")
    parser.add_argument("--max-flops", type=int, default=DEFAULT_MAX_FLOPS,
                        help="multiply-adds per image at most (default %(default)s, 2× the reference)")
    parser.add_argument("--min-rf", type=int, default=defaults.min_rf,
                        help="receptive field must be greater than this (default %(default)s)")


def limits_from(args: argparse.Namespace) -> Limits:
    """The budget named on the command line; impossible values are rejected."""
    for name in ("max_params", "max_flops", "min_rf"):
        if getattr(args, name) < (0 if name == "min_rf" else 1):
            raise NasError(f"--{name.replace('_', '-')} {getattr(args, name)} is impossible: "
                           "give a positive number")
    return Limits(args.max_params, args.max_flops, args.min_rf)


def cmd_show(args: argparse.Namespace) -> int:
    from nas.budget import check
    from nas.config import load_config
    from nas.summary import render

    config = load_config(args.config)
    verdict = check(config, limits_from(args))
    if args.json:
        print(json.dumps({"config": args.config, **verdict.to_dict()}, indent=2))
    else:
        console.print(render(config, verdict))
        console.print("FLOPs are fvcore's count: one multiply-add = one FLOP, for one image.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    show = sub.add_parser("show", help="layers, totals and the budget verdict of a config")
    show.add_argument("config", help="a .toml or .json architecture config")
    show.add_argument("--json", action="store_true", help="print totals and verdict as JSON")
    add_limit_args(show)
    show.set_defaults(func=cmd_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NasError as err:
        print(f"nas: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
