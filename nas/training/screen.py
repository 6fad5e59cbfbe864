"""A recipe screen: variants of one recipe, each trained over a few seeds on the validation split
and compared with a base variant by their mean accuracy and its spread (`nas screen`).

A screen is a TOML file (`Screen`). Its runs are `nas train DESIGN --validate`'s, one folder
OUT/VARIANT-sSEED each, so a folder made by `nas train` with the same recipe counts as finished
(`finished_metrics`); `summary_rows` and `markdown` tabulate the finished ones.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from nas.data.settings import TRAIN_IMAGES, VAL_IMAGES
from nas.design.config import ArchConfig, dict_diff, parse_dataclass
from nas.design.files import load_config, read_table, resolve_design
from nas.design.summary import markdown_table
from nas.errors import ConfigError, NasError
from nas.training.recipe import Recipe, as_written_today, recipe_from_dict

VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # it names the variant's folders
COLUMNS = ("variant", "seeds", "val accuracy %", "mean ± sd", "vs base", "flip-TTA mean",
           "min per run", "gain > spread")


@dataclass(frozen=True)
class Screen:
    """A recipe screen as its file states it: the design, the seeds, the share of the
    search-training images each run trains on, the recipe common to every variant (`Recipe`'s
    keys over its defaults) and each variant's keys over that; `base` is the variant the others
    are compared with."""

    design: str  # a config relative to the screen file's folder, or a shipped name ("reference")
    seeds: tuple[int, ...]
    base: str
    variants: dict[str, dict[str, Any]]  # in the file's order: the order the runs go in
    recipe: dict[str, Any] = field(default_factory=dict)
    data_fraction: float = 1.0
    val_images: int = VAL_IMAGES  # the hold-out each run is scored on, as `nas search --val-images`

    def to_dict(self) -> dict[str, Any]:
        """Plain data (tuples as lists) that the file's TOML writes and `load_screen` reads back."""
        return json.loads(json.dumps(asdict(self)))

    def variant_recipe(self, variant: str, seed: int, source: str = "<screen>") -> Recipe:
        """`variant`'s recipe at `seed`: the defaults, then [recipe], then the variant's keys
        (`augment` merged key by key); ConfigError naming `source` and the table at fault."""
        knobs = self.variants[variant]
        merged = {**self.recipe, **knobs, "seed": seed}
        if isinstance(self.recipe.get("augment"), dict) and isinstance(knobs.get("augment"), dict):
            merged["augment"] = {**self.recipe["augment"], **knobs["augment"]}
        return checked_recipe(merged, f"variants.{variant}", source)

    def runs(self) -> list[ScreenRun]:
        """Seed by seed, each seed's variants in the file's order: a screen stopped early still
        compares every variant."""
        return [ScreenRun(v, s, self.variant_recipe(v, s)) for s in self.seeds for v in self.variants]


@dataclass(frozen=True)
class ScreenRun:
    """One training of a screen: a variant at a seed, in the folder `folder` of the screen's."""

    variant: str
    seed: int
    recipe: Recipe

    @property
    def folder(self) -> str:
        return f"{self.variant}-s{self.seed}"


def checked_recipe(data: dict[str, Any], table: str, source: str) -> Recipe:
    """`recipe_from_dict`, its errors naming the screen file and the table."""
    try:
        return recipe_from_dict(data, source)
    except ConfigError as err:
        raise ConfigError(source, f"{table}.{err.key}", err.problem) from None
    except NasError as err:  # Recipe's own checks of a value
        raise ConfigError(source, table, str(err)) from None


