"""OpenAI chat-completions provider (OpenAI, Anthropic's compatible endpoint, vLLM, llama.cpp...)."""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any
from urllib.parse import urlsplit

import openai

from koderz.errors import ModelError, ModelErrorKind
from koderz.models.base import CallContext, Completion, Message, Usage, WritesAnswers
from koderz.models.config import ModelConfig
from koderz.models.credentials import api_key, openai_url
from koderz.models.endpoint import EndpointDown, EndpointSettings
from koderz.models.failure import brief, listed, model_error
from koderz.models.pool import ClientPool
from koderz.models.retry import retry_after
from koderz.models.transport import (
    CONNECT_TIMEOUT,
    PREFLIGHT_TIMEOUT,
    PROBE_TIMEOUT,
    cause,
    connection_failed,
    unanswered,
)

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429})  # and every 5xx: busy, overloaded, proxy hiccups


class MalformedResponse(Exception):
    """The server answered 200 but the body is not a usable chat completion."""


def usage_of(response: Any) -> Usage:
    """Usage from a ChatCompletion; cached tokens are part of ``prompt_tokens``."""
    u = response.usage
    if u is None:
        return Usage()
    details = getattr(u, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(u.prompt_tokens or 0, u.completion_tokens or 0, cached)


def retryable(exc: BaseException) -> bool:
    """Connection failures, timeouts, busy/overloaded statuses and malformed bodies."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUS or exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, MalformedResponse))


def asked_delay(exc: BaseException) -> float | None:
    """The wait an error response asks for (Retry-After), if any."""
    return retry_after(exc.response.headers) if isinstance(exc, openai.APIStatusError) else None


def server_time(headers: Any, extra: dict[str, Any]) -> float | None:
    """Seconds the server spent on an answer, as it reports them: llama.cpp's ``timings`` in the
    body (``prompt_ms`` + ``predicted_ms``), else OpenAI's ``openai-processing-ms`` header."""
    timings = extra.get("timings")
    if isinstance(timings, dict):
        parts = [timings.get(k) for k in ("prompt_ms", "predicted_ms")]
        if all(isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 0 for p in parts):
            return sum(parts) / 1000  # type: ignore[arg-type]
    try:
        ms = float(headers.get("openai-processing-ms", ""))
    except (TypeError, ValueError):
        return None
    return ms / 1000 if math.isfinite(ms) and ms >= 0 else None


def versioned(url: str) -> bool:
    """Whether the URL's path names an API version (``/v1``, ``/v1beta``, ``/openai/v1``...)."""
    path = urlsplit(url).path
    return any(re.fullmatch(r"v\d+\w*", part) for part in path.split("/"))


def timeout(total: float, connect: float = CONNECT_TIMEOUT) -> openai.Timeout:
    """``total`` seconds for each read/write, at most ``connect`` to open the connection."""
    return openai.Timeout(total, connect=min(total, connect))


class OpenAIModel(WritesAnswers):
    """A chat model behind ``/v1/chat/completions`` on the official ``AsyncOpenAI`` client.

    Retries (connection failures, timeouts, 408/409/429/5xx honouring Retry-After, malformed
    bodies) are ours, one request at a time through the server's ``Endpoint``, so that its
    breaker sees every attempt and its concurrency limit holds; the SDK's own retries are off.
    """

    def __init__(self, cfg: ModelConfig, pool: ClientPool) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.url = openai_url(cfg)
        self._pool = pool
        self._client: openai.AsyncOpenAI | None = None
        settings = EndpointSettings(cfg.max_concurrency, cfg.breaker_failures, cfg.breaker_wait, cfg.retry_backoff)
        self.endpoint = pool.endpoint(f"openai {self.url}", settings, self._probe)

    def _sdk(self) -> openai.AsyncOpenAI:
        """This model's view of the pooled client (its own timeout; no SDK retries)."""
        if self._client is None:
            key = ("openai", self.url, self.cfg.api_key_env)
            shared = self._pool.get(key, lambda: openai.AsyncOpenAI(api_key=api_key(self.cfg), base_url=self.url))
            self._client = shared.with_options(timeout=timeout(self.cfg.timeout), max_retries=0)
        return self._client

    def _request(self, messages: list[Message], max_tokens: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.name, "messages": messages, self.cfg.max_tokens_param: max_tokens}
        body |= {"temperature": self.cfg.temperature, "seed": self.cfg.seed}
        return {key: value for key, value in body.items() if value is not None}

    async def _create(self, client: openai.AsyncOpenAI, body: dict[str, Any]) -> tuple[Any, float | None]:
        """The completion and the seconds the server says it spent (None: it did not say)."""
        try:
            raw = await client.chat.completions.with_raw_response.create(**body)
            response = raw.parse()
        except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
            raise MalformedResponse(f"malformed response body ({type(exc).__name__})") from exc
        if not getattr(response, "choices", None):
            raise MalformedResponse("response has no choices")
        return response, server_time(raw.headers, getattr(response, "model_extra", None) or {})

    def _error(self, what: str, kind: ModelErrorKind) -> ModelError:
        return model_error(self.name, self.url, what, kind)

    def _failure(self, exc: Exception) -> ModelError:
        """One line for an error our retries gave up on (or did not retry)."""
        after = f" after {self.cfg.max_retries} retries" if retryable(exc) else ""
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code in (401, 403):
                return self._key_refused(exc)
            kind = ModelErrorKind.RATE_LIMIT if exc.status_code == 429 else ModelErrorKind.HTTP
            return self._error(f"HTTP {exc.status_code}: {brief(exc.message)}{after}", kind)
        if connection_failed(exc):
            return self._error(f"connection failed{after}: {brief(cause(exc))}", ModelErrorKind.CONNECTION)
        if isinstance(exc, openai.APITimeoutError):
            return self._error(f"timed out ({self.cfg.timeout:g}s per request){after}", ModelErrorKind.TIMEOUT)
        return self._error(f"{brief(exc)}{after}", ModelErrorKind.MALFORMED)

    async def complete(self, messages: list[Message], context: CallContext) -> Completion:
        """One chat completion; ModelError once our retries are used up or the endpoint is down."""
        client = self._sdk()
        body = self._request(messages, self.cfg.max_tokens)
        try:
            (response, spent), latency, waited = await self.endpoint.send(
                lambda: self._create(client, body),
                self.cfg,
                retryable=retryable,
                what=f"{self.name} {context.phase} {context.problem.task_id}",
                asked_delay=asked_delay,
            )
        except EndpointDown as exc:
            raise self._error(str(exc), ModelErrorKind.ENDPOINT_DOWN) from exc
        except (openai.OpenAIError, MalformedResponse) as exc:
            raise self._failure(exc) from exc
        choice = response.choices[0]
        return Completion(
            text=choice.message.content or "",
            usage=usage_of(response),
            latency=latency,
            model=response.model or self.name,
            finish_reason=choice.finish_reason,
            queued=waited,
            server_time=spent,
        )

    async def _probe(self) -> None:
        """For the breaker: raises on a connection failure; any HTTP answer means the server is back."""
        try:
            await self._sdk().with_options(timeout=timeout(PROBE_TIMEOUT)).models.list()
        except openai.APIStatusError:
            return

    # preflight ----------------------------------------------------------------------

    async def preflight(self) -> None:
        """Key set (no network), server answering, model served: listed at ``GET /models`` when
        the server lists models, else found at ``GET /models/{id}``, else accepted by a 1-token
        call. No retries: one answer decides."""
        client = self._sdk().with_options(timeout=timeout(min(self.cfg.timeout, PREFLIGHT_TIMEOUT)))
        served = await self._listed_models(client)
        if served is None:
            if not await self._retrieved(client):
                await self._probe_with_one_token(client)
        elif self.name not in served:
            raise self._error(
                f"unknown model: the server lists {listed(sorted(served))}; set model.name to one of them",
                ModelErrorKind.UNKNOWN_MODEL,
            )

    async def _listed_models(self, client: openai.AsyncOpenAI) -> set[str] | None:
        """The ids at ``GET /models``; None when the server offers no usable list."""
        try:
            page = await client.models.list()
        except openai.APIConnectionError as exc:
            raise self._unanswered(exc) from exc
        except (openai.APIStatusError, openai.APIResponseValidationError, json.JSONDecodeError) as exc:
            # no list (404/405), or one this key may not read (Anthropic's, 401): the chat call decides
            log.debug("%s: no model list (%s); probing with a 1-token call", self.url, brief(exc))
            return None
        ids = {str(model.id) for model in getattr(page, "data", None) or [] if getattr(model, "id", None)}
        return ids or None

    async def _retrieved(self, client: openai.AsyncOpenAI) -> bool:
        """``GET /models/{id}`` answered 200 (servers without it, or with a key it refuses: False)."""
        try:
            await client.models.retrieve(self.name)
        except openai.APIConnectionError as exc:
            raise self._unanswered(exc) from exc
        except (openai.APIStatusError, openai.APIResponseValidationError, json.JSONDecodeError):
            return False
        return True

    async def _probe_with_one_token(self, client: openai.AsyncOpenAI) -> None:
        try:
            await client.chat.completions.create(**self._request([{"role": "user", "content": "ping"}], 1))
        except openai.APIStatusError as exc:
            status, message = exc.status_code, brief(exc.message)
            if status in (401, 403):
                raise self._key_refused(exc) from exc
            if status == 404 and not versioned(self.url):
                raise self._error(
                    f"HTTP 404 at {self.url}/chat/completions: model.base_url={self.url} lacks the API version "
                    f"path (OpenAI-compatible servers serve under /v1: try model.base_url={self.url}/v1)",
                    ModelErrorKind.HTTP,
                ) from exc
            if status == 404 or (status == 400 and "model" in message.lower()):
                raise self._error(
                    f"unknown model (HTTP {status}: {message}); check model.name against the models this endpoint serves",
                    ModelErrorKind.UNKNOWN_MODEL,
                ) from exc
            if status != 400:  # a 400 about the 1-token limit still proves the model exists
                kind = ModelErrorKind.RATE_LIMIT if status == 429 else ModelErrorKind.HTTP
                raise self._error(f"preflight call failed: HTTP {status}: {message}", kind) from exc
        except openai.APIConnectionError as exc:
            raise self._unanswered(exc) from exc
        except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
            raise self._error(
                f"preflight call returned a malformed body ({type(exc).__name__})", ModelErrorKind.MALFORMED
            ) from exc

    def _unanswered(self, exc: openai.APIConnectionError) -> ModelError:
        waited = min(self.cfg.timeout, PREFLIGHT_TIMEOUT)
        start, busy = "start it or fix model.base_url", "(a single-slot server serving another request?) or overloaded"
        return unanswered(self.name, self.url, exc, waited, "server", start, busy)

    def _key_refused(self, exc: openai.APIStatusError) -> ModelError:
        status = f"HTTP {exc.status_code}: {brief(exc.message)}"
        if not self.cfg.api_key_env:
            return self._error(
                f"the server wants an API key ({status}) but none is configured; "
                "set model.api_key_env to the environment variable that holds it",
                ModelErrorKind.MISSING_KEY,
            )
        return self._error(
            f"the key in ${self.cfg.api_key_env} was rejected ({status}); check the key", ModelErrorKind.REJECTED
        )
