"""A scripted model server on 127.0.0.1 for tests and benchmarks (a fake, named as one).

It speaks the OpenAI wire format (``POST /v1/chat/completions``, ``GET /v1/models``,
``GET /v1/models/{id}``) and Ollama's (``POST /api/chat``, ``GET /api/tags``, ``POST /api/show``),
so the real ``openai`` and ``ollama`` clients talk to it over HTTP. Answers come from a *script*:

* a Python callable ``script(body, route, call_index) -> Reply | str`` where ``body`` is
  the request JSON, ``route`` is ``"openai"`` or ``"ollama"`` and ``call_index`` counts
  chat calls (0-based, both routes together); or
* ``Rules`` (also the JSON-file form for the CLI)::

      {"models": ["gpt-4o-mini"],            # optional; null/absent = every name is known
       "any_model": false,                    # optional; true = answers any name, lists "models"
       "slots": 1,                            # optional; requests served at once (null = no limit)
       "latency": 0.3,                        # optional default delay (s) for every reply
       "faults": [{"status": 429}, {"fault": "drop"}],   # the first chat calls, in order
       "rules": [{"match": "regex", "replies": ["1st time", {"text": "2nd+ time"}]}],
       "default": "text or a reply object"}

  A rule matches when its regex is found in the request's messages (all contents joined);
  the first matching rule answers, with its n-th reply on its n-th match (the last reply
  repeats). A reply object has the fields of ``Reply``.

Every request is recorded (route, path, body, client connection), usage is reported
(tokens ~ characters / 4 unless the reply says otherwise), and faults can be injected:
latency, any HTTP status (429/500/503...), timeouts (a delay longer than the client's
timeout), malformed JSON, dropped connections, ``finish_reason: length`` answers; a reply can
carry llama.cpp's ``timings`` and any header (``openai-processing-ms``). The server
as a whole can be killed and restarted (same port or another), made to drop every request
on any route (``dropping``: a server that crashes on each request), hold its chat answers
(``hold``/``release``), serve one request at a time (``slots=1``, like llama.cpp: requests
queue, the model list too), demand an API key, and list models while answering any name
(``any_model``, like llama-cpp-python). It counts requests in flight and their maximum.
``GET /_stats`` returns the counters (requests, chat calls, distinct client connections,
maximum in flight) for callers in another process.

CLI: ``python tests/support/fakes/scripted_server.py --port 0 --script FILE`` prints
``http://127.0.0.1:PORT`` on its first line and serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from aiohttp import web

FAULTS = ("malformed", "drop")


@dataclass
class Reply:
    """What the server answers to one chat call."""

    text: str = ""
    status: int = 200
    error: str = ""  # error message when status != 200
    delay: float | None = None  # seconds before answering; None = the server's latency
    fault: str | None = None  # "malformed" (200 with broken JSON) or "drop" (close, no answer)
    input_tokens: int | None = None  # None = len(prompt) // 4
    output_tokens: int | None = None  # None = len(text) // 4
    cached_tokens: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"retry-after-ms": "5"}
    finish_reason: str = "stop"  # "length" = cut off at max_tokens (Ollama's done_reason too)
    # llama.cpp's ``timings`` object in the OpenAI body, e.g. {"prompt_ms": 12.5, "predicted_ms": 80.0}
    timings: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; choose one of {FAULTS}")

    @classmethod
    def of(cls, value: Reply | str | dict[str, Any]) -> Reply:
        """A Reply from a Reply, a plain text or a JSON object with Reply's fields."""
        if isinstance(value, Reply):
            return value
        if isinstance(value, str):
            return cls(text=value)
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown reply keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**value)


Script = Callable[[dict[str, Any], str, int], Reply | str]


def fenced(code: str, reasoning: str = "Here is my solution.") -> str:
    """A model-like answer: some reasoning, then the code in a python markdown fence."""
    return f"{reasoning}\n\n```python\n{code.strip()}\n```\n"


def prompt_text(body: dict[str, Any]) -> str:
    """All message contents of a chat request, joined by newlines."""
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []))


@dataclass
class Rule:
    """Answer requests whose messages match ``match`` with ``replies`` in order."""

    match: str
    replies: list[Reply]
    hits: int = 0

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.hits, len(self.replies) - 1)]
        self.hits += 1
        return reply


