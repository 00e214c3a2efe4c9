"""One exception type per domain, caught once at the edge (``__main__``)."""


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
