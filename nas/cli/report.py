"""`nas report`: the study as a table, and with --markdown a results document with plots;
`nas compare`: studies side by side (a sampler against another), and with --markdown a document."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.arguments import check_creatable, study_args
from nas.cli.views import console
from nas.errors import NasError
from nas.search.settings import DEFAULT_STORAGE


def report(args: argparse.Namespace) -> int:
    from nas.report.document import write_markdown
    from nas.report.runs import read_run
    from nas.report.table import rich_table
    from nas.search.storage import load_existing
    from nas.search.trials import settings_of

    name, storage = study_args(args)
    markdown = checked_markdown(args.markdown)
    compare = tuple(Path(run) for run in args.compare)
    if compare and markdown is None:
        raise NasError("--compare adds a plot to the results document: give --markdown too")
    for run in compare:
        read_run(run)
    study = load_existing(name, storage)
    if not study.trials:
        console.print(f"study {name} has no trials yet: run nas search --study {name}")
        return 0
    settings_of(study)  # the table reads what nas search stores on each trial: refuse other studies
    console.print(rich_table(study))
    if markdown is not None:
        files = write_markdown(study, markdown, storage, compare)
        console.print(f"wrote {', '.join(map(str, files))}")
    return 0


def compare(args: argparse.Namespace) -> int:
    from nas.report.compare import comparison, rich_tables, write_markdown
    from nas.report.finals import finals
    from nas.search.storage import load_existing

    storage = args.storage or DEFAULT_STORAGE
    markdown = checked_markdown(args.markdown)
    studies = [load_existing(name, storage) for name in args.studies]
    rows = comparison(studies)
    final = finals(studies)
    for table in rich_tables(rows, final):
        console.print(table)
    if markdown is not None:
        files = write_markdown(studies, rows, markdown, storage, final)
        console.print(f"wrote {', '.join(map(str, files))}")
    return 0


def checked_markdown(given: str | None) -> Path | None:
    """--markdown as a path, checked before any storage is opened: a bad path is named first."""
    if given is None:
        return None
    markdown = Path(given)
    if markdown.is_dir():
        raise NasError(f"--markdown {markdown} is a folder: give a file name, e.g. {markdown / 'REPORT.md'}")
    check_creatable(markdown.parent, "--markdown", markdown)
    return markdown
