"""`nas calibrate`: how far a cheap ranking of designs can be trusted.

K feasible designs (the reference's feasible twin, and designs the space samples with a seeded
sampler) are trained at a few low fidelities ("3x0.1": 3 epochs on 10 % of the 45,000
search-training images) and at a truth fidelity (by default 10 epochs on all of them), each
judged by its validation accuracy on the hold-out. Every cheap score (each low fidelity's
accuracy, each zero-cost proxy, the parameter and FLOP counts) is compared with the truth over the
K designs: Spearman's ρ and Kendall's τ (`scipy.stats`), how many of the truth's top 3 designs
are in its own top 3, and what it costs per design.

With a time budget (`--budget-minutes M`) every fidelity is a share of M ("5%x0.25": 5 % of M on
25 % of the images; the truth "100%x1.0"). The truth trains at the steps the design's measured
speed buys, kept to that time by its `TrialClock`, as the final training does; a low fidelity
trains the steps the reference's twin trains in its share, the same for every design, as the
search's trials do (`--pace steps`, the default), or like the truth (`--pace time`). The measured
speed is one more score.

Training is the search's own: `nas.training.loop.train` on `make_splits(..., "val", fraction)`
batches, the fixed recipe (only the epochs change) and the same initial-weight seed for every
design. The results file is written after every finished (design, fidelity) training, so a rerun
trains only what is missing; a file made with other settings is refused.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import torch
from scipy import stats

from nas.data.cifar10 import Cifar10
from nas.data.splits import make_splits
from nas.design.config import ArchConfig, dict_diff
from nas.design.files import config_from_dict
from nas.design.limits import Limits
from nas.design.rules import Verdict
from nas.errors import NasError
from nas.search.fill import fill_params
from nas.search.optimize import race
from nas.search.proxies import proxy_batch, scores
from nas.search.settings import (PACES, TIME_FIDELITIES, TIME_TRUTH_FIDELITY, CalibrationSettings,
                                 Fidelity, check_fill, cost, label, parse_fidelity, trial_steps,
                                 upgraded)
from nas.search.space import TWIN, SearchSpace, baseline_params
from nas.search.trials import PROXIES
from nas.training.batches import make_batches
from nas.training.budget import TrialClock, check_budget, equal_steps, equal_time
from nas.training.loop import ONECYCLE_MIN_STEPS, Hooks, check_trainable
from nas.training.progress import SeriesProgress
from nas.training.recipe import Recipe, fixed_part, recipe_from_dict
from nas.training.runtime import Runtime
from nas.training.speed import measure_speed

COUNTS = {"params": "params", "FLOPs": "flops"}  # row label: the design's stored count
TOP = 3  # the overlap of the top TOP designs


def make_settings(space: SearchSpace, recipe: Recipe, fidelities: str | None,
                  truth_fidelity: str | None, given: CalibrationSettings) -> CalibrationSettings:
    """The settings of the command line: `given` (designs, seed, hold-out, filling, precision,
    budget and device) with the space's name and digest, the fixed part of `recipe`, and the
    comma-separated `fidelities` and the `truth_fidelity` parsed (None: the defaults of the mode,
    at equal time with a budget); every one checked (NasError, one line)."""
    if given.designs < TOP:
        raise NasError(f"--designs {given.designs}: give at least {TOP}, so that a top {TOP} can be compared")
    minutes = given.budget_minutes
    check_budget(minutes)
    if given.pace not in PACES:
        raise NasError(f"--pace {given.pace}: choose one of {', '.join(PACES)}")
    check_fill(given.fill_params)
    fidelities = fidelities or ",".join(TIME_FIDELITIES if minutes else CalibrationSettings.fidelities)
    truth_fidelity = truth_fidelity or (TIME_TRUTH_FIDELITY if minutes else CalibrationSettings.truth_fidelity)
    parsed = [parse_fidelity(text, given.val_images) for text in fidelities.split(",") if text.strip()]
    top = parse_fidelity(truth_fidelity, given.val_images, "--truth-fidelity")
    low = [label(f) for f in parsed]
    if not low or len(set(low)) < len(low) or label(top) in low:
        raise NasError(f"--fidelities {fidelities}: give one or more different fidelities, "
                       f"none the same as --truth-fidelity {truth_fidelity}, e.g. 3x0.1,1x1.0")
    if any(f.timed != bool(minutes) for f in (*parsed, top)):
        raise NasError(f"--fidelities {fidelities} --truth-fidelity {truth_fidelity}: " + (
            "with --budget-minutes every fidelity is a share of it, e.g. 5%x0.25,100%x1.0"
            if minutes else "a share of a time budget (PERCENT%xFRACTION) needs --budget-minutes"))
    if minutes and given.pace == "steps" and TWIN not in dict(baseline_params(space)):
        raise NasError(f"space {space.name} does not hold the reference's twin, whose steps pace the "
                       "low fidelities: give --pace time (each design's own speed)")
    return replace(given, space=f"{space.name} {space.digest()}", fidelities=tuple(low),
                   truth_fidelity=label(top), recipe=fixed_part(recipe.to_dict()),
                   device=given.device if minutes else "", pace=given.pace if minutes else "time")


def pick_designs(space: SearchSpace, limits: Limits, count: int, seed: int, fill: float = 0.0
                 ) -> list[tuple[str, ArchConfig, Verdict]]:
    """The reference's feasible twin (when the space holds it), then distinct feasible designs that
    a seeded random sampler draws from the space, `count` in all, with their verdicts. With `fill`,
    each is widened as `nas search --fill-params` widens it: the same seed gives the same draws
    filled, a paired comparison with an unfilled calibration (`fill` 0: the designs as drawn)."""
    picked: list[tuple[str, ArchConfig, Verdict]] = []
    twin = [params for name, params in baseline_params(space) if name != "reference"]
    if twin and (judgement := fill_params(space.design(twin[0]), limits, fill))[1].passed:
        picked.append((TWIN, *judgement))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(100 * count):
        if len(picked) == count:
            return [(name, replace(c, name=f"calibration-{i}"), v) for i, (name, c, v) in enumerate(picked)]
        trial = study.ask()
        config, verdict = fill_params(space.suggest(trial), limits, fill)
        study.tell(trial, 0.0)
        if all(replace(config, name="") != replace(c, name="") for _, c, _ in picked) and verdict.passed:
            picked.append((f"sampled, trial {trial.number}", config, verdict))
    raise NasError(f"space {space.name} gave only {len(picked)} distinct feasible designs in "
                   f"{100 * count} draws; ask for fewer --designs")


def describe(name: str, config: ArchConfig, verdict: Verdict,
             batch: tuple[torch.Tensor, torch.Tensor], recipe: Recipe, runtime: Runtime
             ) -> dict[str, Any]:
    """A design as the results file keeps it: its config, counts, zero-cost proxies and measured
    speed (which, at equal time, decides its steps)."""
    values = scores(config, *batch, seed=recipe.seed)
    return {"label": name, "config": config.to_dict(), "params": verdict.params,
            "flops": verdict.flops, "receptive_field": verdict.receptive_field,
            "proxies": {p: values[p] for p in PROXIES}, "proxy_seconds": values["proxy_ms"] / 1000,
            "speed": measure_speed(config, recipe, runtime).attrs()}


def read(path: Path) -> dict[str, Any]:
    """A results file; NasError (one line) when it is missing or not one."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise NasError(f"no calibration at {path}: run nas calibrate --out {path} first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise NasError(f"{path} cannot be read as a calibration: {err}") from None
    if not isinstance(state, dict) or not {"settings", "designs", "results"} <= set(state):
        raise NasError(f"{path} is not a calibration made by nas calibrate; give another --out")
    state["settings"] = upgraded(state["settings"], CalibrationSettings)  # as this version names them
    return state


