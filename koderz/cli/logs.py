"""The console shows koderz's own log records; other libraries' routine records (every HTTP
request, SDK retry notices) go to the run's ``koderz.log`` only.

Used by ``conf/hydra/job_logging/koderz.yaml`` on the console handler. Hydra's
``hydra.verbose`` brings them back: ``true`` for everything, or logger names
(``hydra.verbose=[openai,httpx2]``) for those.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

OWN = ("koderz", "__main__")
ROUTINE = ("koderz.models.retry",)  # koderz's own HTTP chatter (a retry notice per failed request)


class LibraryFilter(logging.Filter):
    """Pass koderz's records, any warning or error, and the loggers ``verbose`` names."""

    def __init__(self, verbose: bool | str | Iterable[str] | None = False) -> None:
        super().__init__()
        self.everything = verbose is True
        if isinstance(verbose, str):
            verbose = [verbose]
        named = verbose if verbose and not isinstance(verbose, bool) else ()
        self.shown = (*OWN, *(str(name) for name in named))

    def filter(self, record: logging.LogRecord) -> bool:
        if self.everything or record.levelno >= logging.WARNING:
            return True
        name = record.name
        if name in ROUTINE and name not in self.shown:
            return False
        return any(name == shown or name.startswith(shown + ".") for shown in self.shown)
