"""The result cache: reuse a stored problem result only where it would be recomputed identically.

Which runs may use it is ``uncacheable``'s rule (``cache=auto|true|false``). The key (``run_key``)
covers every model taking part with every setting that changes answers (and its weights' digest
where the server gives one), the prompt style, the mode and its limits, the dataset's content
hash, the containment mechanism the sandbox actually uses, every sandbox limit, and ``JUDGE_CODE``
(a digest of the code that turns an answer into a verdict): a verdict computed under weaker
containment, other judging code or other limits is never served. Only results with a verdict on
the candidate are stored. Results live in one SQLite file (``outputs/cache/results.sqlite``) that
a sweep's concurrent jobs can share, in a folder only the user can change (``koderz.safefiles``).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

import koderz.bench
import koderz.sandbox
from koderz import __version__, provenance
from koderz.answers import checkenv, oracle, wire
from koderz.datasets import expected
from koderz.datasets.problem import Problem
from koderz.models.config import MODEL_KEYS, ModelConfig
from koderz.plan import Plan
from koderz.records import ProblemResult
from koderz.safefiles import TrustedDir
from koderz.sandbox.mechanism import Mechanism
from koderz.vocab import CacheSetting, Mode

DEFAULT_PATH = Path("outputs/cache/results.sqlite")
BUILTIN_TIER = "builtin"
# settings of the sandbox that cannot change a verdict (``containment`` is replaced by the mechanism used)
OPERATIONAL = ("max_processes", "fork_server", "containment")
JUDGE_FILES = provenance.module_files(
    # the program judged is read from the answer by extract / prompts (evalplus_sanitize, the preamble):
    # a change there changes the verdict as surely as one in the judge
    [
        wire,
        oracle,
        checkenv,
        expected,
        "koderz.extract",
        "koderz.prompts",
        "koderz.evalplus_sanitize",
        "koderz.experiment",
        "koderz.evaluators",
        "koderz.framing",  # how the judge's verdict reaches the sandbox
    ],
    [koderz.sandbox, koderz.bench],  # koderz.bench: the benchmarks' evaluators and the harness programs they run
)
JUDGE_CODE = provenance.source_digest(JUDGE_FILES)


def roles(plan: Plan) -> dict[str, ModelConfig]:
    """The models whose answers a cached result holds, by role."""
    models = {"coder": plan.coder, "spec": plan.spec_writer, "reviewer": plan.reviewer}
    return {role: model for role, model in models.items() if model is not None}


def local(model: ModelConfig) -> bool:
    """A server on this machine or a private network (Ollama, llama.cpp, vLLM...), whose weights
    can change behind the same name and URL without a trace."""
    if model.provider == "ollama":
        return True
    if model.provider != "openai" or model.base_url is None:
        return False
    host = urlsplit(model.base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost") or "." not in host:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


def uncacheable(plan: Plan, digests: dict[str, str | None]) -> str | None:
    """Why this run's results may not be served from (nor stored in) the cache; None when they may.

    ``cache=false``: never. Built-in models: never (they cost nothing). ``cache=true``: always.
    ``cache=auto`` (the default): not for sampled runs (temperature > 0 or unset, or n_samples > 1:
    a repeat is asked for its variance), nor for a local server that gives no digest of its weights
    (``digests``: by role, from ``ModelClient.weights``).
    """
    setting = CacheSetting.of(plan.config.cache)
    if setting is CacheSetting.OFF:
        return "cache=false"
    if plan.coder.tier == BUILTIN_TIER:
        return f"the built-in model {plan.coder.name} is not cached"
    if setting is CacheSetting.ON:
        return None
    sampled = [m.name for m in roles(plan).values() if m.temperature is None or m.temperature > 0]
    if plan.mode.spec.samples and plan.config.n_samples > 1:
        return f"n_samples={plan.config.n_samples}: a sampled run is not served from the cache (cache=true to allow)"
    if sampled:
        return (
            f"{sampled[0]} samples (temperature > 0, or the server's default): "
            "not served from the cache (cache=true to allow)"
        )
    for role, model in roles(plan).items():
        if local(model) and not digests.get(role):
            return (
                f"{model.name} at a local server that gives no digest of its weights: answers are not cached "
                "(the same name may serve other weights; cache=true to allow)"
            )
    return None


def _model(model: ModelConfig | None, digest: str | None) -> dict[str, Any] | None:
    if model is None:
        return None
    return {k: getattr(model, k) for k in MODEL_KEYS} | ({"weights": digest} if digest else {})


def run_key(
    plan: Plan, dataset_version: str, mechanism: Mechanism, digests: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """Everything of the run that decides a problem's result (mode and task id are added per problem);
    ``mechanism``: the containment the sandbox uses (``Containment.mechanism``); ``digests``: the
    weights' digest of each role's model where its server gives one."""
    config = plan.config
    weights = digests or {}
    return {
        "koderz": __version__,
        "judge_code": JUDGE_CODE,
        "dataset": [plan.dataset, dataset_version],
        "coder": _model(plan.coder, weights.get("coder")),
        "spec": _model(plan.spec_writer, weights.get("spec")),
        "spec_reuse": config.spec.reuse,
        "reviewer": _model(plan.reviewer, weights.get("reviewer")),
        "prompt": asdict(plan.prompt),
        "limits": _limits(plan),
        "containment": mechanism.value,
        "sandbox": {k: v for k, v in asdict(plan.sandbox).items() if k not in OPERATIONAL},
    }


def _limits(plan: Plan) -> dict[str, int]:
    """The limits the mode's parts use (a zero-shot result does not depend on max_iterations)."""
    config, spec = plan.config, plan.mode.spec
    limits = {"n_samples": config.n_samples} if spec.samples else {}
    if spec.feedback:
        limits |= {"max_iterations": config.max_iterations, "checkpoint_interval": config.checkpoint_interval}
    return limits