def write(path: Path, state: dict[str, Any]) -> None:
    """Atomically: a kill mid-write leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, path)


def check_results(path: Path, settings: CalibrationSettings) -> dict[str, Any] | None:
    """The results file at `path`, None when there is none yet; NasError (one line) when it was
    made with other settings or `path` cannot be one."""
    if path.is_dir():
        raise NasError(f"--out {path} is a folder: give a file name, e.g. {path / 'calibration.json'}")
    if not path.exists():
        return None
    state = read(path)
    stored = state["settings"] | {"recipe": fixed_part(state["settings"].get("recipe", {}))}
    if diff := dict_diff(stored, settings.to_dict()):
        raise NasError(f"{path} was made with other settings ({diff}); rerun with its settings, "
                       "or give another --out")
    return state


def open_results(path: Path, settings: CalibrationSettings,
                 start: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """The results file at `path` if it was made with `settings` (NasError if with others), else a
    new one holding the designs that `start` picks and describes."""
    if (state := check_results(path, settings)) is not None:
        return state
    state = {"settings": settings.to_dict(), "designs": start(), "results": []}
    write(path, state)
    return state


def calibrate(path: Path, settings: CalibrationSettings, space: SearchSpace, data: Cifar10,
              runtime: Runtime, progress: SeriesProgress | None = None) -> dict[str, Any]:
    """Train every (design, fidelity) pair the results file at `path` lacks, writing each result
    as soon as it is there; returns the whole file's content with its summary."""
    recipe = recipe_from_dict(settings.recipe)
    splits = {fraction: make_splits(data, "val", fraction=fraction, seed=recipe.seed,
                                    val_images=settings.val_images)
              for fraction in {f.data_fraction for f in settings.runs()}}
    for f in settings.runs():  # every fidelity can fill OneCycle's steps: checked before training
        check_trainable(replace(recipe, epochs=f.passes), len(splits[f.data_fraction].train_labels),
                        timed=f.timed)
    batch = proxy_batch(data, recipe.seed, settings.val_images)  # the batch a search measures on
    state = open_results(path, settings, lambda: [
        describe(name, config, verdict, batch, recipe, runtime)
        for name, config, verdict in pick_designs(space, settings.limits, settings.designs,
                                                  settings.seed, settings.fill_params)])
    if settings.budget_minutes and settings.pace == "steps" and state["designs"][0]["label"] != TWIN:
        raise NasError("the reference's twin breaks the limits given, and its steps pace the low "
                       "fidelities: give --pace time (each design's own speed)")
    done = {(r["design"], r["fidelity"]) for r in state["results"]}
    designs = [config_from_dict(d["config"], str(path)) for d in state["designs"]]
    progress = progress or SeriesProgress()
    unit = f"budgets of {settings.budget_minutes:g} min" if settings.budget_minutes else "epochs over 45,000 images"
    progress.series_started(f"calibration ({unit})",
                            total=sum(cost(f) for f in settings.runs()) * len(designs),
                            done=sum(cost(parse_fidelity(f)) for _, f in done))
    for fidelity in settings.runs():
        todo = [i for i in range(len(designs)) if (i, label(fidelity)) not in done]
        batches = make_batches(splits[fidelity.data_fraction], recipe.batch_size, recipe.augment,
                               runtime) if todo else None
        for i in todo:
            progress.training_started(f"design {i + 1}/{len(designs)} at {label(fidelity)}")
            train_batches, clock = paced(batches[0], fidelity, settings, state["designs"], i,
                                         recipe.batch_size)
            eval_batches = batches[1]
            history = race(designs[i], (train_batches, eval_batches),  # every design's seed
                           replace(recipe, epochs=fidelity.passes), runtime,
                           Hooks(progress, replan=clock))
            state["results"].append({"design": i, "fidelity": label(fidelity),
                                     "val_acc": history[-1].eval_acc,
                                     "rounds" if fidelity.timed else "epochs": len(history),
                                     "steps": sum(h.steps for h in history),
                                     "train_seconds": sum(h.seconds for h in history)})
            write(path, state)
            progress.training_done(cost(fidelity))
    state["summary"] = summarise(state)
    write(path, state)
    return state


