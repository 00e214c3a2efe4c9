"""Many problems: selection, bounded concurrency, result files, resume, Ctrl-C, summary.

``Runner.run()`` is the whole job once the config is composed: it overlaps the start-up
work (data, SDK imports, model preflight, the memory server in the background), runs
problems under ``asyncio.Semaphore(concurrency)``, appends each finished problem to the
run folder at once (a crash loses nothing finished), and writes the summary, timing and
report.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from koderz import report
from koderz.config import RunConfig, validate
from koderz.cortex.factory import open_memory_store, preload
from koderz.cortex.store import MemoryRecord
from koderz.datasets.loaders import dataset_version, load_dataset
from koderz.datasets.problem import Problem
from koderz.errors import ConfigError, DatasetError
from koderz.experiment import Environment, Experiment, ProblemResult, Role, Settings
from koderz.models.config import ModelConfig
from koderz.models.pricing import Prices
from koderz.models.registry import PROVIDERS, ClientPool, build_model
from koderz.progress import Progress
from koderz.result_cache import DEFAULT_PATH, ResultCache, cacheable, run_key
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from koderz.tracking.timing import RunTiming, export_report, format_report

log = logging.getLogger(__name__)

GRACE_SECONDS = 5.0
CONF_DIR = Path(__file__).resolve().parent / "conf"


def select_problems(problems: tuple[Problem, ...], cfg: DictConfig) -> list[Problem]:
    """``problems`` (explicit ids) wins over the ``[start, end)`` slice."""
    if cfg.problems:
        by_id = {p.task_id: p for p in problems}
        missing = [t for t in cfg.problems if t not in by_id]
        if missing:
            raise DatasetError(f"problems: {missing[0]} is not a task of dataset {cfg.dataset.name}")
        return [by_id[t] for t in cfg.problems]
    if cfg.start >= len(problems):
        raise ConfigError(f"start={cfg.start}: dataset {cfg.dataset.name} has only {len(problems)} tasks")
    return list(problems[cfg.start : cfg.end])


def model_config(node: DictConfig, cfg: DictConfig) -> ModelConfig:
    """A role's ModelConfig with the run-level temperature and seed applied."""
    model: ModelConfig = OmegaConf.to_object(node)
    if cfg.temperature is not None:
        model = replace(model, temperature=cfg.temperature)
    if cfg.seed is not None:
        model = replace(model, seed=cfg.seed)
    return model