class ResultCache:
    """Problem results by (run key, mode, task id).

    The folder is checked once (``TrustedDir``: the user's, not writable by others, reached
    without untrusted links) and the database and its journal files must be the user's regular
    files; from then on no other user can create or replace a file in it.
    """

    def __init__(self, path: Path, key: dict[str, Any]) -> None:
        self.path = path
        self._base = json.dumps(key, sort_keys=True, default=str)
        self._mechanism = key.get("containment")
        with TrustedDir.open(path.parent, what="the result cache folder") as folder:
            for suffix in ("", "-wal", "-shm", "-journal"):
                folder.check_file(path.name + suffix)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, task_id TEXT, "
                "payload TEXT NOT NULL, created REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _key(self, mode: Mode, task_id: str, reference: str) -> str:
        return hashlib.sha256(f"{self._base}|{mode.value}|{task_id}|{reference}".encode()).hexdigest()

    def _get(self, mode: Mode, task_id: str, reference: str) -> ProblemResult | None:
        with self._connect() as db:
            key = self._key(mode, task_id, reference)
            row = db.execute("SELECT payload FROM results WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            result = ProblemResult.model_validate_json(row[0])
        except ValidationError:  # stored by another schema version: a miss
            return None
        if result.record.mechanism is None or result.record.mechanism.value != self._mechanism:
            return None  # judged under another containment, or under one it does not name (the key says so too)
        result.record.cached = True
        return result

    def _put(self, mode: Mode, task_id: str, reference: str, result: ProblemResult) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                (self._key(mode, task_id, reference), task_id, result.model_dump_json(), time.time()),
            )

    async def get(self, mode: Mode, task_id: str, reference: str = "") -> ProblemResult | None:
        """The stored result, marked ``cached`` (its cost is saved, not spent); ``reference``: the
        problem's ``reference_times`` (part of the key)."""
        return await asyncio.to_thread(self._get, mode, task_id, reference)

    async def put(self, mode: Mode, task_id: str, result: ProblemResult, reference: str = "") -> None:
        await asyncio.to_thread(self._put, mode, task_id, reference, result)


def reference_times(problem: Problem) -> str:
    """A digest of the problem's measured reference times and their calibration ("" without them):
    they set each input's CPU budget, so a ground truth measured again keys its verdicts apart."""
    if not problem.input_seconds:
        return ""
    times = json.dumps([problem.calibration, list(problem.input_seconds)])
    return hashlib.sha256(times.encode()).hexdigest()
