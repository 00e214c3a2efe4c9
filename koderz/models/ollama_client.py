"""Ollama provider: ``/api/chat`` on the official ``ollama.AsyncClient``."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import httpx
import ollama
import pydantic

from koderz.errors import ModelError, ModelErrorKind
from koderz.models.base import CallContext, Completion, Message, Usage, WritesAnswers
from koderz.models.config import ModelConfig
from koderz.models.endpoint import EndpointDown, EndpointSettings
from koderz.models.failure import brief, listed, model_error
from koderz.models.pool import ClientPool
from koderz.models.transport import (
    CONNECT_TIMEOUT,
    PREFLIGHT_TIMEOUT,
    PROBE_TIMEOUT,
    cause,
    connection_failed,
    unanswered,
)

log = logging.getLogger(__name__)

DEFAULT_HOST = "http://localhost:11434"
RETRY_STATUS = frozenset({408, 429, 502, 503, 504})  # busy, model loading, proxy hiccups
# what a call can raise: statuses, transport errors (ConnectionError = refused), garbled bodies
CALL_ERRORS = (
    ollama.ResponseError,
    httpx.TransportError,
    ConnectionError,
    json.JSONDecodeError,
    pydantic.ValidationError,
)


def retryable(exc: BaseException) -> bool:
    """Timeouts, busy/loading statuses, dropped or refused connections and garbled bodies."""
    if isinstance(exc, ollama.ResponseError):
        return exc.status_code in RETRY_STATUS
    return isinstance(exc, CALL_ERRORS)


def server_time(response: Any) -> float | None:
    """Seconds Ollama spent reading the prompt and generating (its nanosecond durations; None
    when it does not report them)."""
    parts = [getattr(response, "prompt_eval_duration", None), getattr(response, "eval_duration", None)]
    known = [p for p in parts if isinstance(p, int) and p >= 0]
    return sum(known) / 1e9 if known else None


def timeout(total: float) -> httpx.Timeout:
    """``total`` seconds for each read/write, at most CONNECT_TIMEOUT to open the connection."""
    return httpx.Timeout(total, connect=min(total, CONNECT_TIMEOUT))


class OllamaModel(WritesAnswers):
    """A local (or remote) Ollama model; our own retries with exponential backoff, one
    request at a time through the server's ``Endpoint`` (breaker, concurrency limit)."""

    def __init__(self, cfg: ModelConfig, pool: ClientPool) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.url = (cfg.host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST).rstrip("/")
        self._pool = pool
        options = {
            "num_ctx": cfg.num_ctx,
            "temperature": cfg.temperature,
            "seed": cfg.seed,
            "num_predict": cfg.max_tokens,
        }
        self._options = {key: value for key, value in options.items() if value is not None}
        settings = EndpointSettings(cfg.max_concurrency, cfg.breaker_failures, cfg.breaker_wait, cfg.retry_backoff)
        self.endpoint = pool.endpoint(f"ollama {self.url}", settings, self._probe)

    def _sdk(self) -> ollama.AsyncClient:
        key = ("ollama", self.url, self.cfg.timeout)
        return self._pool.get(key, lambda: ollama.AsyncClient(host=self.url, timeout=timeout(self.cfg.timeout)))

    async def _chat(self, messages: list[Message]) -> Any:
        return await self._sdk().chat(
            model=self.name, messages=messages, options=self._options, keep_alive=self.cfg.keep_alive
        )

    def _error(self, what: str, kind: ModelErrorKind) -> ModelError:
        return model_error(self.name, self.url, what, kind)

    def _failure(self, exc: Exception) -> ModelError:
        after = f" after {self.cfg.max_retries} retries" if retryable(exc) else ""
        if isinstance(exc, ollama.ResponseError):
            return self._status_error(exc, after)
        if connection_failed(exc):
            return self._error(f"connection failed{after}: {brief(cause(exc))}", ModelErrorKind.CONNECTION)
        if isinstance(exc, httpx.TimeoutException):
            return self._error(f"timed out ({self.cfg.timeout:g}s per request){after}", ModelErrorKind.TIMEOUT)
        return self._error(f"malformed response ({type(exc).__name__}){after}", ModelErrorKind.MALFORMED)

    def _status_error(self, exc: ollama.ResponseError, after: str = "") -> ModelError:
        status, message = exc.status_code, brief(exc.error)
        if status == 404:
            return self._error(
                f"HTTP 404: {message}; run `ollama pull {self.name}` on the server", ModelErrorKind.UNKNOWN_MODEL
            )
        if status in (401, 403):
            return self._error(f"HTTP {status}: {message}; check OLLAMA_API_KEY", ModelErrorKind.REJECTED)
        kind = ModelErrorKind.RATE_LIMIT if status == 429 else ModelErrorKind.HTTP
        return self._error(f"HTTP {status}: {message}{after}", kind)

    async def complete(self, messages: list[Message], context: CallContext) -> Completion:
        """One ``/api/chat`` call; ModelError at once if not retryable, else after retries."""
        try:
            response, latency, waited = await self.endpoint.send(
                lambda: self._chat(messages),
                self.cfg,
                retryable=retryable,
                what=f"{self.name} {context.phase} {context.problem.task_id}",
            )
        except EndpointDown as exc:
            raise self._error(str(exc), ModelErrorKind.ENDPOINT_DOWN) from exc
        except CALL_ERRORS as exc:
            raise self._failure(exc) from exc
        return Completion(
            text=response.message.content or "",
            usage=Usage(response.prompt_eval_count or 0, response.eval_count or 0),
            latency=latency,
            model=response.model or self.name,
            finish_reason=response.done_reason,
            queued=waited,
            server_time=server_time(response),
        )

    async def _probe(self) -> None:
        """For the breaker: raises on a connection failure; any HTTP answer means the server is back."""
        async with ollama.AsyncClient(host=self.url, timeout=timeout(PROBE_TIMEOUT)) as client:
            try:
                await client.list()
            except ollama.ResponseError:
                return

    # preflight ----------------------------------------------------------------------

    async def preflight(self) -> None:
        """Server answering and the model pulled (``/api/show``; on 404 the pulled models are
        listed in the message). No retries: one answer decides."""
        waited = min(self.cfg.timeout, PREFLIGHT_TIMEOUT)
        async with ollama.AsyncClient(host=self.url, timeout=timeout(waited)) as client:
            try:
                await client.show(self.name)
            except ollama.ResponseError as exc:
                if exc.status_code != 404:
                    raise self._status_error(exc) from exc
                raise await self._not_pulled(client) from exc
            except (httpx.TransportError, ConnectionError) as exc:
                raise self._unanswered(exc, waited) from exc
            except (json.JSONDecodeError, pydantic.ValidationError) as exc:
                raise self._error(
                    f"preflight got a malformed response ({type(exc).__name__})", ModelErrorKind.MALFORMED
                ) from exc

    async def weights(self) -> str | None:
        """The digest ``/api/tags`` gives for this model (``name`` or ``name:latest``); None when the
        server does not list it or cannot be asked."""
        names = {self.name, f"{self.name}:latest"}
        waited = min(self.cfg.timeout, PREFLIGHT_TIMEOUT)
        async with ollama.AsyncClient(host=self.url, timeout=timeout(waited)) as client:
            try:
                models = (await client.list()).models
            except (*CALL_ERRORS, ValueError) as exc:
                log.debug("%s: cannot read the model digest (%s)", self.url, brief(exc))
                return None
        return next((str(m.digest) for m in models if m.model in names and m.digest), None)

    async def _not_pulled(self, client: ollama.AsyncClient) -> ModelError:
        try:
            models = sorted(str(m.model) for m in (await client.list()).models if m.model)
        except (*CALL_ERRORS, ValueError) as exc:
            log.debug("%s: cannot list the pulled models (%s)", self.url, brief(exc))
            models = []
        has = f"the server has {listed(models)}" if models else "the server has no models pulled"
        return self._error(
            f"model not pulled ({has}); run `ollama pull {self.name}` on the server", ModelErrorKind.UNKNOWN_MODEL
        )

    def _unanswered(self, exc: Exception, waited: float) -> ModelError:
        start = "start it (`ollama serve`) or set model.host / OLLAMA_HOST"
        busy = "(OLLAMA_NUM_PARALLEL=1 serving another request?) or loading a model"
        return unanswered(self.name, self.url, exc, waited, "Ollama server", start, busy)
