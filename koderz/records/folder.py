"""``RunFolder``: the one reader and writer of a run folder's files.

    config.yaml      the resolved config              run.json      parts, status
    results.jsonl    one ProblemRecord per problem    results.json  summary + problems + timing
    attempts.jsonl   every attempt, with its program  samples.jsonl the final samples (EvalPlus format;
    traces.jsonl     a problem's spans                               samples.<mode>.jsonl per mode when
    timing.json      where the time went                             a run has two parts)
    koderz.log       the log                          debug/        raw answers (debug=true)
    tracking.json    what the MLflow run holds so far tracking.log  the MLflow logger's own log
    eval_results.json  EvalPlus's results layout, written on request (eval_results.<mode>.json per mode)

JSONL files are appended as each problem finishes and flushed at once, so a crash loses nothing
finished; JSON files are replaced atomically. A torn last line (a kill mid-write) is skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from koderz.errors import ConfigError
from koderz.records.models import (
    AttemptRecord,
    ProblemRecord,
    ProblemResult,
    RunResults,
    RunState,
    RunTiming,
    SampleRecord,
    SpeedResults,
    TraceRecord,
    TrackingProgress,
)
from koderz.vocab import Mode

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

CONFIG = "config.yaml"
STATE = "run.json"
RESULTS_JSONL = "results.jsonl"
ATTEMPTS = "attempts.jsonl"
TRACES = "traces.jsonl"
RESULTS = "results.json"
TIMING = "timing.json"
SPEED = "speed.json"
LOG = "koderz.log"
TRACKING = "tracking.json"
TRACKING_LOG = "tracking.log"
DEBUG = "debug"
HYDRA_OVERRIDES = ".hydra/overrides.yaml"
APPENDED = (RESULTS_JSONL, ATTEMPTS, TRACES)


class RunFolder:
    """The files of one run. ``parts`` are the modes a problem runs in (two for comparative runs)."""

    def __init__(self, path: Path, parts: Iterable[Mode] = (Mode.ZERO_SHOT,)) -> None:
        self.path = Path(path)
        self.parts = tuple(parts)
        self._handles: dict[str, IO[str]] = {}

    @classmethod
    def existing(cls, path: Path) -> RunFolder:
        """A folder a run wrote (its modes read from its config); ConfigError when it is not one."""
        folder = cls(path)
        if not folder.is_run_folder():
            raise ConfigError(f"{path}: not a koderz run folder (no {CONFIG} and {RESULTS_JSONL})")
        folder.parts = folder.read_mode().spec.parts
        return folder

    # names ----------------------------------------------------------------------------

    def samples_name(self, mode: Mode) -> str:
        return "samples.jsonl" if len(self.parts) <= 1 else f"samples.{mode.value}.jsonl"

    def eval_results_name(self, mode: Mode) -> str:
        """EvalPlus's ``eval_results.json`` of a part's samples (``python -m koderz.export evalplus``)."""
        return "eval_results.json" if len(self.parts) <= 1 else f"eval_results.{mode.value}.json"

    @property
    def tracking_log_path(self) -> Path:
        return self.path / TRACKING_LOG

    @property
    def debug_path(self) -> Path:
        return self.path / DEBUG

    @property
    def artifact_paths(self) -> list[Path]:
        """The files worth keeping beside a tracking run (those that exist): every part's samples,
        whatever ``parts`` this object was made with (a comparative run has one file per mode)."""
        samples = ["samples.jsonl", *(f"samples.{m.value}.jsonl" for m in Mode if m.spec.runs_problems)]
        names = [RESULTS, TIMING, SPEED, CONFIG, LOG, *samples]
        return [self.path / name for name in names if (self.path / name).is_file()]

    def has_config(self) -> bool:
        return (self.path / CONFIG).is_file()

    def is_run_folder(self) -> bool:
        return (self.path / CONFIG).is_file() and (
            (self.path / RESULTS_JSONL).is_file() or (self.path / SPEED).is_file()
        )

    def has_results(self) -> bool:
        return (self.path / RESULTS).is_file()

    # config and state -----------------------------------------------------------------

    def write_config(self, config: dict[str, Any]) -> None:
        self._replace(CONFIG, yaml.safe_dump(config, sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        path = self.path / CONFIG
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the run's config: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the run's config is not a mapping")
        return data

    def read_mode(self) -> Mode:
        """The mode the saved config names; ConfigError when it names none koderz knows."""
        mode = self.read_config().get("mode")
        name = str(mode.get("name")) if isinstance(mode, dict) else None
        if name not in set(Mode):
            raise ConfigError(f"{self.path}: its config names no known mode ({name!r})")
        return Mode(name)

    def read_overrides(self) -> list[str]:
        path = self.path / HYDRA_OVERRIDES
        if not path.is_file():
            return []
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        return [str(item) for item in data]

    def read_state(self) -> RunState | None:
        path = self.path / STATE
        return _load(RunState, path) if path.is_file() else None

    def write_state(self, state: RunState) -> None:
        self._replace(STATE, state.model_dump_json(indent=2))

    def read_tracking(self) -> TrackingProgress | None:
        path = self.path / TRACKING
        return _load(TrackingProgress, path) if path.is_file() else None

    def write_tracking(self, progress: TrackingProgress) -> None:
        self._replace(TRACKING, progress.model_dump_json(indent=2))

    # appending ------------------------------------------------------------------------

    def open(self) -> None:
        """Open the JSONL files for appending (creating the folder)."""
        self.path.mkdir(parents=True, exist_ok=True)
        for name in (*APPENDED, *(self.samples_name(m) for m in self.parts)):
            self._handles[name] = (self.path / name).open("a", encoding="utf-8")

    def append(self, result: ProblemResult, *, feedback: bool) -> None:
        """Write one finished problem to every JSONL file and flush; its record last, so a reader
        that sees the record (the tracking worker, a resume) also finds its attempts and trace."""
        record = result.record
        for attempt in result.attempts:
            self._write(ATTEMPTS, attempt)
        for sample in result.final_samples(feedback):
            self._write(self.samples_name(record.mode), sample)
        self._write(TRACES, result.trace())
        self._write(RESULTS_JSONL, record)

    def write_all(
        self,
        records: list[ProblemRecord],
        attempts: list[AttemptRecord],
        samples: dict[Mode, list[SampleRecord]],
        traces: list[TraceRecord],
    ) -> None:
        """Write every JSONL file at once (a merged run), replacing what was there."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._replace(RESULTS_JSONL, _jsonl(records))
        self._replace(ATTEMPTS, _jsonl(attempts))
        self._replace(TRACES, _jsonl(traces))
        for mode in self.parts:
            self._replace(self.samples_name(mode), _jsonl(samples.get(mode, [])))

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def _write(self, name: str, model: BaseModel) -> None:
        handle = self._handles[name]
        handle.write(model.model_dump_json() + "\n")
        handle.flush()

    # reading --------------------------------------------------------------------------

    def records(self) -> list[ProblemRecord]:
        """results.jsonl in finishing order (a later record of the same problem replaces an earlier one)."""
        latest: dict[tuple[Mode, str], ProblemRecord] = {}
        for record in _read_jsonl(self.path / RESULTS_JSONL, ProblemRecord):
            latest.pop(record.key, None)
            latest[record.key] = record
        return list(latest.values())

    def every_record(self) -> list[ProblemRecord]:
        """results.jsonl as written: every record in file order (``records`` keeps each problem's latest)."""
        return _read_jsonl(self.path / RESULTS_JSONL, ProblemRecord)

    def attempts(self) -> list[AttemptRecord]:
        return _read_jsonl(self.path / ATTEMPTS, AttemptRecord)

    def samples(self, mode: Mode) -> list[SampleRecord]:
        return _read_jsonl(self.path / self.samples_name(mode), SampleRecord)

    def traces(self) -> list[TraceRecord]:
        return _read_jsonl(self.path / TRACES, TraceRecord)

    def follow_records(self) -> JsonlTail[ProblemRecord]:
        """results.jsonl for a reader that follows the run: each read returns what was appended since."""
        return JsonlTail(self.path / RESULTS_JSONL, ProblemRecord)

    def follow_traces(self) -> JsonlTail[TraceRecord]:
        return JsonlTail(self.path / TRACES, TraceRecord)

    def write_results(self, results: RunResults) -> None:
        self._replace(RESULTS, results.model_dump_json(indent=2))

    def read_results(self) -> RunResults:
        return _load(RunResults, self.path / RESULTS)

    def write_timing(self, timing: RunTiming) -> None:
        self._replace(TIMING, timing.model_dump_json(indent=2))

    def read_timing(self) -> RunTiming | None:
        path = self.path / TIMING
        return _load(RunTiming, path) if path.is_file() else None

    def write_speed(self, results: SpeedResults) -> None:
        self._replace(SPEED, results.model_dump_json(indent=2))

    def read_speed(self) -> SpeedResults:
        return _load(SpeedResults, self.path / SPEED)

    # resume ---------------------------------------------------------------------------

    def keep_only(self, keep: Callable[[ProblemRecord], bool]) -> list[ProblemRecord]:
        """Rewrite the JSONL files with only the problems ``keep`` accepts (their lines byte for byte,
        the first record of each problem); torn lines and everything else go. Returns the kept records."""
        kept: dict[tuple[Mode, str], ProblemRecord] = {}
        lines: list[str] = []
        for line, record in _lines(self.path / RESULTS_JSONL, ProblemRecord):
            if record.key not in kept and keep(record):
                kept[record.key] = record
                lines.append(line)
        self._replace(RESULTS_JSONL, "".join(lines))
        keys = set(kept)
        self._filter(ATTEMPTS, AttemptRecord, lambda a: (a.mode, a.task_id) in keys)
        self._filter(TRACES, TraceRecord, lambda t: (t.mode, t.task_id) in keys)
        for mode in self.parts:
            tasks = frozenset(task for part, task in keys if part == mode)
            self._filter(self.samples_name(mode), SampleRecord, partial(_of_tasks, tasks))
        return list(kept.values())

    def _filter(self, name: str, model: type[M], keep: Callable[[M], bool]) -> None:
        path = self.path / name
        if path.is_file():
            self._replace(name, "".join(line for line, item in _lines(path, model) if keep(item)))

    def _replace(self, name: str, text: str) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)