def paced(batches: Any, fidelity: Fidelity, settings: CalibrationSettings,
          designs: list[dict[str, Any]], i: int, batch_size: int) -> tuple[Any, TrialClock | None]:
    """Design `i`'s training batches at `fidelity` and the clock that keeps its time (None: none):
    at equal epochs the batches as they are; at equal time the steps of its share of the budget,
    the twin's (design 0, `settings.pace` "steps", a low fidelity) or its own speed's."""
    if not fidelity.timed:
        return batches, None
    if settings.pace == "steps" and label(fidelity) != settings.truth_fidelity:
        steps = trial_steps(fidelity.time_share, settings.budget_minutes,
                            designs[0]["speed"]["train_images_per_s"], batch_size)
        return equal_steps(batches, steps, fidelity.rounds, ONECYCLE_MIN_STEPS), None
    return equal_time(batches, fidelity.time_share * settings.budget_minutes * 60,
                      designs[i]["speed"]["train_images_per_s"], batch_size, fidelity.rounds,
                      ONECYCLE_MIN_STEPS)


def agreement(values: list[float], truth: list[float]) -> tuple[float | None, float | None, int]:
    """Spearman's ρ and Kendall's τ-b of `values` against `truth` (None where undefined: fewer
    than 3 designs, or a constant list), and how many of the truth's top 3 are in the values' top 3."""
    def top(xs: list[float]) -> set[int]:
        return set(sorted(range(len(xs)), key=lambda i: (-xs[i], i))[:TOP])

    overlap = len(top(values) & top(truth))
    if len(values) < 3:
        return None, None, overlap
    with warnings.catch_warnings():  # a constant list: scipy warns and answers nan
        warnings.simplefilter("ignore")
        rho, tau = stats.spearmanr(values, truth).statistic, stats.kendalltau(values, truth).statistic
    return (None if math.isnan(rho) else float(rho)), (None if math.isnan(tau) else float(tau)), overlap


