"""Many problems: selection, start-up, bounded concurrency, the run folder, resume, Ctrl-C, summary.

``Runner.run()`` is the whole job once the plan is made: it overlaps the start-up work (data,
SDK imports, model preflight, the memory server, the sandbox), runs problems under
``asyncio.Semaphore(concurrency)``, appends each finished problem to the run folder at once (a
crash loses nothing finished), and writes the summary, the timing and the run's state. A resumed
run continues the same folder: problems with a verdict are kept byte for byte, the rest run again.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from koderz import report
from koderz.config import shard_of
from koderz.cortex.factory import open_memory_store, preload
from koderz.cortex.store import MemoryRecord, MemoryStore
from koderz.datasets.loaders import dataset_version
from koderz.datasets.problem import Problem
from koderz.datasets.selection import selected_ids
from koderz.errors import ConfigError, ExitCode
from koderz.evaluators import Evaluator
from koderz.experiment import Environment, Experiment, Role, Settings
from koderz.models.base import ModelClient
from koderz.models.config import ModelConfig
from koderz.models.endpoint import BreakerState
from koderz.models.prefill import server_continues
from koderz.models.preflight import preflight_all
from koderz.models.pricing import Prices
from koderz.models.registry import ClientPool, build_model, provider_module
from koderz.plan import Plan
from koderz.problems import content_key, is_benchmark, load_problems, release, runnable
from koderz.progress import Progress
from koderz.records import ProblemRecord, RunFolder, RunPart, RunResults, RunState, RunSummary, Span
from koderz.result_cache import DEFAULT_PATH, ResultCache, reference_times, run_key, uncacheable
from koderz.timing import RunClock, build_timing, export_report, format_report, interpreter_start
from koderz.vocab import CacheSetting, Mode, PartStatus, Phase

log = logging.getLogger(__name__)

GRACE_SECONDS = 5.0
PREPARE_SECONDS = 120.0  # the longest a stopped run waits for its evaluator to finish preparing (probes: 30 s each)


class RunObserver(Protocol):
    """Told about the run as it goes (progress on the console, tracking)."""

    def problem_done(self, record: ProblemRecord) -> None: ...


@dataclass
class RunOutcome:
    """What the job ends with: the summary and the process's exit code."""

    summary: RunSummary
    exit_code: ExitCode
    folder: Path


def select_problems(problems: Sequence[Problem], plan: Plan) -> list[Problem]:
    """``problems`` (explicit ids) wins over the ``[start, end)`` slice (rules: ``datasets.selection``).
    A shard ``K/N`` keeps every N-th of them from the K-th (so shards mix easy and hard tasks)."""
    config = plan.config
    by_id = {p.task_id: p for p in problems}
    chosen = [by_id[t] for t in selected_ids(list(by_id), plan.dataset, config.start, config.end, config.problems)]
    if config.shard is None:
        return chosen
    index, count = shard_of(config.shard)
    return chosen[index::count]


@dataclass
class _Stop:
    """Why no new problems start: Ctrl-C, or an endpoint that stopped answering."""

    reason: str | None = None
    interrupts: int = 0
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.event.set()

    @property
    def interrupted(self) -> bool:
        return self.interrupts > 0


