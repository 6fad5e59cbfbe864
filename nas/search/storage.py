"""Where studies live: an Optuna RDB storage (a SQLite file, or PostgreSQL for many machines),
opened with heartbeats, and the studies already in one.

Heartbeats are how a search survives a killed worker: each running trial records one every
HEARTBEAT_S seconds, and a trial silent for GRACE_S seconds is failed, with STALE_REASON as its
`fail_reason`, and retried once more with the same parameters (Optuna's
`RetryHeartbeatStaleTrialCallback`). Both the search and its readers open storages here.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from nas.errors import NasError

HEARTBEAT_S, GRACE_S = 5, 20  # a trial silent for 20 s belongs to a dead worker
STALE_REASON = "worker stopped responding (no heartbeat)"


@contextlib.contextmanager
def _heartbeats_known() -> Iterator[None]:
    """Optuna's heartbeats (the `heartbeat_interval` argument, the retry callback,
    `fail_stale_trials`) are marked experimental, unchanged since Optuna 2.9. nas relies on them
    knowingly, and tests/test_search.py checks that a killed worker's trial is still failed and
    retried: their ExperimentalWarning tells a user nothing, so it is ignored here, and only
    here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ExperimentalWarning)
        yield


class _HeartbeatStorage(RDBStorage):
    """Optuna's RDBStorage, writing why on each stale trial before it is failed. Optuna sweeps for
    stale trials itself at the start of every trial, so the reason is written where it looks."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        for trial_id in stale:
            try:
                self.set_trial_user_attr(trial_id, "fail_reason", STALE_REASON)
            except optuna.exceptions.UpdateFinishedTrialError:  # another worker failed it first
                pass
        return stale


def open_storage(url: str, *, create: bool) -> RDBStorage:
    """An Optuna RDB storage with heartbeats: stale trials of killed workers fail and are retried.
    Without `create`, a SQLite file that does not exist is an error, not a new empty database."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not create and not holds_studies(path):
            raise NasError(f"no study storage at {path}: run nas search first, or pass the "
                           "--storage of an existing study")
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise NasError(f"cannot create {path.parent} for storage {url}: "
                               f"{err.strerror or err}") from None
    if url.startswith(("postgresql://", "postgres://")):  # SQLAlchemy would pick psycopg2
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        return _rdb_storage(url, HEARTBEAT_S, GRACE_S)
    except ModuleNotFoundError as err:
        raise NasError(f"storage {url}: the driver is missing ({err.name}); "
                       "install it with: pip install -e '.[postgres]'") from None
    except Exception as err:  # sqlalchemy's OperationalError, ArgumentError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NasError(f"cannot open storage {url}: {first}; check the URL and that the "
                       "server is running") from None


def holds_studies(path: Path) -> bool:
    """Whether a SQLite file holds Optuna's tables (looked at read-only: reading never creates)."""
    if not path.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'"
                              ).fetchone() is not None
    except sqlite3.DatabaseError:  # not a SQLite file at all
        return False


def _rdb_storage(url: str, heartbeat_s: int, grace_s: int) -> RDBStorage:
    for attempt in range(2):
        try:
            with _heartbeats_known():
                return _HeartbeatStorage(
                    url, heartbeat_interval=heartbeat_s, grace_period=grace_s,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
                    engine_kwargs={"pool_pre_ping": True} if url.startswith("postgresql") else None)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # workers starting together on an empty PostgreSQL database race to create
            # Optuna's tables and the loser hits a duplicate key; by now the tables exist
            if attempt:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail (and retry) the trials of workers that stopped sending heartbeats. Optuna does it at
    each trial's start; done before, the trials counted until then (the live view, `claim_slot`)
    hold no dead worker's trial as running."""
    with _heartbeats_known():
        optuna.storages.fail_stale_trials(study)


def load_existing(name: str, storage_url: str) -> optuna.Study:
    """The named study; NasError listing the studies that do exist when it is not there."""
    storage = open_storage(storage_url, create=False)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        known = ", ".join(names) if names else "none yet (run nas search)"
        raise NasError(f"no study named {name!r} in {storage_url}; studies there: {known}")
    return optuna.load_study(study_name=name, storage=storage)


def existing(name: str, storage_url: str) -> optuna.Study | None:
    """The named study if the storage holds it, else None (a storage not made yet holds none)."""
    try:
        return load_existing(name, storage_url)
    except NasError:
        return None
