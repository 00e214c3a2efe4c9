"""Ollama provider: ``/api/chat`` on the official ``ollama.AsyncClient``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

import httpx
import ollama
import pydantic

from koderz.errors import ModelError
from koderz.models.base import CallContext, Completion, Message, Usage, WritesAnswers
from koderz.models.config import ModelConfig
from koderz.models.failure import brief, model_error
from koderz.models.pool import ClientPool
from koderz.models.retry import with_retries

log = logging.getLogger(__name__)

DEFAULT_HOST = "http://localhost:11434"
PREFLIGHT_TIMEOUT = 30.0  # seconds
RETRY_STATUS = frozenset({408, 429, 502, 503, 504})  # busy, model loading, proxy hiccups


def retryable(exc: BaseException) -> bool:
    """Timeouts, busy/loading statuses, dropped or refused connections and garbled bodies."""
    if isinstance(exc, ollama.ResponseError):
        return exc.status_code in RETRY_STATUS
    # httpx.TransportError covers timeouts, resets and "server disconnected";
    # ConnectionError is what the SDK raises for a refused connection.
    return isinstance(exc, (httpx.TransportError, ConnectionError, json.JSONDecodeError, pydantic.ValidationError))


class OllamaModel(WritesAnswers):
    """A local (or remote) Ollama model; our own retries with exponential backoff."""

    def __init__(self, cfg: ModelConfig, pool: ClientPool) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.endpoint = (cfg.host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST).rstrip("/")
        self._pool = pool
        self._options = {
            key: value
            for key, value in {
                "num_ctx": cfg.num_ctx,
                "temperature": cfg.temperature,
                "seed": cfg.seed,
                "num_predict": cfg.max_tokens,
            }.items()
            if value is not None
        }

    def _sdk(self) -> ollama.AsyncClient:
        key = ("ollama", self.endpoint, self.cfg.timeout)
        return self._pool.get(key, lambda: ollama.AsyncClient(host=self.endpoint, timeout=self.cfg.timeout))

    async def _chat(self, messages: list[Message]) -> Any:
        return await self._sdk().chat(
            model=self.name, messages=messages, options=self._options, keep_alive=self.cfg.keep_alive
        )

    def _failure(self, exc: Exception, retried: bool) -> ModelError:
        after = f" after {self.cfg.max_retries} retries" if retried else ""
        if isinstance(exc, ollama.ResponseError):
            hint = f"; run `ollama pull {self.name}` on the server" if exc.status_code == 404 else ""
            return model_error(self.name, self.endpoint, f"HTTP {exc.status_code}: {brief(exc.error)}{after}{hint}")
        if isinstance(exc, httpx.TimeoutException):
            return model_error(self.name, self.endpoint, f"timed out ({self.cfg.timeout}s per request){after}")
        if isinstance(exc, (httpx.TransportError, ConnectionError)):
            return model_error(
                self.name, self.endpoint, f"connection failed{after}: {brief(exc) or type(exc).__name__}"
            )
        return model_error(self.name, self.endpoint, f"malformed response ({type(exc).__name__}){after}")

    async def complete(self, messages: list[Message], context: CallContext) -> Completion:
        """One ``/api/chat`` call; ModelError at once if not retryable, else after retries."""
        start = time.perf_counter()
        try:
            response = await with_retries(
                lambda: self._chat(messages),
                max_retries=self.cfg.max_retries,
                first_backoff=self.cfg.retry_backoff,
                retryable=retryable,
                what=f"{self.name} {context.phase} {context.problem.task_id}",
            )
        except (ollama.ResponseError, httpx.TransportError, ConnectionError, ValueError) as exc:
            raise self._failure(exc, retryable(exc)) from exc
        usage = Usage(response.prompt_eval_count or 0, response.eval_count or 0)
        text = response.message.content or ""
        return Completion(text, usage, time.perf_counter() - start, response.model or self.name)

    async def preflight(self) -> None:
        """Server reachable and the model pulled (``/api/show``)."""
        try:
            async with asyncio.timeout(min(self.cfg.timeout, PREFLIGHT_TIMEOUT)):
                await self._sdk().show(self.name)
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise model_error(
                    self.name, self.endpoint, f"model not pulled; run `ollama pull {self.name}` on the server"
                ) from exc
            raise model_error(
                self.name, self.endpoint, f"preflight failed: HTTP {exc.status_code}: {brief(exc.error)}"
            ) from exc
        except (httpx.TransportError, ConnectionError, TimeoutError) as exc:
            raise model_error(
                self.name,
                self.endpoint,
                "cannot reach the Ollama server; start it (`ollama serve`) or set model.host / OLLAMA_HOST",
            ) from exc
        except (json.JSONDecodeError, pydantic.ValidationError) as exc:
            raise model_error(
                self.name, self.endpoint, f"preflight got a malformed response ({type(exc).__name__})"
            ) from exc

    async def aclose(self) -> None:
        """Nothing to do: the pooled client is closed by ``ClientPool.aclose``."""