class Rules:
    """A script from data: leading faults, regex rules, a default reply."""

    def __init__(
        self,
        rules: Iterable[tuple[str, list[Reply | str | dict[str, Any]]]] = (),
        default: Reply | str | dict[str, Any] = "",
        faults: Iterable[Reply | str | dict[str, Any]] = (),
    ) -> None:
        self.rules = [Rule(pattern, [Reply.of(r) for r in replies]) for pattern, replies in rules]
        for rule in self.rules:
            if not rule.replies:
                raise ValueError(f"rule {rule.match!r} has no replies")
        self.default = Reply.of(default)
        self.faults = [Reply.of(f) for f in faults]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rules:
        rules = [(r["match"], r.get("replies") or [r["reply"]]) for r in data.get("rules", [])]
        return cls(rules, data.get("default", ""), data.get("faults", []))

    def __call__(self, body: dict[str, Any], route: str, call_index: int) -> Reply:
        if call_index < len(self.faults):
            return self.faults[call_index]
        text = prompt_text(body)
        for rule in self.rules:
            if re.search(rule.match, text):
                return rule.next_reply()
        return self.default


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    route: str  # openai.chat | openai.model | openai.models | ollama.chat | ollama.tags | ollama.show
    path: str
    body: dict[str, Any] | None
    connection: int  # 0-based number of the TCP connection it came on
    at: float  # time.monotonic() on arrival

    @property
    def messages(self) -> list[dict[str, Any]]:
        return (self.body or {}).get("messages", [])

    @property
    def prompt(self) -> str:
        """All message contents joined (see ``prompt_text``)."""
        return prompt_text(self.body or {})


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