def summarise(state: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per cheap score: what it is, over how many designs, ρ, τ, top-3 overlap, seconds
    per design and ρ per minute of that cost (None where the cost is nil or ρ undefined)."""
    settings, designs = state["settings"], state["designs"]
    acc = {(r["design"], r["fidelity"]): r for r in state["results"]}
    truth = {i: acc[i, settings["truth_fidelity"]]["val_acc"] for i in range(len(designs))
             if (i, settings["truth_fidelity"]) in acc}
    scored: list[tuple[str, str, dict[int, float], float]] = []
    for fid in settings["fidelities"]:
        runs = {i: acc[i, fid] for i in range(len(designs)) if (i, fid) in acc}
        seconds = sum(r["train_seconds"] for r in runs.values()) / max(len(runs), 1)
        scored.append((fid, "fidelity", {i: r["val_acc"] for i, r in runs.items()}, seconds))
    proxy_seconds = sum(d["proxy_seconds"] for d in designs) / max(len(designs), 1)
    for name in PROXIES:
        scored.append((name, "proxy", {i: d["proxies"][name] for i, d in enumerate(designs)},
                       proxy_seconds))
    for name, key in COUNTS.items():
        scored.append((name, "count", {i: float(d[key]) for i, d in enumerate(designs)}, 0.0))
    speed = {i: d["speed"]["train_images_per_s"] for i, d in enumerate(designs) if "speed" in d}
    if speed:  # files made before speeds were measured have none
        seconds = sum(d["speed"]["measure_seconds"] for d in designs if "speed" in d) / len(speed)
        scored.append(("img/s", "speed", speed, seconds))
    rows = []
    for name, kind, values, seconds in scored:
        both = sorted(set(values) & set(truth))
        rho, tau, overlap = agreement([values[i] for i in both], [truth[i] for i in both])
        rows.append({"score": name, "kind": kind, "designs": len(both), "rho": rho, "tau": tau,
                     f"top{TOP}": overlap if len(both) >= TOP else None, "seconds_per_design": seconds,
                     "rho_per_minute": rho * 60 / seconds if rho is not None and seconds > 0 else None})
    return rows


def caption(state: dict[str, Any]) -> str:
    """What the table's figures are measured against, and how much of the work is done."""
    settings, designs = state["settings"], state["designs"]
    truth = [r for r in state["results"] if r["fidelity"] == settings["truth_fidelity"]]
    seconds = sum(r["train_seconds"] for r in truth) / max(len(truth), 1)
    every = len(designs) * (len(settings["fidelities"]) + 1)
    unit = (f"share of a {settings['budget_minutes']:g}-min budget at each design's measured speed"
            if settings.get("budget_minutes") else "epochs") + " x share of the 45,000 images"
    return (f"truth fidelity {settings['truth_fidelity']} ({unit}): val accuracy on "
            f"{settings['val_images']:,} held-out images, {len(truth)} of {len(designs)} designs, "
            f"{seconds:,.0f} s per design; {len(state['results'])} of {every} trainings done. "
            f"Proxies on one batch of 64 training images. rho: Spearman, tau: Kendall's tau-b "
            f"(scipy.stats); top {TOP}: how many of the truth's top {TOP} designs are in the score's")
