"""Commands quoted in README.md and docs/*.md, as the reader sees them."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
PLACEHOLDER = re.compile(r"<[^>]+>|\bHOST\b|\bHEAD\b|MODEL_ID|\bDIR\b|RUN_FOLDER|\.\.\.|\bmy-|\bmodel=a\b|resume=|\\$")


@dataclass(frozen=True)
class Quoted:
    """A ``$ command`` line of a doc and the output lines the doc shows under it."""

    doc: str
    command: str
    output: tuple[str, ...]

    @property
    def args(self) -> list[str]:
        return shlex.split(self.command)


def transcripts() -> Iterator[Quoted]:
    """Every ``$ python -m koderz ...`` in a plain fenced block, with the lines printed under it."""
    for doc in DOCS:
        for _, body in FENCE.findall(doc.read_text()):
            lines = body.splitlines()
            for i, line in enumerate(lines):
                if line.startswith("$ python -m koderz"):
                    output = []
                    for after in lines[i + 1 :]:
                        if after.startswith("$ "):
                            break
                        output.append(after)
                    yield Quoted(doc.name, line[2:], tuple(output))


def koderz_commands() -> Iterator[Quoted]:
    """Every ``python -m koderz ...`` line of a bash block (comments and ``VAR=...`` prefixes kept out)
    that names nothing left to the reader (no ``<date>``, ``HOST``, ``MODEL_ID``...)."""
    for doc in DOCS:
        for lang, body in FENCE.findall(doc.read_text()):
            if lang != "bash":
                continue
            for raw in body.splitlines():
                line = raw.split(" #", 1)[0].strip()
                if "python -m koderz " not in line or line.startswith("#") or PLACEHOLDER.search(line):
                    continue
                command = line[line.index("python -m koderz ") :].split("&&")[0].strip()
                yield Quoted(doc.name, command, ())
