"""One chat call to an OpenAI-compatible ``/v1/chat/completions`` endpoint, for any caller.

The transport is the evaluator's (:class:`core.evaluator.openai_compat.OpenAICompatEvaluator`):
its request deadline, retries with backoff on 408/409/425/429/5xx honouring ``Retry-After``,
concurrency limit, and API-key redaction apply to every call made here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.evaluator.openai_compat import (
    API_KEY_ENV,
    EndpointError,
    OpenAICompatEvaluator,
    _public_url,
    png_data_url,
)

__all__ = ["API_KEY_ENV", "ChatClient", "ChatReply", "EndpointError"]

_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


@dataclass(frozen=True)
class ChatReply:
    """The answer text (key-redacted), the token counts the server reported (may be empty), the
    call's wall time in seconds and the model name the server reported."""

    text: str
    usage: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    model: str = ""


class ChatClient:
    """A system prompt plus one user turn (images as PNG data URLs, then text) → the reply.

    ``api_key`` defaults to ``$REA2SEG_EVAL_API_KEY``; it is never part of ``repr``, ``name``
    or any message.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        concurrency: int = 4,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> None:
        self._t = OpenAICompatEvaluator(
            base_url, model, api_key, timeout_s=timeout_s, max_retries=max_retries, backoff_s=backoff_s,
            max_backoff_s=max_backoff_s, concurrency=concurrency, max_tokens=max_tokens, temperature=temperature,
        )
        self.model = self._t.model
        self.endpoint = _public_url(self._t.base_url)
        self.concurrency = self._t.concurrency

    def __repr__(self) -> str:
        return f"ChatClient({self.model!r} @ {self.endpoint!r})"

    def chat(self, system: str, user_text: str, images: Sequence[np.ndarray] = ()) -> ChatReply:
        """Raises :class:`EndpointError` when the request fails for good or the body is malformed."""
        content = [{"type": "image_url", "image_url": {"url": png_data_url(im)}} for im in images]
        content.append({"type": "text", "text": user_text})
        payload = {
            "model": self.model,
            "max_tokens": self._t.max_tokens,
            "temperature": self._t.temperature,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": content}],
        }
        t0 = time.perf_counter()
        body = self._t._post(payload)
        text = self._t._redact(self._t._content(body))
        raw_usage = body.get("usage")
        usage = {}
        if isinstance(raw_usage, dict):
            usage = {k: int(v) for k, v in raw_usage.items() if k in _USAGE_KEYS and isinstance(v, int | float)}
        reported = body.get("model")
        return ChatReply(text, usage, time.perf_counter() - t0, reported if isinstance(reported, str) else "")