class ScriptedServer:
    """The fake model server. ``async with ScriptedServer(script) as srv`` in async code,
    ``with ScriptedServer(script).in_thread() as srv`` from sync code (own loop, own thread).
    """

    def __init__(
        self,
        script: Script,
        *,
        models: Iterable[str] | None = None,
        any_model: bool = False,
        listing: bool = True,
        slots: int | None = None,
        api_key: str | None = None,
        latency: float = 0.0,
        port: int = 0,
        digest: str = "0" * 64,
    ) -> None:
        """``models`` = names it serves and lists (None = any name, an empty list);
        ``any_model`` = answers any name yet lists ``models`` (llama-cpp-python);
        ``listing=False`` drops ``GET /v1/models`` and ``/v1/models/{id}`` (a server without them);
        ``slots`` = requests served at once, the others queue (None = no limit);
        ``api_key`` = the OpenAI routes answer 401 unless sent ``Bearer API_KEY``;
        ``digest`` = the weights' digest ``GET /api/tags`` lists for every model."""
        self.digest = digest
        self.script = script
        self.listing = listing
        self.models = None if models is None else list(models)
        self.any_model = any_model
        self.slots = slots
        self.api_key = api_key
        self.latency = latency
        self.requested_port = port
        self.requests: list[Recorded] = []
        self.port = 0
        self.dropping = False  # True = every request (any route) is recorded, then its connection dropped
        self.in_flight = 0  # requests received and not yet answered (queued ones included)
        self.max_in_flight = 0
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._released = asyncio.Event()
        self._released.set()
        self._flight_changed = asyncio.Event()
        self._slot: asyncio.Semaphore | None = None
        self._chat_calls = 0
        # transport -> connection number; strong refs, so ids never repeat while we run
        self._transports: dict[Any, int] = {}

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """Base URL; Ollama's ``host``. The OpenAI ``base_url`` is ``openai_url``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    async def start(self) -> ScriptedServer:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._gate])
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        if self.listing:
            app.router.add_get("/v1/models", self._openai_models)
            app.router.add_get("/v1/models/{model:.+}", self._openai_model)
        app.router.add_post("/api/chat", self._ollama_chat)
        app.router.add_get("/api/tags", self._ollama_tags)
        app.router.add_post("/api/show", self._ollama_show)
        app.router.add_get("/_stats", self._stats)
        self._closing = asyncio.Event()
        self._slot = None if self.slots is None else asyncio.Semaphore(self.slots)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.requested_port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            assert self._closing is not None
            self._closing.set()  # wakes every delayed handler
            await self._runner.cleanup()
            self._runner = None

    async def kill(self) -> None:
        """Stop listening (connections are refused) and drop requests in flight; state is kept."""
        await self.stop()

    async def restart(self, port: int | None = None) -> ScriptedServer:
        """Listen again, on the same port (default) or on ``port`` (0 = any free one)."""
        self.requested_port = self.port if port is None else port
        return await self.start()

    def hold(self) -> None:
        """Chat answers wait (in flight, holding their slot) until ``release()``."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def until_in_flight(self, count: int) -> None:
        """Wait until ``count`` requests are in flight (callers bound it: ``asyncio.timeout``)."""
        while self.in_flight < count:
            self._flight_changed.clear()
            await self._flight_changed.wait()

    async def __aenter__(self) -> ScriptedServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[ScriptedServer]:
        """Serve from a background thread with its own event loop (for sync callers)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="scripted-server", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=10)
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    # ------------------------------------------------------------------ queries
    def hits(self, route: str) -> int:
        """How many requests reached ``route`` (e.g. ``"openai.chat"``)."""
        return sum(1 for r in self.requests if r.route == route)

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.route.endswith(".chat")]

    @property
    def connections(self) -> int:
        """TCP connections clients have opened so far (pooling keeps this small)."""
        return len(self._transports)

    def knows(self, model: str) -> bool:
        if self.models is None or self.any_model:
            return True
        return model in self.models or f"{model}:latest" in self.models or model.removesuffix(":latest") in self.models

    # ----------------------------------------------------------------- handlers
    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Counts requests in flight, queues them for a slot, checks the API key."""
        if request.path == "/_stats":
            return await handler(request)
        self._count_in_flight(+1)
        try:
            async with self._slot or contextlib.nullcontext():
                if self._unauthorized(request):
                    return web.json_response(
                        _openai_error("Incorrect API key provided.", "invalid_api_key"), status=401
                    )
                return await handler(request)
        finally:
            self._count_in_flight(-1)

    def _count_in_flight(self, change: int) -> None:
        self.in_flight += change
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._flight_changed.set()

    def _unauthorized(self, request: web.Request) -> bool:
        wanted = self.api_key is not None and request.path.startswith("/v1/")
        return wanted and request.headers.get("Authorization") != f"Bearer {self.api_key}"

    async def _record(self, request: web.Request, route: str) -> dict[str, Any] | None:
        body = None
        if request.can_read_body:
            body = json.loads(await request.read() or b"null")
        connection = self._transports.setdefault(request.transport, len(self._transports))
        self.requests.append(Recorded(route, request.path, body, connection, time.monotonic()))
        if self.dropping:
            _drop(request)
        return body

    async def _scripted(self, request: web.Request, route: str) -> tuple[dict[str, Any], Reply] | web.StreamResponse:
        body = await self._record(request, f"{route}.chat") or {}
        index = self._chat_calls
        self._chat_calls += 1
        reply = Reply.of(self.script(body, route, index))
        delay = self.latency if reply.delay is None else reply.delay
        assert self._closing is not None
        if delay > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
        if not self._released.is_set():
            await _first(self._released.wait(), self._closing.wait())
        if reply.fault == "drop":
            _drop(request)
        if reply.fault == "malformed":
            return web.Response(status=200, text='{"id": "broken", "choices": [{"mess', content_type="application/json")
        if reply.status != 200:
            message = reply.error or f"scripted HTTP {reply.status}"
            payload: Any = {"error": {"message": message, "type": "scripted", "code": str(reply.status)}}
            if route == "ollama":
                payload = {"error": message}
            return web.json_response(payload, status=reply.status, headers=reply.headers)
        return body, reply

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        result = await self._scripted(request, "openai")
        if isinstance(result, web.StreamResponse):
            return result
        body, reply = result
        model = body.get("model", "")
        if not self.knows(model):
            return web.json_response(_openai_missing(model), status=404)
        prompt_tokens = reply.input_tokens if reply.input_tokens is not None else _tokens(prompt_text(body))
        completion_tokens = reply.output_tokens if reply.output_tokens is not None else _tokens(reply.text)
        return web.json_response(
            {
                "id": f"chatcmpl-{self._chat_calls}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text},
                        "finish_reason": reply.finish_reason,
                    }
                ],
                **({"timings": reply.timings} if reply.timings is not None else {}),
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
                },
            },
            headers=reply.headers,
        )

    async def _openai_models(self, request: web.Request) -> web.Response:
        await self._record(request, "openai.models")
        listed = [{"id": n, "object": "model", "created": 0, "owned_by": "scripted"} for n in self.models or []]
        return web.json_response({"object": "list", "data": listed})

    async def _openai_model(self, request: web.Request) -> web.Response:
        await self._record(request, "openai.model")
        model = request.match_info["model"]
        if not self.knows(model):
            return web.json_response(_openai_missing(model), status=404)
        return web.json_response({"id": model, "object": "model", "created": 0, "owned_by": "scripted"})

    async def _ollama_chat(self, request: web.Request) -> web.StreamResponse:
        result = await self._scripted(request, "ollama")
        if isinstance(result, web.StreamResponse):
            return result
        body, reply = result
        model = body.get("model", "")
        if not self.knows(model):
            return web.json_response({"error": f"model '{model}' not found"}, status=404)
        return web.json_response(
            {
                "model": model,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "message": {"role": "assistant", "content": reply.text},
                "done": True,
                "done_reason": reply.finish_reason,
                "total_duration": 1_000_000,
                "load_duration": 0,
                "prompt_eval_count": reply.input_tokens
                if reply.input_tokens is not None
                else _tokens(prompt_text(body)),
                "prompt_eval_duration": 500_000,
                "eval_count": reply.output_tokens if reply.output_tokens is not None else _tokens(reply.text),
                "eval_duration": 500_000,
            },
            headers=reply.headers,
        )

    async def _ollama_tags(self, request: web.Request) -> web.Response:
        await self._record(request, "ollama.tags")
        names = self.models or []
        return web.json_response(
            {"models": [{"name": n, "model": n, "size": 0, "digest": self.digest, "details": {}} for n in names]}
        )

    async def _ollama_show(self, request: web.Request) -> web.Response:
        body = await self._record(request, "ollama.show") or {}
        model = body.get("model") or body.get("name") or ""
        if not self.knows(model):
            return web.json_response({"error": f"model '{model}' not found"}, status=404)
        return web.json_response({"modelfile": "", "parameters": "", "template": "", "details": {}, "model_info": {}})

    async def _stats(self, request: web.Request) -> web.Response:
        """Counters for out-of-process callers (the CLI form); its own request is not counted."""
        return web.json_response(
            {
                "requests": len(self.requests),
                "chat_calls": self._chat_calls,
                "connections": self.connections,
                "max_in_flight": self.max_in_flight,
            }
        )


