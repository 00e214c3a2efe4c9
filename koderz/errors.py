"""One exception type per domain, caught once at the edge (``__main__``), and the exit codes."""

from enum import IntEnum


class ExitCode(IntEnum):
    """What ``python -m koderz`` exits with (documented in the README)."""

    OK = 0  # every selected problem has a verdict
    CRASHED = 1  # an unexpected error in koderz itself
    BAD_INPUT = 2  # a bad config value, file or credential: nothing ran
    UNANSWERED = 3  # some problems have no verdict (no answer from the model, harness failure, a dead endpoint)
    INTERRUPTED = 130  # Ctrl-C: the run stopped early; finish it with resume=RUN_FOLDER


class KoderzError(Exception):
    """Base class: an error koderz reports as one line and exit code 2."""


class ConfigError(KoderzError):
    """Bad configuration value or bad input file."""


class DatasetError(KoderzError):
    """A dataset could not be loaded or a task id does not exist."""


class SandboxError(KoderzError):
    """The sandbox itself failed (not the candidate program)."""


class ModelError(KoderzError):
    """A model call failed after retries, or preflight found a problem."""


class MemoryStoreError(KoderzError):
    """The memory server (Cortex) could not be reached or refused a call."""
