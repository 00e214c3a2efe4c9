"""One program judged by a fresh ``Sandbox`` on its own event loop (for tests that compare settings)."""

from __future__ import annotations

import asyncio

from koderz.datasets.problem import Problem
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from koderz.sandbox.verdict import Verdict


def judged_once(config: SandboxConfig, problem: Problem, program: str) -> Verdict:
    """The verdict on ``program``; the sandbox is drained and closed before this returns."""

    async def judge() -> Verdict:
        sandbox = Sandbox(config)
        try:
            return await sandbox.evaluate(problem, program)
        finally:
            await sandbox.drain()
            sandbox.close()

    return asyncio.run(judge())