class Runner:
    """One job: a model x dataset x mode over the selected problems, in ``folder``."""

    def __init__(
        self,
        plan: Plan,
        folder: Path,
        *,
        resuming: bool = False,
        overrides: Sequence[str] = (),
        observers: Sequence[RunObserver] = (),
        started: float | None = None,
    ) -> None:
        """``started``: when the job started (a sweep's job); default: the interpreter's start."""
        self.plan = plan
        self.started = started
        self.folder = RunFolder(folder, parts=plan.mode.spec.parts)
        self.resuming = resuming
        self.overrides = list(overrides)
        self.observers = list(observers)
        self.clock = RunClock()
        self.state: RunState
        self._stop = _Stop()
        self._lost_writes = 0
        self._prefill_continued: bool | None = None
        self._release: str | None = None  # the benchmark release the tasks come from
        self._content_key: str | None = None  # a benchmark's dataset version in the cache key (its tasks as loaded)
        self._skipped: dict[str, str] = {}  # task id -> why it is not run (by request)
        self._tasks: list[asyncio.Task[ProblemRecord | None]] = []
        self._pool = ClientPool()

    async def run(self) -> RunOutcome:
        """The whole job; Ctrl-C is handled from the first moment (see ``_install_interrupt``)."""
        self._install_interrupt()
        try:
            return await self._run()
        finally:
            self._remove_interrupt()

    async def _run(self) -> RunOutcome:
        folder = self.folder
        self.state = self._begin()
        done = await asyncio.to_thread(self._carry_over)
        pool = self._pool
        evaluator: Evaluator | None = None
        records: list[ProblemRecord] = []
        selected = 0
        try:
            folder.open()
            # models, data and the sandbox first: bad input found there leaves no memory store behind
            chosen, roles, evaluator = await self._start_up(pool)
            problems = self._runnable(chosen, roles["model"].client)
            selected = len(problems)
            log.info("run folder %s", folder.path)
            async with self._memory() as store:
                if self._stop.event.is_set():  # Ctrl-C during start-up: no problem starts
                    problems = []
                self._prefill_continued = await self._probe_prefill(roles["model"], problems)
                session = asyncio.create_task(self._start_session(store))  # problems need not wait
                env = self._environment(roles, evaluator, store)
                records = await self._run_all(problems, env, done)
                await self._remember_run(store, await session, records, selected)
        finally:
            folder.close()
            with self.clock.phase(Phase.SANDBOX_STOP):
                if evaluator is not None:
                    evaluator.close()
                await pool.aclose()
        return await asyncio.to_thread(self._finish, records, selected)

    # lifecycle ------------------------------------------------------------------------

    def _begin(self) -> RunState:
        """The run's state with a new part (the first, or a resume) written to run.json."""
        state = self.folder.read_state() if self.resuming else None
        if state is None:
            state = RunState(run_id=f"{self.folder.path.name}-{uuid.uuid4().hex[:6]}")
            self.folder.path.mkdir(parents=True, exist_ok=True)
            self.folder.write_config(self.plan.to_dict())
        for part in state.parts:
            if part.ended is None:  # killed: its work ended with the last file it wrote
                part.ended = max([part.started, *(s.end for s in part.spans), self._last_write()])
                part.duration = part.ended - part.started
                part.status = PartStatus.KILLED
        started = self.started if self.started is not None else interpreter_start()
        if state.parts and state.parts[-1].ended:
            started = max(started, state.parts[-1].ended)
        self.clock.spans.append(Span(name=Phase.LAUNCH, start=started, end=time.time()))
        state.parts.append(RunPart(started=started, overrides=self.overrides))
        self.folder.write_state(state)
        if self.resuming:
            log.info("resuming %s (part %d): problems with a verdict are kept", self.folder.path, len(state.parts))
        return state

    def _last_write(self) -> float:
        stamps = [p.stat().st_mtime for p in self.folder.path.glob("*.jsonl")]
        return max(stamps, default=0.0)

    def _carry_over(self) -> dict[tuple[Mode, str], ProblemRecord]:
        """A resumed run keeps the problems that have a verdict; the rest run again."""
        if not self.resuming:
            return {}
        kept = self.folder.keep_only(lambda record: record.has_verdict)
        return {record.key: record for record in kept}

    def _finish(self, records: list[ProblemRecord], selected: int) -> RunOutcome:
        plan, state, folder = self.plan, self.state, self.folder
        stop = self._stop
        summary = report.summarize_plan(plan, records, run_id=state.run_id, selected=selected)
        summary.interrupted = stop.interrupted
        summary.stopped_reason = stop.reason
        summary.resumed = len(state.parts) - 1
        summary.shard = plan.config.shard
        summary.memory_lost_writes = self._lost_writes
        summary.prefill_continued = self._prefill_continued
        summary.release = self._release
        summary.skipped = self._skipped
        part = state.parts[-1]
        part.spans = self.clock.spans
        part.status = (
            PartStatus.INTERRUPTED if stop.interrupted else PartStatus.STOPPED if stop.reason else PartStatus.FINISHED
        )
        part.ended = time.time()
        part.duration = part.ended - part.started
        timing = build_timing(state.parts, [s for p in state.parts for s in p.spans], folder.traces())
        summary.duration = timing.total_duration
        summary.throughput = len(records) / timing.total_duration if timing.total_duration > 0 else 0.0
        folder.write_results(RunResults(summary=summary, problems=records, timing=timing))
        folder.write_timing(timing)
        folder.write_state(state)
        if plan.config.timing.export:
            export_report(timing, Path(plan.config.timing.export))
        if plan.config.timing.report:
            log.info("\n%s", format_report(timing))
        log.info("%s", report.format_summary(summary, str(folder.path)))
        if summary.prefill_ignored and summary.prefill_continued is not False:  # else warned at the start
            log.warning("prompt %s: %s", summary.prompt, report.prefill_warning(summary))
        if summary.unanswered or summary.not_run:
            left = [
                f"{n} {what}"
                for n, what in ((summary.unanswered, "without a verdict"), (summary.not_run, "not run"))
                if n
            ]
            log.warning(
                "%s%d of %d problems answered (%s): the pass rate counts only the answered",
                "interrupted: " if summary.interrupted else "",
                summary.answered,
                summary.problems,
                ", ".join(left),
            )
        return RunOutcome(summary, report.exit_code(summary), folder.path)

    # start-up -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _memory(self) -> Any:
        cortex = self.plan.config.cortex
        with self.clock.phase(Phase.MEMORY_OPEN):
            await asyncio.to_thread(preload, cortex)  # before problems start: an import stalls the loop (GIL)
            manager = open_memory_store(cortex, self.state.run_id, defer=True)
            store = await manager.__aenter__()
        try:
            yield store
        except BaseException as exc:
            with self.clock.phase(Phase.MEMORY_CLOSE):
                await manager.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        with self.clock.phase(Phase.MEMORY_CLOSE):
            await manager.__aexit__(None, None, None)
        self._lost_writes = store.lost_writes

    async def _start_up(self, pool: ClientPool) -> tuple[list[Problem], dict[str, Role], Evaluator]:
        """Data, SDK imports, model preflight and the evaluator (the sandbox), overlapping; a
        benchmark's tasks are checked against its library environment before the preflight."""
        dataset_task = asyncio.create_task(self._timed(Phase.DATASET_LOAD, self._problems))
        sandbox_task = asyncio.create_task(self._prepared_evaluator(dataset_task))
        try:
            with self.clock.phase(Phase.IMPORTS):
                modules = sorted({provider_module(m.provider) for m in self._role_models().values()})
                await asyncio.gather(*(asyncio.to_thread(importlib.import_module, m) for m in modules))
            roles = {key: Role(build_model(model, pool), model) for key, model in self._role_models().items()}
            if is_benchmark(self.plan.config.dataset):  # no model request before the library check
                await dataset_task
            with self.clock.phase(Phase.PREFLIGHT):
                await preflight_all(role.client for role in roles.values())
            # e.g. no isolating containment (and none asked for), bad data: stop before any attempt
            return await dataset_task, roles, await sandbox_task
        except BaseException:
            dataset_task.cancel()
            await self._close_unused(sandbox_task)
            raise

    @staticmethod
    async def _close_unused(sandbox_task: asyncio.Task[Evaluator]) -> None:
        """The run stops before its first attempt: let the evaluator's preparation end, then close
        it. Not cancelled midway: asyncio (3.11) can hang cancelling a probe child it is spawning."""
        with contextlib.suppress(BaseException):
            await asyncio.wait({sandbox_task}, timeout=PREPARE_SECONDS)
        if not sandbox_task.done():
            sandbox_task.cancel()
        elif not sandbox_task.cancelled() and sandbox_task.exception() is None:
            sandbox_task.result().close()

    async def _prepared_evaluator(self, problems: Awaitable[Sequence[Problem]]) -> Evaluator:
        """The evaluator, prepared (``Evaluator.prepare``) while the problems load."""
        plan = self.plan
        evaluator: Evaluator = await self._timed(Phase.SANDBOX_START, plan.evaluator, plan.sandbox, plan.config.dataset)
        try:
            await evaluator.prepare(problems)
        except BaseException:
            evaluator.close()
            raise
        return evaluator

    def _problems(self) -> list[Problem]:
        """The selected problems that can run here (``koderz.problems``); the release and the
        tasks left out are kept for the summary."""
        plan = self.plan
        dataset = load_problems(plan.config.dataset)
        chosen = runnable(select_problems(dataset, plan), plan.config.dataset, plan.sandbox.library_paths)
        self._release, self._skipped = release(dataset), chosen.skipped
        if is_benchmark(plan.config.dataset):
            self._content_key = content_key(plan.config.dataset, dataset, plan.sandbox.library_paths)
        return chosen.problems

    async def _timed(self, phase: Phase, function: Callable[..., Any], *args: Any) -> Any:
        with self.clock.phase(phase):
            return await asyncio.to_thread(function, *args)

    def _role_models(self) -> dict[str, ModelConfig]:
        plan = self.plan
        roles = {"model": plan.coder}
        if plan.spec_writer is not None:
            roles["spec_model"] = plan.spec_writer
        if plan.reviewer is not None:
            roles["checkpoint_model"] = plan.reviewer
        return roles

    async def _probe_prefill(self, coder: Role, problems: list[Problem]) -> bool | None:
        """Whether the coder's server continues a prefilled answer (the prompt protocol sends one);
        None when there is no prefill, no server or no answer. Warns at once when it does not."""
        plan = self.plan
        if not plan.prompt.prefill or coder.client.endpoint is None or not problems:
            return None
        with self.clock.phase(Phase.PREFLIGHT):
            continued = await server_continues(coder.client, problems[0])
        if continued is False:
            log.warning(
                "prompt %s: %s does not continue a prefilled answer (it starts a new turn): the prompt is not "
                "EvalPlus's protocol as its tools run it; see docs/leaderboard.md",
                plan.prompt_label,
                coder.cfg.name,
            )
        return continued

    def _runnable(self, problems: list[Problem], coder: ModelClient) -> list[Problem]:
        """Leave out tasks the coder has no answer for (a replay file without them), with a warning."""
        missing = [p.task_id for p in problems if coder.sample_limit(p.task_id) == 0]
        if missing:
            log.warning(
                "the model has no samples for %d selected tasks (e.g. %s); they are left out",
                len(missing),
                missing[0],
            )
        skipped = set(missing)
        kept = [p for p in problems if p.task_id not in skipped]
        self._check_samples(kept, coder)
        return kept

    def _check_samples(self, problems: list[Problem], coder: ModelClient) -> None:
        """``n_samples`` against what the coder can give (a replay file): none with that many is bad
        input; some with fewer are named in a warning (their pass@k counts the samples there are)."""
        wanted = self.plan.config.n_samples
        if wanted <= 1 or not self.plan.mode.spec.samples or not problems:
            return
        limits = {p.task_id: coder.sample_limit(p.task_id) for p in problems}
        short = {task: limit for task, limit in limits.items() if limit is not None and limit < wanted}
        if len(short) == len(problems):
            most = max(short.values())
            raise ConfigError(
                f"n_samples={wanted}: the model has at most {most} samples per selected task "
                f"(e.g. {next(iter(short))}: {short[next(iter(short))]}); set n_samples={most} or give more samples"
            )
        if short:
            task, limit = next(iter(short.items()))
            log.warning(
                "n_samples=%d: %d selected tasks have fewer samples (e.g. %s: %d); their pass@k counts those",
                wanted,
                len(short),
                task,
                limit,
            )

    def _environment(self, roles: dict[str, Role], evaluator: Evaluator, store: MemoryStore) -> Environment:
        config = self.plan.config
        settings = Settings(
            n_samples=config.n_samples,
            max_iterations=config.max_iterations,
            checkpoint_interval=config.checkpoint_interval,
            spec_reuse=config.spec.reuse,
            prompt=self.plan.prompt,
            run_id=self.state.run_id,
            debug_dir=self.folder.debug_path if config.debug else None,
        )
        return Environment(
            coder=roles["model"],
            spec_writer=roles.get("spec_model"),
            reviewer=roles.get("checkpoint_model"),
            evaluator=evaluator,
            store=store,
            settings=settings,
            baseline=Prices.of(self.plan.baseline),
        )

    async def _start_session(self, store: MemoryStore) -> str | None:
        plan = self.plan
        with self.clock.phase(Phase.MEMORY_SESSION_START):
            return await store.start_session(
                f"koderz run {self.state.run_id}: {plan.coder.name} on {plan.dataset} ({plan.mode.value})"
            )

    # running ----------------------------------------------------------------------------

    async def _run_all(
        self, problems: list[Problem], env: Environment, done: dict[tuple[Mode, str], ProblemRecord]
    ) -> list[ProblemRecord]:
        parts = self.plan.mode.spec.parts
        jobs = [(p, mode) for p in problems for mode in parts]
        semaphore = asyncio.Semaphore(self.plan.config.concurrency)
        cache = await self._cache(env)
        progress = Progress(total=len(jobs), modes=len(parts) > 1)
        for record in done.values():
            progress.update(record, resumed=True)
        progress.begin()

        async def one(problem: Problem, mode: Mode) -> ProblemRecord | None:
            if (mode, problem.task_id) in done:
                return done[(mode, problem.task_id)]
            async with semaphore:
                if self._stop.event.is_set():
                    return None
                reference = reference_times(problem)
                result = await cache.get(mode, problem.task_id, reference) if cache is not None else None
                if result is None:
                    result = await Experiment(problem, mode, env).run()
                    if cache is not None and result.record.has_verdict:
                        await cache.put(mode, problem.task_id, result, reference)
                self.folder.append(result, feedback=mode.spec.feedback)
                progress.update(result.record)
                self._stop_if_an_endpoint_is_down()
                for observer in self.observers:
                    observer.problem_done(result.record)
                return result.record

        self._tasks = [asyncio.create_task(one(p, m)) for p, m in jobs]
        try:
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            progress.close()
        for (problem, mode), result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("%s (%s) was not recorded: %s: %s", problem.task_id, mode, type(result).__name__, result)
        records = [r for r in results if isinstance(r, ProblemRecord)]
        if self._stop.reason:
            log.warning(
                "%s: %d of %d problems finished; finish with resume=%s",
                self._stop.reason,
                len(records),
                len(jobs),
                self.folder.path,
            )
        return records

    def _stop_if_an_endpoint_is_down(self) -> None:
        """An endpoint whose breaker gave up: no new problems (they could not be answered)."""
        for endpoint in self._pool.endpoints:
            status = endpoint.status()
            if status.state is BreakerState.DOWN and self._stop.reason is None:
                log.error("%s stopped answering (%s): no new problems are sent", status.key, status.last_error)
                self._stop.set(f"{status.key} stopped answering")

    async def _cache(self, env: Environment) -> ResultCache | None:
        """The result cache of this run's key, which names the containment the evaluator uses and
        the weights' digest of each model whose server gives one; None (with a line why) when the
        run's results may not be cached."""
        plan = self.plan
        if CacheSetting.of(plan.config.cache) is CacheSetting.OFF:
            return None
        clients = {"coder": env.coder, "spec": env.spec_writer, "reviewer": env.reviewer}
        digests = {role: await r.client.weights() for role, r in clients.items() if r is not None}
        why = uncacheable(plan, digests)
        if why is not None:
            log.info("result cache not used: %s", why)
            return None
        if is_benchmark(plan.config.dataset):
            if self._content_key is None:
                raise RuntimeError("a benchmark's content key is computed when its tasks load")
            version = self._content_key
        else:
            version = await asyncio.to_thread(dataset_version, plan.dataset)
        mechanism = (await env.evaluator.containment_in_use()).mechanism
        return await asyncio.to_thread(ResultCache, DEFAULT_PATH, run_key(plan, version, mechanism, digests))

    def _install_interrupt(self) -> None:
        """First Ctrl-C: no new problems, running ones get a grace time; second: exit at once."""
        loop = asyncio.get_running_loop()

        def cancel_running() -> None:
            for task in self._tasks:
                task.cancel()

        def on_sigint() -> None:
            self._stop.interrupts += 1
            if self._stop.interrupts == 1:
                log.warning("Ctrl-C: no new problems; running ones get %.0f s, Ctrl-C again to quit now", GRACE_SECONDS)
                self._stop.set("interrupted")
                loop.call_later(GRACE_SECONDS, cancel_running)
            else:
                sys.stderr.write(f"koderz: interrupted twice, exiting now; finish with resume={self.folder.path}\n")
                os._exit(ExitCode.INTERRUPTED)

        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (some launchers)
            loop.add_signal_handler(signal.SIGINT, on_sigint)

    def _remove_interrupt(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    async def _remember_run(
        self, store: MemoryStore, session: str | None, records: list[ProblemRecord], selected: int
    ) -> None:
        """The run's figures as a memory (tagged with the run id), and the session closed."""
        plan = self.plan
        passed = sum(1 for r in records if r.passed and r.mode == plan.mode.spec.headline)
        brief = json.dumps(
            {"model": plan.coder.name, "mode": plan.mode.value, "dataset": plan.dataset}
            | {"problems": selected, "passed": passed}
        )
        with self.clock.phase(Phase.MEMORY_WRITE):
            await store.remember(
                MemoryRecord(
                    title=f"run summary {self.state.run_id}",
                    content=brief,
                    category="summary",
                    tags=(self.state.run_id, "summary"),
                    importance=0.8,
                    metadata={"run_id": self.state.run_id},
                )
            )
        if session:
            with self.clock.phase(Phase.MEMORY_SESSION_END):
                await store.end_session(session, brief)