class RunFolder:
    """The run's files; each finished problem is appended and flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._files = {
            name: (path / name).open("a", encoding="utf-8")
            for name in ("results.jsonl", "samples.jsonl", "traces.jsonl")
        }

    def finished(self) -> list[dict[str, Any]]:
        """Records already in results.jsonl (a resumed run); a torn last line is ignored."""
        records = []
        for line in (self.path / "results.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("resume: ignoring a torn line in %s", self.path / "results.jsonl")
        return records

    def append(self, result: ProblemResult) -> dict[str, Any]:
        record = result.record()
        self._write("results.jsonl", record)
        for sample in result.samples:
            self._write(
                "samples.jsonl",
                {
                    "task_id": result.task_id,
                    "sample_index": sample.sample_index,
                    "solution": sample.solution,
                    "passed": sample.passed,
                    "tests_passed": sample.tests_passed,
                    "tests_total": sample.tests_total,
                    "status": sample.status,
                    "mode": result.mode,
                },
            )
        spans = result.spans
        self._write(
            "traces.jsonl",
            {
                "task_id": result.task_id,
                "mode": result.mode,
                "passed": result.passed,
                "start": min((s["start"] for s in spans), default=result.finished_at - result.duration),
                "end": result.finished_at,
                "spans": spans,
            },
        )
        return record

    def _write(self, name: str, data: dict[str, Any]) -> None:
        handle = self._files[name]
        handle.write(json.dumps(data, default=str) + "\n")
        handle.flush()

    def write_json(self, name: str, data: Any) -> None:
        partial = self.path / f".{name}.tmp"
        partial.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        partial.replace(self.path / name)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()


class Runner:
    """One job: a model x dataset x mode over the selected problems."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        if cfg.resume:
            cfg = resumed_config(Path(cfg.resume))
            log.info("resuming %s with its own config", cfg.resume)
        validate(cfg)
        self.cfg = cfg
        self.folder_path = Path(cfg.resume) if cfg.resume else run_dir
        self.run_id = self.folder_path.name + "-" + uuid.uuid4().hex[:6]
        self.timing = RunTiming()
        self._stop = asyncio.Event()
        self._interrupts = 0

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        folder = RunFolder(self.folder_path)
        if not cfg.resume:
            await asyncio.to_thread(self._write_config)
        pool = ClientPool()
        started = time.time()
        env: Environment | None = None
        background: list[asyncio.Task[Any]] = []
        try:
            # start-up work overlaps: data loading, heavy imports (in threads), model
            # preflight (HTTP), the memory server's start (in the background), the sandbox
            dataset_task = asyncio.create_task(self._load_dataset())
            background.append(dataset_task)
            await asyncio.gather(*(asyncio.to_thread(importlib.import_module, m) for m in self._sdk_modules()))
            roles = self._roles(pool)
            preflight_task = asyncio.create_task(self._preflight(roles))
            background.append(preflight_task)
            await asyncio.to_thread(preload, cfg.cortex)  # before problems start: an import stalls the loop (GIL)
            async with open_memory_store(cfg.cortex, self.run_id, defer=True) as store:
                env_task = asyncio.create_task(asyncio.to_thread(self._environment, roles, store))
                background.append(env_task)
                problems = select_problems(await dataset_task, cfg)
                await preflight_task
                env = await env_task
                session = asyncio.create_task(self._start_session(store))  # problems need not wait
                background.append(session)
                done = folder.finished() if cfg.resume else []
                records = await self._run_all(problems, env, folder, done)
                summary = self._summary(records, time.time() - started, store)
                await self._remember_run(store, await session, summary)
        finally:
            for task in background:  # only unfinished when start-up failed
                task.cancel()
            folder.close()
            await pool.aclose()
            if env is not None:
                env.sandbox.close()
        await asyncio.to_thread(self._write_outputs, folder, summary, records)
        return summary

    # building -----------------------------------------------------------------------

    def _write_config(self) -> None:
        (self.folder_path / "config.yaml").write_text(OmegaConf.to_yaml(_plain_config(self.cfg)))

    async def _load_dataset(self) -> tuple[Problem, ...]:
        with self.timing.run.phase("dataset_load"):
            return await asyncio.to_thread(load_dataset, self.cfg.dataset.name)

    async def _start_session(self, store: Any) -> str | None:
        with self.timing.run.phase("cortex_start_session"):
            return await store.start_session(
                f"koderz run {self.run_id}: {self.cfg.model.name} on {self.cfg.dataset.name} ({self.cfg.mode.name})"
            )

    def _sdk_modules(self) -> list[str]:
        """The provider modules the roles need. Their SDK imports take a while, so they run in
        a thread; like every heavy import, before problems start: an import holds the GIL in
        long stretches and would stall the event loop if it overlapped the problems."""
        return sorted(
            {
                PROVIDERS[self.cfg[key].provider].split(":")[0]
                for key in ("model", "spec_model", "checkpoint_model")
                if self.cfg[key].provider in PROVIDERS
            }
        )

    def _roles(self, pool: ClientPool) -> dict[str, Role]:
        roles = {}
        for key in ("model", "spec_model", "checkpoint_model"):
            model = model_config(self.cfg[key], self.cfg)
            roles[key] = Role(build_model(model, pool), model, extract=model.provider != "replay")
        return roles

    async def _preflight(self, roles: dict[str, Role]) -> None:
        needed = [roles["model"]]
        if self.cfg.spec.enabled:  # also with spec.reuse: a task without a stored spec calls it
            needed.append(roles["spec_model"])
        if self.cfg.mode.name in ("iterative", "comparative") and self.cfg.checkpoints.enabled:
            needed.append(roles["checkpoint_model"])
        seen = set()
        for role in needed:
            if id(role.client) not in seen:
                seen.add(id(role.client))
                await role.client.preflight()

    def _environment(self, roles: dict[str, Role], store: Any) -> Environment:
        cfg = self.cfg
        sandbox = Sandbox(
            SandboxConfig(
                max_processes=cfg.sandbox.max_processes,
                isolate=cfg.sandbox.isolate,
                cpu_floor=cfg.test_timeout,
                cpu_factor=cfg.sandbox.cpu_factor,
                memory_mb=cfg.sandbox.memory_mb,
            )
        )
        coder = roles["model"].client
        n = cfg.n_samples
        if hasattr(coder, "sample_count"):  # replay: as many samples as the file holds, up to n

            def samples_for(task: str) -> int:
                return min(n, coder.sample_count(task))
        else:

            def samples_for(task: str) -> int:
                return n

        settings = Settings(
            mode=cfg.mode.name,
            n_samples=n,
            max_iterations=cfg.max_iterations,
            checkpoint_interval=cfg.checkpoint_interval,
            spec_enabled=cfg.spec.enabled,
            spec_reuse=cfg.spec.reuse,
            checkpoints_enabled=cfg.checkpoints.enabled,
            cot=cfg.prompt.cot,
            run_id=self.run_id,
            debug_dir=self.folder_path / "debug" if cfg.debug else None,
        )
        return Environment(
            roles["model"],
            roles["spec_model"],
            roles["checkpoint_model"],
            sandbox,
            store,
            settings,
            Prices.from_model_file(CONF_DIR / "model", cfg.cost.baseline_model),
            samples_for,
        )

    # running ------------------------------------------------------------------------

    async def _run_all(
        self, problems: list[Problem], env: Environment, folder: RunFolder, done: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        modes = ["zero_shot", "iterative"] if env.settings.mode == "comparative" else [env.settings.mode]
        if hasattr(env.coder.client, "sample_count"):
            missing = [p.task_id for p in problems if env.coder.client.sample_count(p.task_id) == 0]
            if missing:
                log.warning(
                    "replay file has no samples for %d selected tasks (e.g. %s); they are skipped",
                    len(missing),
                    missing[0],
                )
                skipped = set(missing)
                problems = [p for p in problems if p.task_id not in skipped]
        finished = {(r["mode"], r["task_id"]): r for r in done}
        jobs = [(p, m) for p in problems for m in modes]
        semaphore = asyncio.Semaphore(self.cfg.concurrency)
        cache = None
        if cacheable(self.cfg):
            version = await asyncio.to_thread(dataset_version, self.cfg.dataset.name)
            cache = await asyncio.to_thread(ResultCache, DEFAULT_PATH, run_key(self.cfg, version))
        progress = Progress(total=len(jobs))
        for record in finished.values():
            progress.update(record, resumed=True)

        async def one(problem: Problem, mode: str) -> dict[str, Any] | None:
            if (mode, problem.task_id) in finished:
                return finished[(mode, problem.task_id)]
            async with semaphore:
                if self._stop.is_set():
                    return None
                result = await self._cached(cache, mode, problem)
                if result is None:
                    mode_env = replace(env, settings=replace(env.settings, mode=mode))
                    result = await Experiment(problem, mode_env, self.timing.problem(problem.task_id)).run()
                    if cache is not None and result.status not in ("error", "model_error"):
                        await cache.put(mode, problem.task_id, asdict(result))
                record = folder.append(result)
                progress.update(record)
                return record

        tasks = [asyncio.create_task(one(p, m)) for p, m in jobs]
        self._install_interrupt(tasks)
        try:
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._remove_interrupt()
            progress.close()
        self.timing.finish()
        for (problem, mode), result in zip(jobs, results, strict=True):
            if isinstance(result, Exception):  # Experiment records its own errors; this is the runner's
                log.error("%s (%s) was not recorded: %s: %s", problem.task_id, mode, type(result).__name__, result)
        records = [r for r in results if isinstance(r, dict)]
        if self._stop.is_set():
            log.warning(
                "interrupted: %d of %d problems finished; finish with resume=%s",
                len(records),
                len(jobs),
                self.folder_path,
            )
        return records

    async def _cached(self, cache: ResultCache | None, mode: str, problem: Problem) -> ProblemResult | None:
        stored = await cache.get(mode, problem.task_id) if cache is not None else None
        if stored is None:
            return None
        result = ProblemResult.from_dict(stored)
        result.cached = True
        return result

    def _install_interrupt(self, tasks: list[asyncio.Task[Any]]) -> None:
        loop = asyncio.get_running_loop()

        def cancel_running() -> None:
            for task in tasks:
                task.cancel()

        def on_sigint() -> None:
            self._interrupts += 1
            if self._interrupts == 1:
                log.warning("Ctrl-C: no new problems; running ones get %.0f s, Ctrl-C again to quit now", GRACE_SECONDS)
                self._stop.set()
                loop.call_later(GRACE_SECONDS, cancel_running)
            else:
                sys.stderr.write("koderz: interrupted twice, exiting now\n")
                os._exit(130)

        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (some launchers)
            loop.add_signal_handler(signal.SIGINT, on_sigint)

    def _remove_interrupt(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    # reporting ----------------------------------------------------------------------

    async def _remember_run(self, store: Any, session: str | None, summary: dict[str, Any]) -> None:
        """The run's summary as a memory (tagged with the run id), and the session closed."""
        brief = json.dumps({k: summary[k] for k in ("model", "mode", "dataset", "problems", "passed", "pass_rate")})
        with self.timing.run.phase("cortex_remember"):
            await store.remember(
                MemoryRecord(
                    title=f"run summary {self.run_id}",
                    content=json.dumps(summary, default=str),
                    category="summary",
                    tags=(self.run_id, "summary"),
                    importance=0.8,
                    metadata={"run_id": self.run_id},
                )
            )
        if session:
            with self.timing.run.phase("cortex_end_session"):
                await store.end_session(session, brief)
        summary["memory_lost_writes"] = getattr(store, "lost_writes", 0)

    def _summary(self, records: list[dict[str, Any]], duration: float, store: Any) -> dict[str, Any]:
        cfg = self.cfg
        final_mode = "iterative" if cfg.mode.name == "comparative" else cfg.mode.name
        main = [r for r in records if r["mode"] == final_mode]
        summary = {
            "run_id": self.run_id,
            "model": cfg.model.name,
            "mode": cfg.mode.name,
            "dataset": cfg.dataset.name,
        } | report.summarize(main, final_mode)
        if cfg.mode.name == "comparative":
            zero = report.summarize([r for r in records if r["mode"] == "zero_shot"], "zero_shot")
            summary["comparative"] = report.comparison(zero, summary)
        summary["duration"] = duration
        summary["throughput"] = len(records) / duration if duration > 0 else 0.0
        summary["isolation"] = next((r["isolation"] for r in records if r.get("isolation")), {})
        summary["interrupted"] = self._stop.is_set()
        return summary

    def _write_outputs(self, folder: RunFolder, summary: dict[str, Any], records: list[dict[str, Any]]) -> None:
        timing = self.timing.report()
        order = {}
        for index, record in enumerate(records):
            order.setdefault(record["task_id"], index)
        folder.write_json("results.json", {"summary": summary, "problems": records, "timing": timing})
        folder.write_json("timing.json", timing)
        if self.cfg.timing.export:
            export_report(timing, Path(self.cfg.timing.export))
        if self.cfg.timing.report:
            log.info("\n%s", format_report(timing))
        log.info("%s", report.format_summary(summary, str(self.folder_path)))


def resumed_config(folder: Path) -> DictConfig:
    """The interrupted run's own config (from its folder), with ``resume`` pointing at it."""
    if not (folder / "results.jsonl").is_file() or not (folder / "config.yaml").is_file():
        raise ConfigError(f"resume={folder}: not a koderz run folder (no results.jsonl and config.yaml)")
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), OmegaConf.load(folder / "config.yaml"))
    cfg.resume = str(folder)
    return cfg


def _plain_config(cfg: DictConfig) -> Any:
    """The resolved config without the ``hydra`` key (it does not resolve outside Hydra)."""
    data = OmegaConf.to_container(cfg, resolve=False)
    data.pop("hydra", None)
    return OmegaConf.create(OmegaConf.to_container(OmegaConf.create(data), resolve=True))
