"""``cache=true``: reuse a stored problem result when nothing that decides it has changed.

The key covers the coder (and, when they take part, the spec and review models) with
every setting that changes answers, the prompt switches, the mode and its limits, the
dataset's data version, the sandbox limits and koderz's version. Built-in models
(reference, replay) cost nothing and are never cached. Results live in one SQLite file
(``outputs/cache/results.sqlite``) that concurrent jobs of a sweep can share.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from koderz import __version__

MODEL_KEYS = ("provider", "name", "base_url", "host", "max_tokens", "temperature", "seed", "num_ctx")
DEFAULT_PATH = Path("outputs/cache/results.sqlite")


def cacheable(cfg: DictConfig) -> bool:
    return bool(cfg.cache) and cfg.model.tier != "builtin"


def _model(node: DictConfig, cfg: DictConfig) -> dict[str, Any]:
    data = {k: node.get(k) for k in MODEL_KEYS}
    if cfg.temperature is not None:
        data["temperature"] = cfg.temperature
    if cfg.seed is not None:
        data["seed"] = cfg.seed
    return data


def run_key(cfg: DictConfig, dataset_version: str) -> dict[str, Any]:
    """Everything of the run that decides a problem's result (the task id is added per problem)."""
    iterative = cfg.mode.name != "zero_shot"
    return {
        "koderz": __version__,
        "dataset": [cfg.dataset.name, dataset_version],
        "coder": _model(cfg.model, cfg),
        "spec": _model(cfg.spec_model, cfg) if cfg.spec.enabled else None,
        "spec_reuse": bool(cfg.spec.reuse),
        "reviewer": _model(cfg.checkpoint_model, cfg) if iterative and cfg.checkpoints.enabled else None,
        "cot": bool(cfg.prompt.cot),
        "limits": {"n_samples": cfg.n_samples}
        if not iterative
        else {"max_iterations": cfg.max_iterations, "checkpoint_interval": cfg.checkpoint_interval},
        "sandbox": [cfg.test_timeout, cfg.sandbox.memory_mb, cfg.sandbox.cpu_factor],
    }


class ResultCache:
    """Problem results by (run key, mode, task id)."""

    def __init__(self, path: Path, key: dict[str, Any]) -> None:
        self.path = path
        self._base = json.dumps(key, sort_keys=True, default=str)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, task_id TEXT, "
                "payload TEXT NOT NULL, created REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _key(self, mode: str, task_id: str) -> str:
        return hashlib.sha256(f"{self._base}|{mode}|{task_id}".encode()).hexdigest()

    def _get(self, mode: str, task_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT payload FROM results WHERE key = ?", (self._key(mode, task_id),)).fetchone()
        return json.loads(row[0]) if row else None

    def _put(self, mode: str, task_id: str, payload: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                (self._key(mode, task_id), task_id, json.dumps(payload, default=str), time.time()),
            )

    async def get(self, mode: str, task_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._get, mode, task_id)

    async def put(self, mode: str, task_id: str, payload: dict[str, Any]) -> None:
        await asyncio.to_thread(self._put, mode, task_id, payload)
