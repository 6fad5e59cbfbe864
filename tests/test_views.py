"""What the command line shows while work runs: the bars follow the training, and what follows
them starts on a line of its own, also in a file."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from nas.cli.main import main
from nas.cli.views import TrainingBars
from nas.training.loop import Hooks, train
from nas.training.recipe import Recipe
from tests.test_search import search_args
from tests.test_train import CPU, small_model, synthetic_sets


def file_console() -> Console:
    return Console(file=io.StringIO(), width=120)


def test_the_bars_follow_the_run_and_an_interrupted_run_leaves_none() -> None:
    bars = TrainingBars(file_console())
    seen: list[list[tuple[str, float, float | None]]] = []

    def stop_after_1(log) -> None:
        seen.append([(t.description, t.completed, t.total) for t in bars.bars.tasks])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small_model(), synthetic_sets(64, batch_size=16), Recipe(epochs=2, batch_size=16),
              CPU, hooks=Hooks(bars, on_epoch=stop_after_1))
    assert seen == [[("epochs", 1, 2)]]  # the epoch's bar went with its epoch
    assert bars.bars.tasks == []


def test_in_a_file_the_bars_write_nothing_between_the_lines() -> None:
    console = file_console()
    console.print("before")
    with TrainingBars(console) as bars:
        bars.run_started(3, 1)
        bars.epoch_started(2, 3, 10)
        bars.step_done(10, 0.5, 0.8, 1000.0)
        console.print("epoch 2 ...")
    console.print("after")
    assert console.file.getvalue() == "before\nepoch 2 ...\nafter\n"


def test_what_follows_the_search_view_starts_on_its_own_line(tmp_path, tiny_data_dir, capsys) -> None:
    """Output redirected to a file: rich writes the search's last view without a newline after it
    (it adds one on terminals only), which glued the closing line to the trials bar."""
    assert main(search_args(tmp_path, tiny_data_dir, 1)) == 0  # the reference: pruned, untrained
    out = capsys.readouterr().out
    assert "\nstudy s in sqlite:///" in out  # the closing line, on a line of its own
    last_view = out[:out.index("\nstudy s in")].splitlines()
    assert last_view[-1].startswith("trials ") and last_view[-1].rstrip().endswith("ETA 0:00:00")
