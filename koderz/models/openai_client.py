"""OpenAI chat-completions provider (OpenAI, Anthropic's compatible endpoint, vLLM, llama.cpp...)."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import openai

from koderz.errors import ModelError
from koderz.models.base import CallContext, Completion, Message, Usage, WritesAnswers
from koderz.models.config import ModelConfig
from koderz.models.failure import brief, model_error
from koderz.models.pool import ClientPool
from koderz.models.retry import with_retries

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.openai.com/v1"
PREFLIGHT_TIMEOUT = 30.0  # seconds
NO_KEY = "no-key-needed"  # sent when api_key_env is null (self-hosted servers)


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


class OpenAIModel(WritesAnswers):
    """A chat model behind ``/v1/chat/completions`` on the official ``AsyncOpenAI`` client.

    The SDK retries timeouts, connection errors, 408/409/429/5xx with backoff itself
    (``cfg.max_retries``); this class also retries 200 responses with a malformed body.
    """

    def __init__(self, cfg: ModelConfig, pool: ClientPool) -> None:
        self.cfg = cfg
        self.name = cfg.name
        # the SDK itself falls back to OPENAI_BASE_URL, then api.openai.com
        self.endpoint = (cfg.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_ENDPOINT).rstrip("/")
        self._pool = pool
        self._client: openai.AsyncOpenAI | None = None

    def _api_key(self) -> str:
        env = self.cfg.api_key_env
        if not env:
            return NO_KEY
        key = os.environ.get(env)
        if not key:
            raise model_error(
                self.name,
                self.endpoint,
                f"environment variable {env} is not set; export {env}=<your key> "
                "(or set model.api_key_env to the variable that holds it)",
            )
        return key

    def _sdk(self) -> openai.AsyncOpenAI:
        """This model's view of the pooled client (its own timeout and retries)."""
        if self._client is None:
            key = ("openai", self.endpoint, self.cfg.api_key_env)
            shared = self._pool.get(
                key, lambda: openai.AsyncOpenAI(api_key=self._api_key(), base_url=self.cfg.base_url)
            )
            self._client = shared.with_options(timeout=self.cfg.timeout, max_retries=self.cfg.max_retries)
        return self._client

    def _request(self, messages: list[Message], max_tokens: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.name, "messages": messages}
        if max_tokens is not None:
            body[self.cfg.max_tokens_param] = max_tokens
        if self.cfg.temperature is not None:
            body["temperature"] = self.cfg.temperature
        if self.cfg.seed is not None:
            body["seed"] = self.cfg.seed
        return body

    async def _create(self, client: openai.AsyncOpenAI, body: dict[str, Any]) -> Any:
        try:
            response = await client.chat.completions.create(**body)
        except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
            raise MalformedResponse(f"malformed response body ({type(exc).__name__})") from exc
        if not getattr(response, "choices", None):
            raise MalformedResponse("response has no choices")
        return response

    def _failure(self, exc: Exception) -> ModelError:
        """One line for an error the SDK (and our malformed-body retries) gave up on."""
        retries = f"after {self.cfg.max_retries} retries"
        if isinstance(exc, openai.APIStatusError):
            retried = exc.status_code in (408, 409, 429) or exc.status_code >= 500  # what the SDK retries
            after = f" {retries}" if retried else ""
            return model_error(self.name, self.endpoint, f"HTTP {exc.status_code}: {brief(exc.message)}{after}")
        if isinstance(exc, openai.APITimeoutError):
            return model_error(self.name, self.endpoint, f"timed out ({self.cfg.timeout}s per request) {retries}")
        if isinstance(exc, openai.APIConnectionError):
            cause = brief(exc.__cause__ or exc)
            return model_error(self.name, self.endpoint, f"connection failed {retries}: {cause}")
        return model_error(self.name, self.endpoint, f"{brief(exc)} {retries}")

    async def complete(self, messages: list[Message], context: CallContext) -> Completion:
        """One chat completion; ModelError once the SDK's retries and ours are used up."""
        client = self._sdk()
        body = self._request(messages, self.cfg.max_tokens)
        start = time.perf_counter()
        try:
            response = await with_retries(
                lambda: self._create(client, body),
                max_retries=self.cfg.max_retries,
                first_backoff=self.cfg.retry_backoff,
                retryable=lambda exc: isinstance(exc, MalformedResponse),
                what=f"{self.name} {context.phase} {context.problem.task_id}",
            )
        except (openai.OpenAIError, MalformedResponse) as exc:
            raise self._failure(exc) from exc
        text = response.choices[0].message.content or ""
        return Completion(text, usage_of(response), time.perf_counter() - start, response.model or self.name)

    async def preflight(self) -> None:
        """Key set, endpoint reachable, model known (``models.retrieve``, else a 1-token call)."""
        client = self._sdk().with_options(timeout=min(self.cfg.timeout, PREFLIGHT_TIMEOUT), max_retries=1)
        try:
            await client.models.retrieve(self.name)
            return
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                raise self._rejected(exc) from exc
            # many compatible servers (vLLM, llama.cpp, Anthropic) lack GET /models/{id}
            log.debug("models.retrieve(%s) gave HTTP %s; probing with a 1-token call", self.name, exc.status_code)
        except openai.APIConnectionError as exc:
            raise self._unreachable(exc) from exc
        try:
            await client.chat.completions.create(**self._request([{"role": "user", "content": "ping"}], 1))
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                raise self._rejected(exc) from exc
            if exc.status_code == 404 or (exc.status_code == 400 and "model" in exc.message.lower()):
                raise model_error(
                    self.name,
                    self.endpoint,
                    f"unknown model (HTTP {exc.status_code}: {brief(exc.message)}); "
                    "check model.name against the models this endpoint serves",
                ) from exc
            if exc.status_code != 400:  # a 400 about the 1-token limit still proves the model exists
                raise model_error(
                    self.name, self.endpoint, f"preflight call failed: HTTP {exc.status_code}: {brief(exc.message)}"
                ) from exc
        except openai.APIConnectionError as exc:
            raise self._unreachable(exc) from exc
        except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
            raise model_error(
                self.name, self.endpoint, f"preflight call returned a malformed body ({type(exc).__name__})"
            ) from exc

    def _rejected(self, exc: openai.APIStatusError) -> ModelError:
        return model_error(
            self.name,
            self.endpoint,
            f"the key in ${self.cfg.api_key_env} was rejected "
            f"(HTTP {exc.status_code}: {brief(exc.message)}); check the key",
        )

    def _unreachable(self, exc: openai.APIConnectionError) -> ModelError:
        return model_error(
            self.name,
            self.endpoint,
            f"cannot reach the server ({brief(exc.__cause__ or exc)}); start it or fix model.base_url",
        )

    async def aclose(self) -> None:
        """Nothing to do: the pooled client is closed by ``ClientPool.aclose``."""
