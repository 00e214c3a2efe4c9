"""Built-in models that need no network: the reference solution and replayed samples."""

from __future__ import annotations

import ast
import gzip
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from koderz.datasets.problem import Problem
from koderz.errors import ConfigError, ModelError
from koderz.models.base import CallContext, Completion, Message, Usage, WritesAnswers
from koderz.vocab import Phase

if TYPE_CHECKING:
    from koderz.models.endpoint import Endpoint


class _Named(Protocol):
    name: str


class _WithSamples(Protocol):
    name: str
    samples: str | None


class ReferenceModel(WritesAnswers):
    """Answers every attempt with the dataset's canonical solution: instant and free.

    The program comes wrapped in a markdown fence so that code extraction is
    exercised as with a real model; spec and checkpoint phases get a short fixed text.
    """

    def __init__(self, cfg: _Named) -> None:
        self.name = cfg.name
        self.endpoint: Endpoint | None = None  # no server

    async def complete(self, messages: list[Message], context: CallContext) -> Completion:
        start = time.perf_counter()
        problem = context.problem
        if context.phase is Phase.GENERATE:
            text = fenced(problem.reference_program)
        else:
            text = guidance_text(problem, context.phase, self.name)
        return Completion(text=text, usage=Usage(), latency=time.perf_counter() - start, model=self.name)


RAW_SUFFIXES = (".raw.jsonl", ".raw.jsonl.gz", ".raw")  # EvalPlus's codegen: raw answers beside the sanitized


@dataclass(frozen=True)
class Sample:
    """One replayed answer: a whole program (``solution``) or a body (``completion``)."""

    text: str
    is_completion: bool

    def program(self, problem: Problem) -> str:
        """The whole program: human-eval completions are appended to the prompt."""
        return problem.prompt + self.text if self.is_completion else self.text

    def answer(self, problem: Problem) -> str:
        """The raw answer as ``evalplus.sanitize`` reads it (a completion follows the prompt and a newline)."""
        return problem.prompt + "\n" + self.text if self.is_completion else self.text


class ReplayModel(WritesAnswers):
    """Serves samples in EvalPlus's (and human-eval's) formats: the ``i``-th attempt at a task
    (``CallContext.sample_index``) gets the task's ``i``-th sample in file order.

    ``model.samples`` (read once, see ``load_samples``) holds programs, judged as they are; a
    ``*.raw.jsonl`` file or ``*.raw`` directory (``evalplus.codegen``'s raw answers) holds answers
    read as the run's protocol reads a model's. Spec and checkpoint phases get a short fixed text.
    """

    def __init__(self, cfg: _WithSamples) -> None:
        self.name = cfg.name
        self.endpoint: Endpoint | None = None  # no server
        self._samples = load_samples(cfg.samples)
        self.answers_programs = not str(cfg.samples).rstrip("/").endswith(RAW_SUFFIXES)

    def sample_limit(self, task_id: str) -> int:
        """How many samples the file holds for ``task_id`` (0 if none)."""
        return len(self._samples.get(task_id, ()))

    async def complete(self, messages: list[Message], context: CallContext) -> Completion:
        start = time.perf_counter()
        problem = context.problem
        if context.phase is not Phase.GENERATE:
            text = guidance_text(problem, context.phase, self.name)
        else:
            samples = self._samples.get(problem.task_id, [])
            index = context.sample_index
            if not 0 <= index < len(samples):
                raise ModelError(f"replay: no sample #{index} for {problem.task_id} (file has {len(samples)})")
            sample = samples[index]
            text = sample.program(problem) if self.answers_programs else sample.answer(problem)
        return Completion(text=text, usage=Usage(), latency=time.perf_counter() - start, model=self.name)


def load_samples(path: str | Path | None) -> dict[str, list[Sample]]:
    """Read a samples file into task id -> samples in file order; raise ConfigError. ``path``: a
    JSONL file (``task_id`` with ``solution`` or ``completion``; ``.gz``: gzip) or EvalPlus's folder."""
    if path is None or not str(path).strip():
        raise ConfigError(
            "model.samples is required: a JSONL file with task_id and solution or completion, or EvalPlus's samples directory"
        )
    where = f"model.samples={path}"
    file = Path(path).expanduser()
    samples: dict[str, list[Sample]] = {}
    try:
        if file.is_dir():
            samples = _load_directory(file)
        else:
            with _open(file) as lines:
                for number, line in enumerate(lines, start=1):
                    if line.strip():
                        task_id, sample = _parse_line(line, f"{where}: line {number}")
                        samples.setdefault(task_id, []).append(sample)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    if not samples:
        raise ConfigError(f"{where}: the file holds no samples")
    return samples


def _load_directory(root: Path) -> dict[str, list[Sample]]:
    """EvalPlus's directory layout: ``root/<task_id with / as _>/<n>.py``, in the order of ``n``."""
    samples: dict[str, list[Sample]] = {}
    for task_dir in sorted(root.iterdir()):
        if not task_dir.is_dir():
            continue
        files = [f for f in task_dir.iterdir() if f.suffix == ".py" and f.is_file()]
        files.sort(key=lambda f: (not f.stem.isdigit(), int(f.stem) if f.stem.isdigit() else 0, f.name))
        for file in files:
            # evalplus.data.load_solutions: every "_" of the folder's name is a "/" of the task id
            task_id = task_dir.name.replace("_", "/")
            samples.setdefault(task_id, []).append(Sample(file.read_text(encoding="utf-8"), is_completion=False))
    return samples


def _open(file: Path) -> IO[str]:
    if file.suffix == ".gz":
        return gzip.open(file, "rt", encoding="utf-8")
    return file.open(encoding="utf-8")


def _parse_line(line: str, where: str) -> tuple[str, Sample]:
    try:
        row: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if "task_id" not in row:
        raise ConfigError(f"{where}: missing 'task_id'")
    task_id = row["task_id"]
    if not isinstance(task_id, str) or not task_id:
        raise ConfigError(f"{where}: 'task_id' must be a non-empty string, got {task_id!r}")
    for key, is_completion in (("solution", False), ("completion", True)):
        if key in row:
            if not isinstance(row[key], str):
                raise ConfigError(f"{where}: '{key}' of {task_id} must be a string")
            return task_id, Sample(row[key], is_completion)
    raise ConfigError(f"{where}: {task_id} has neither 'solution' nor 'completion'")


def fenced(code: str, language: str = "python") -> str:
    """``code`` in a markdown fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{code.rstrip()}\n{fence}\n"


def guidance_text(problem: Problem, phase: Phase, model: str) -> str:
    """The fixed answer of a built-in model to the spec and checkpoint phases."""
    if phase is Phase.SPEC:
        return f"Specification of `{problem.entry_point}`:\n{_task_description(problem)}\n"
    if phase is Phase.REVIEW:
        return (
            f"Review: re-read the specification of `{problem.entry_point}` and check the "
            "edge cases its examples show; keep what passes, fix what fails.\n"
        )
    raise ModelError(f"{model}: unknown phase {phase.value!r} (expected one of {Phase.SPEC}, {Phase.REVIEW})")


def _task_description(problem: Problem) -> str:
    """The entry point's docstring (HumanEval), the module docstring (MBPP), or the prompt."""
    try:
        module = ast.parse(problem.prompt)
    except SyntaxError:
        return problem.prompt.strip()
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == problem.entry_point:
            return ast.get_docstring(node) or problem.prompt.strip()
    return ast.get_docstring(module) or problem.prompt.strip()
