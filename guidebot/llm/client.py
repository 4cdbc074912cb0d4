"""One call wrapper around AsyncOpenAI: timeout, bounded retries (off by default), and a log
line per call with latency and token counts, never with text."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
import openai
from openai import AsyncOpenAI

from guidebot.settings import LlmSettings

log = logging.getLogger(__name__)
# openai's DEBUG records carry the request options, messages included: customer text must
# never reach a log, whatever level an operator sets.
logging.getLogger("openai").setLevel(logging.INFO)


class LlmUnavailable(Exception):
    """No answer: the LLM is off, down, too slow or answered nothing usable. Never carries
    prompt or answer text."""


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int


@dataclass(frozen=True)
class TokenUse:
    """What one answered call cost, as the endpoint reported it (its `usage`)."""

    tenant: str
    purpose: str
    model: str
    prompt_tokens: int
    completion_tokens: int


TokenMeter = Callable[[TokenUse], Awaitable[None]]


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str


class LlmClient:
    """`[llm]` settings → one AsyncOpenAI client; an empty base_url means off. `meter` is told
    the tokens of every call the endpoint answered with its usage, whether or not the answer
    is then used."""

    def __init__(self, settings: LlmSettings, *, retries: int = 0,
                 meter: TokenMeter | None = None) -> None:
        self.settings = settings
        self.retries = max(0, retries)
        self.meter = meter
        self._client: AsyncOpenAI | None = None
        if settings.base_url:
            # The client's own retries are off: `retries` here is the one bounded policy.
            self._client = AsyncOpenAI(base_url=settings.base_url,
                                       api_key=settings.api_key or "unset",
                                       timeout=settings.timeout_s, max_retries=0,
                                       http_client=_http_client())

    @property
    def enabled(self) -> bool:
        return self._client is not None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def complete(self, messages: Sequence[Message], *, tenant: str, purpose: str,
                       max_tokens: int = 400) -> Completion:
        """The model's answer; raises LlmUnavailable (logged with tenant and purpose)."""
        if self._client is None:
            raise LlmUnavailable("llm off")
        for attempt in range(1, self.retries + 2):
            try:
                return await self._once(messages, tenant, purpose, max_tokens)
            except LlmUnavailable as exc:
                if attempt > self.retries:
                    raise
                log.info("llm retry tenant=%s purpose=%s attempt=%d after %s", tenant, purpose,
                         attempt, exc)
        raise LlmUnavailable("unreachable")  # pragma: no cover - the loop returns or raises

    async def _once(self, messages: Sequence[Message], tenant: str, purpose: str,
                    max_tokens: int) -> Completion:
        assert self._client is not None
        started = time.monotonic()
        body = {"model": self.settings.model, "max_tokens": max_tokens, "temperature": 0.2,
                "messages": [{"role": m.role, "content": m.content} for m in messages]}
        try:
            # The plain POST of chat.completions.create: without its typed-parameter
            # transform and response model, which cost more CPU than the call itself.
            response = await asyncio.wait_for(self._client.post(
                "/chat/completions", body=body, cast_to=httpx.Response),
                timeout=self.settings.timeout_s)
            data = response.json()
        except (TimeoutError, openai.APITimeoutError):
            log.warning("llm timeout tenant=%s purpose=%s after_ms=%d", tenant, purpose,
                        _ms(started))
            raise LlmUnavailable("timeout") from None
        except openai.APIStatusError as exc:
            log.warning("llm error tenant=%s purpose=%s status=%s latency_ms=%d", tenant,
                        purpose, exc.status_code, _ms(started))
            raise LlmUnavailable(f"status {exc.status_code}") from None
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: a body that is not JSON
            log.warning("llm error tenant=%s purpose=%s kind=%s latency_ms=%d", tenant,
                        purpose, type(exc).__name__, _ms(started))
            raise LlmUnavailable(type(exc).__name__) from None
        latency = _ms(started)
        try:  # any missing or mistyped field is junk
            usage = data.get("usage")
            prompt_tokens = int(usage["prompt_tokens"]) if usage else 0
            completion_tokens = int(usage["completion_tokens"]) if usage else 0
            choices = data.get("choices")
            text = choices[0]["message"]["content"] if choices else None
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            log.warning("llm junk tenant=%s purpose=%s latency_ms=%d", tenant, purpose, latency)
            raise LlmUnavailable("junk response") from None
        log.info("llm call tenant=%s purpose=%s model=%s latency_ms=%d prompt_tokens=%d "
                 "completion_tokens=%d", tenant, purpose, self.settings.model, latency,
                 prompt_tokens, completion_tokens)
        if self.meter is not None and (prompt_tokens or completion_tokens):
            await self.meter(TokenUse(tenant, purpose, self.settings.model, prompt_tokens,
                                      completion_tokens))
        if not isinstance(text, str) or not text.strip():
            raise LlmUnavailable("empty answer")
        return Completion(text.strip(), prompt_tokens, completion_tokens, latency)


def _http_client() -> httpx.AsyncClient | None:
    """openai's aiohttp transport (the `openai[aiohttp]` extra): about a fifth of the CPU per
    call of its default httpx one, which a burst of customers waits on. Without the extra,
    openai's default."""
    try:
        return openai.DefaultAioHttpClient()  # type: ignore[no-any-return]
    except RuntimeError:
        return None


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
