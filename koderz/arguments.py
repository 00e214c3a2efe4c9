"""The argument parser of koderz's helper commands (``python -m koderz.cortex``, ``.export``, ...):
argparse's, with bad input reported as one line (``prog: error: ...``, exit 2), no usage block."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from koderz.errors import ExitCode


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line naming the value; its subcommands' too."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(ExitCode.BAD_INPUT)
