"""An empty MLflow SQLite store, made and migrated by MLflow once, copied for each fresh store.

Creating a store runs MLflow's whole schema history (about seventy Alembic migrations: a
second of CPU and more) before a run can log anything. The tracking server
(``koderz.tracking.server``) has MLflow make one store per code key while it is idle, less the
``Default`` experiment (whose artifact location names the store's folder: MLflow creates it
again, with the right location, when it opens a copy). A worker it forks that finds its SQLite
store missing copies that file instead (under the store's creation lock), then opens it as
MLflow would any existing store: the schema version is checked as usual.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

log = logging.getLogger(__name__)

TEMPLATE: list[Path] = []  # set by the tracking server; its forked workers inherit it


def make(path: Path) -> None:
    """Have MLflow create and migrate a store at ``path`` (replaced atomically), minus its
    ``Default`` experiment."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    artifacts = path.with_name(f"{path.name}.{os.getpid()}.artifacts")
    try:
        store = SqlAlchemyStore(f"sqlite:///{scratch}", str(artifacts))
        store.engine.dispose()
        with closing(sqlite3.connect(scratch)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            conn.execute("DELETE FROM experiments WHERE experiment_id = 0")
            conn.commit()
            conn.execute("PRAGMA journal_mode=DELETE")
        os.replace(scratch, path)
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + "-wal"), scratch.with_name(scratch.name + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        shutil.rmtree(artifacts, ignore_errors=True)


def use(path: Path) -> None:
    """Copy fresh stores from ``path`` from now on (in this process and those it forks)."""
    TEMPLATE[:] = [path]


def copy_to(db: Path) -> bool:
    """Create the missing store ``db`` as a copy of the template, if there is one (the caller
    holds the store's creation lock); False when MLflow is to create it."""
    if not TEMPLATE or db.exists():
        return False
    scratch = db.with_name(f"{db.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(TEMPLATE[0], scratch)
        os.replace(scratch, db)
    except OSError as exc:
        log.warning("could not copy the empty store %s (%s); MLflow creates %s", TEMPLATE[0], exc, db)
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()
        return False
    return True