def _jsonl(items: Iterable[BaseModel]) -> str:
    return "".join(item.model_dump_json() + "\n" for item in items)


def _of_tasks(tasks: frozenset[str], sample: SampleRecord) -> bool:
    return sample.task_id in tasks


class JsonlTail(Generic[M]):
    """The records appended to one JSONL file since the last ``read``. Only whole lines are taken
    (a line being written is taken by the next read); a file replaced or cut short (a resume's
    rewrite, a merge) is read again from its start."""

    def __init__(self, path: Path, model: type[M]) -> None:
        self.path = path
        self.model = model
        self._inode: int | None = None
        self._offset = 0
        self._lines = 0

    def read(self) -> tuple[list[M], bool]:
        """(the records appended since the last read, True when the file was read from its start again)."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return [], False
        with handle:
            stat = os.fstat(handle.fileno())
            again = self._inode is not None and (stat.st_ino != self._inode or stat.st_size < self._offset)
            if again:
                self._offset = self._lines = 0
            self._inode = stat.st_ino
            handle.seek(self._offset)
            data = handle.read()
        whole = data[: data.rfind(b"\n") + 1]
        self._offset += len(whole)
        lines = [line + "\n" for line in whole.decode("utf-8", errors="replace").split("\n")[:-1]]
        parsed = _parsed(self.path, self.model, enumerate(lines, self._lines + 1))
        self._lines += len(lines)
        return [item for _, item in parsed], again


def _lines(path: Path, model: type[M]) -> list[tuple[str, M]]:
    """(line, parsed) for every well-formed line; a torn or foreign line is skipped with a warning."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", errors="replace") as handle:
        return _parsed(path, model, enumerate(handle, 1))


def _parsed(path: Path, model: type[M], numbered: Iterable[tuple[int, str]]) -> list[tuple[str, M]]:
    out = []
    for number, line in numbered:
        if not line.strip():
            continue
        try:
            out.append((line if line.endswith("\n") else line + "\n", model.model_validate_json(line)))
        except ValidationError as exc:
            log.warning("%s line %d is not a %s record (skipped): %s", path, number, model.__name__, _first_error(exc))
    return out


def _read_jsonl(path: Path, model: type[M]) -> list[M]:
    return [item for _, item in _lines(path, model)]


def _load(model: type[M], path: Path) -> M:
    try:
        return model.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: not a koderz {model.__name__} file: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "file"
    return f"{where}: {first.get('msg', 'invalid')}"