def load_screen(path: Path) -> Screen:
    """Read a screen file and check all of it, every variant's recipe built at every seed, so
    that bad input is one line naming the file and key before anything is read or written."""
    source = str(path)
    screen = parse_dataclass(Screen, read_table(path, "screen"), "", source)
    if not screen.variants:
        raise ConfigError(source, "variants", "no variant; give at least one [variants.NAME] table")
    for name, knobs in screen.variants.items():
        if not VARIANT_NAME.fullmatch(name):
            raise ConfigError(source, f"variants.{name}", "a variant's name names its folders: "
                              "a letter or digit, then letters, digits, '.', '_' or '-'")
        if not isinstance(knobs, dict):
            raise ConfigError(source, f"variants.{name}", f"expected a table, got {type(knobs).__name__}")
        if nested := [k for k, v in knobs.items() if isinstance(v, dict) and k != "augment"]:
            raise ConfigError(source, f"variants.{name}.{nested[0]}", "a table inside a variant: "
                              f'quote a name that holds a dot, [variants."{name}.{nested[0]}"]')
    if screen.base not in screen.variants:
        raise ConfigError(source, "base", f"{screen.base!r} is none of the variants "
                          f"({', '.join(screen.variants)})")
    if len(set(screen.seeds)) < len(screen.seeds):
        raise ConfigError(source, "seeds", f"a seed is given twice in {list(screen.seeds)}")
    if not 0 < screen.data_fraction <= 1:
        raise ConfigError(source, "data_fraction", f"must be in (0, 1], got {screen.data_fraction}")
    if screen.val_images < 1:
        raise ConfigError(source, "val_images", f"must be a positive number of images, got {screen.val_images}")
    tables = {"recipe": screen.recipe} | {f"variants.{n}": k for n, k in screen.variants.items()}
    for table, knobs in tables.items():
        if "seed" in knobs:  # it would train every seed's folder at one seed
            raise ConfigError(source, f"{table}.seed", "the seeds are the screen's `seeds`, not a recipe's")
    checked_recipe(screen.recipe, "recipe", source)  # a bad common key is named where it is
    for seed in screen.seeds:
        for variant in screen.variants:
            screen.variant_recipe(variant, seed, source)
    return screen


def screen_design(screen: Screen, path: Path) -> ArchConfig:
    """The design `screen` (read from `path`) trains; ConfigError naming both files."""
    local = path.parent / screen.design
    shipped = resolve_design(screen.design)
    try:
        return load_config(shipped if shipped != Path(screen.design) and not local.exists() else local)
    except ConfigError as err:
        raise ConfigError(str(path), "design", str(err)) from None


def finished_metrics(out: Path, run: ScreenRun, config: ArchConfig, fraction: float,
                     val_images: int = VAL_IMAGES) -> dict[str, Any] | None:
    """The metrics of `run` finished in `out` (by a screen, or by `nas train --validate` with the
    same recipe), None where it has not finished; NasError where `out` holds another finished run
    (another recipe, design, split or share of the images), so that nothing trains over it."""
    if not (out / "metrics.json").exists():
        return None
    from nas.training.run import read_json  # torch: only where a run folder is read

    metrics, recipe, design = (read_json(out / name, "in a finished run: move its folder away, or "
                                          "choose another --out")
                               for name in ("metrics.json", "recipe.json", "config.json"))
    saved = as_written_today(recipe)
    split = (metrics.get("eval_split"), metrics.get("eval_images"))
    # runs made before metrics.json recorded the share (`nas train --validate`) are taken at their word
    share = metrics.get("data_fraction", fraction)
    other = (f"another recipe ({dict_diff(saved, run.recipe.to_dict())})" if saved != run.recipe.to_dict()
             else f"another design ({design.get('name')})" if design != config.to_dict()
             else f"a run scored on {split[1]} {split[0]} images" if split != ("val", val_images)
             else f"a run on a {share} share of the images" if share != fraction else "")
    if other:
        raise NasError(f"{out} holds a finished run of {other}, not {run.variant} seed {run.seed} "
                       "of this screen: move it away or choose another --out (nothing was trained)")
    return metrics


