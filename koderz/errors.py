"""One exception type per domain, caught once at the edge (``__main__``), and the exit codes."""

from enum import IntEnum, StrEnum


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


class ModelErrorKind(StrEnum):
    """How a model call or preflight failed (``ModelError.kind``)."""

    CONNECTION = "connection"  # refused, reset, dropped, DNS: nothing answered
    TIMEOUT = "timeout"  # connected, but no answer within model.timeout
    BUSY = "busy"  # preflight: connected, but no answer in time (a busy or overloaded server)
    HTTP = "http"  # an HTTP error status not covered below
    RATE_LIMIT = "rate_limit"  # HTTP 429 after retries
    MALFORMED = "malformed"  # an answer that is not a usable completion
    REJECTED = "rejected"  # HTTP 401/403: the configured key was refused
    MISSING_KEY = "missing_key"  # no key configured (unset variable, or none set and the server wants one)
    UNKNOWN_MODEL = "unknown_model"  # the endpoint does not serve model.name
    ENDPOINT_DOWN = "endpoint_down"  # the circuit breaker gave up on the endpoint: no call is sent any more
    OTHER = "other"  # anything else (e.g. a replay file without the sample)


class ModelError(KoderzError):
    """A model call failed after retries, or preflight found a problem; ``kind`` says how."""

    def __init__(self, message: str, kind: ModelErrorKind = ModelErrorKind.OTHER) -> None:
        super().__init__(message)
        self.kind = ModelErrorKind(kind)

    def __reduce__(self) -> tuple[type, tuple[str, ModelErrorKind]]:
        return type(self), (str(self), self.kind)


class MemoryStoreError(KoderzError):
    """The memory server (Cortex) could not be reached or refused a call."""