def _drop(request: web.Request) -> None:
    """Close the connection with no status line and no body: the client sees it dropped."""
    assert request.transport is not None
    request.transport.abort()
    raise asyncio.CancelledError


async def _first(*waits: Any) -> None:
    """Return when the first of ``waits`` (coroutines) is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _openai_error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def _openai_missing(model: str) -> dict[str, Any]:
    return _openai_error(f"The model `{model}` does not exist or you do not have access to it.", "model_not_found")


def load_script(path: str | Path) -> tuple[Rules, dict[str, Any]]:
    """The JSON-file form: Rules plus the server options (models, any_model, slots, latency)."""
    data = json.loads(Path(path).read_text())
    options = {
        "models": data.get("models"),
        "any_model": bool(data.get("any_model", False)),
        "slots": data.get("slots"),
        "latency": float(data.get("latency", 0.0)),
    }
    return Rules.from_dict(data), options


async def _serve(port: int, script_path: str | None) -> None:
    if script_path:
        rules, options = load_script(script_path)
    else:
        rules, options = Rules(default="ok"), {}
    async with ScriptedServer(rules, port=port, **options) as server:
        print(server.url, flush=True)  # the CLI's output: the parent process reads the port
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--script", help="JSON script file (see the module docstring)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.script))


if __name__ == "__main__":
    main()