@dataclass(frozen=True)
class Row:
    """One variant's line of the table: its finished seeds, their validation accuracies (%), the
    mean and sample sd (None under 2 seeds), the gain of the mean over the base's, the flip-TTA
    mean, the minutes per run, and whether the gain exceeds the larger of the two sds."""

    variant: str
    seeds: tuple[int, ...] = ()
    accuracy: tuple[float, ...] = ()
    mean: float | None = None
    sd: float | None = None
    vs_base: float | None = None
    flip_tta: float | None = None
    minutes: float | None = None
    gain_beyond_spread: bool = False


def summary_rows(screen: Screen, finished: dict[tuple[str, int], dict[str, Any]]) -> list[Row]:
    """Every variant's row from the finished runs' metrics (by variant and seed), the highest mean
    first, the variants not run yet last."""
    def row(variant: str) -> Row:
        runs = [(seed, finished[variant, seed]) for seed in screen.seeds if (variant, seed) in finished]
        if not runs:
            return Row(variant)
        accuracy = [round(m["accuracy"] * 100, 2) for _, m in runs]  # k of 5,000 images: exact
        return Row(variant, tuple(s for s, _ in runs), tuple(accuracy), statistics.mean(accuracy),
                   statistics.stdev(accuracy) if len(runs) > 1 else None, None,
                   statistics.mean(m["accuracy_flip_tta"] * 100 for _, m in runs),
                   statistics.mean(m["wall_seconds"] for _, m in runs) / 60)

    rows = [row(v) for v in screen.variants]
    base = next(r for r in rows if r.variant == screen.base)
    if base.mean is not None:
        rows = [r if r.mean is None else replace(
            r, vs_base=r.mean - base.mean,
            gain_beyond_spread=r.variant != screen.base and None not in (r.sd, base.sd)
            and r.mean - base.mean > max(r.sd, base.sd)) for r in rows]
    return sorted(rows, key=lambda r: -r.mean if r.mean is not None else float("inf"))


def row_cells(row: Row, base: str, bold: Callable[[str], str] = lambda s: f"**{s}**") -> tuple[str, ...]:
    """The row's cells as COLUMNS name them; `bold` marks the mean up (Markdown's, or rich's)."""
    if row.mean is None:
        return (row.variant, "0", "not run yet", "", "", "", "", "")
    sd = "" if row.sd is None else f" ± {row.sd:.2f}"
    vs_base = "base" if row.variant == base else "" if row.vs_base is None else f"{row.vs_base:+.2f}"
    return (row.variant, str(len(row.seeds)), " ".join(f"{a:.2f}" for a in row.accuracy),
            bold(f"{row.mean:.2f}") + sd, vs_base, f"{row.flip_tta:.2f}", f"{row.minutes:.1f}",
            "yes" if row.gain_beyond_spread else "")


def markdown(screen: Screen, design: ArchConfig, rows: list[Row],
             finished: dict[tuple[str, int], dict[str, Any]], command: str) -> str:
    """The screen's table as a Markdown document, with its command and the machines' CPUs."""
    cpus = sorted({m["machine"]["cpu"] for m in finished.values()})
    common = "".join(f", {k} {v}" for k, v in screen.recipe.items())
    table = markdown_table(COLUMNS, [row_cells(r, screen.base) for r in rows])
    return (f"# Recipe screen of {design.name}\n\n"
            f"Design: {screen.design} (from the screen file's folder); seeds "
            f"{', '.join(map(str, screen.seeds))}; each variant's recipe: the defaults{common}, then "
            f"the variant's own keys. Each run trains on {screen.data_fraction * 100:g} % of the "
            f"{TRAIN_IMAGES - screen.val_images:,} search-training images and is scored on the {screen.val_images:,} "
            "held-out validation images, never the test set. mean ± sd: over the seeds (sample sd); "
            f"vs base: the difference of the means from `{screen.base}`'s; gain > spread: that gain "
            "exceeds the larger of the two sds (2 seeds or more each).\n\n"
            f"Command: `{command}`\n\n{table}\n\nMachine: {', '.join(cpus)}.\n")
