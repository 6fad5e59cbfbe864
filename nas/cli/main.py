"""`nas`: parse the command line, make the process-wide settings (logger filters, environment
variables), run the command, and turn a user's mistake into one line and exit code 2."""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import signal
import sys

from nas.cli.parser import build_parser
from nas.errors import NasError

# the commands that run Optuna trials: Optuna's own lines ("Trial 3 finished", "Trial 4 failed")
# would cut through their live view, which shows each outcome once
RUNS_TRIALS = ("nas.cli.search:search", "nas.cli.search:calibrate")


def quiet_libraries(command: str) -> None:
    """Process-wide settings for `command` (its `func`), made here and not on import: no update
    check over the network by albumentations (training machines have no route out), and Optuna's
    log lines left out where the command runs trials. No warning is silenced here: each one that is
    understood is silenced where it arises (Optuna's experimental heartbeats in
    `nas.search.storage`, fvcore's import in `nas.design.rules`), so that a new one is seen."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    logging.getLogger("fvcore").setLevel(logging.ERROR)  # "tracer warning" chatter on stderr
    if command in RUNS_TRIALS:  # Optuna sets its logger's level when imported: imported, then set
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.command_line = shlex.join(["nas", *args.argv])  # as a shell reads it back
    try:
        quiet_libraries(args.func)
        module, _, name = args.func.partition(":")
        code = getattr(importlib.import_module(module), name)(args)
        sys.stdout.flush()  # here, so that a reader gone early (`| head`) is handled below, not at exit
        return code
    except NasError as err:
        print(f"nas: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a Ctrl-C outside a command's own handling: no traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("nas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nas show ... | head` closed the pipe: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
