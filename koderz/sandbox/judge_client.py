"""Parent side of the judge server (``judge_server``): register problems, have each attempt judged.

The attempt's results pipe goes from the child straight to a judge of the server's pool; the
sandbox only gets the judge's small JSON verdict (one ``VERDICT`` frame, at most
``VERDICT_LIMIT`` bytes) and how the job ended (exit code and CPU time, so that a judge killed at
its CPU budget is told apart from one that crashed).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

from koderz.datasets.problem import Problem
from koderz.errors import SandboxError
from koderz.framing import FrameError, Kind, Message, read_frame_async, write_all
from koderz.sandbox.zygote import Zygote

VERDICT_LIMIT = 256 * 1024  # bytes of one judge's verdict (a few KB in practice)
ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding this koderz package
BOOT = f"import sys; sys.path.insert(0, {ROOT!r}); from koderz.sandbox.judge_server import main; main()"
JUDGE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


class JudgeJob:
    """One attempt's judging: its verdict, how it ended, and the pipe that tells the judge to stop."""

    def __init__(self, server: JudgeServer, job: int, stop_fd: int, verdict: asyncio.Task[bytes]) -> None:
        self.server, self.job, self.verdict = server, job, verdict
        self._stop_fd: int | None = stop_fd
        self.exit = server.exit_of(job)

    def stop(self) -> None:
        """The attempt is over: judge what the results pipe still holds, then answer."""
        if self._stop_fd is not None:
            os.close(self._stop_fd)
            self._stop_fd = None

    def kill(self) -> None:
        if not self.exit.done():
            self.server.kill(self.job)

    def close(self) -> None:
        self.stop()
        self.verdict.cancel()


class JudgeServer(Zygote):
    """The judge server (``judge_server``) bound to one event loop."""

    name = "sandbox judge server"

    def __init__(self) -> None:
        super().__init__([sys.executable, "-I", "-c", BOOT], JUDGE_ENV)
        self._keys: dict[int, tuple[Problem, asyncio.Task[str]]] = {}
        self._problem_keys = itertools.count(1)

    async def register(self, problem: Problem) -> str:
        """The server's key for ``problem`` (sent to it once per problem object)."""
        known = self._keys.get(id(problem))
        if known is None or known[0] is not problem:
            key = f"p{next(self._problem_keys)}"
            task = asyncio.get_running_loop().create_task(self._register(problem, key))
            known = self._keys[id(problem)] = (problem, task)
        return await asyncio.shield(known[1])

    async def _register(self, problem: Problem, key: str) -> str:
        payload = await asyncio.to_thread(pickle.dumps, problem, pickle.HIGHEST_PROTOCOL)
        read_fd, write_fd = os.pipe()
        try:
            await self.send(Message(Kind.REGISTER, key), [read_fd])
        finally:
            os.close(read_fd)
        await asyncio.to_thread(_write_and_close, write_fd, payload)
        return key

    async def judge(self, key: str, request: dict[str, Any], results_fd: int) -> JudgeJob:
        """Have a judge read and judge ``results_fd`` (the caller keeps and closes its copy)."""
        loop = asyncio.get_running_loop()
        stop_r, stop_w = os.pipe()
        verdict_r, verdict_w = os.pipe()
        try:
            request_text = json.dumps({**request, "key": key}).encode()
            job = await self.fork(Kind.JUDGE, [results_fd, stop_r, verdict_w], request_text)
            if job < 0:
                raise SandboxError(f"{self.name} could not start a judge")
        except BaseException:
            for fd in (stop_w, verdict_r):
                os.close(fd)
            raise
        finally:
            os.close(stop_r)
            os.close(verdict_w)
        return JudgeJob(self, job, stop_w, loop.create_task(_read_verdict(verdict_r)))

    def kill(self, job: int) -> None:
        """SIGKILL the judge of ``job`` if it is still judging it."""
        self.signal(job, Kind.KILL)


def _write_and_close(fd: int, data: bytes) -> None:
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


async def _read_verdict(fd: int) -> bytes:
    """The judge's verdict (empty: it wrote none); over the limit, cut or malformed: ``SandboxError``."""
    try:
        message = await read_frame_async(fd, VERDICT_LIMIT)
    except FrameError as exc:
        raise SandboxError(f"a judge's verdict: {exc}") from exc
    if message is not None and message.kind is not Kind.VERDICT:
        raise SandboxError(f"a judge wrote a {message.kind.name} message instead of its verdict")
    return message.fields[0] if message is not None else b""
