"""Evaluator over any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM or SGLang serving
InternVL3 with the evaluator adapter, or a hosted multimodal model). Standard library only.

One request per group: a system message (:data:`core.evaluator.prompt.SYSTEM`) and one user
message holding the original image and the group's masks as base64 PNG data URLs, each
introduced as ``Image-k``, then the text (:func:`core.evaluator.prompt.openai_messages`).
Greedy (``temperature`` 0).

Prompt format: the served adapter's format comes from ``adapter_path`` (its
``rea2seg_adapter.json``) or ``prompt_format``; construction refuses
(:class:`core.evaluator.adapter.PromptFormatError`) another prompt version, a ``max_patches``
other than the adapter's tile budget, or (``cot`` given) the other chain-of-thought choice. The
server does the tiling: ``max_patches`` states what it is set to (its ``max_dynamic_patch``),
which no request can check.

Reliability: ``timeout_s`` is a deadline for each request as a whole (connect, send, headers
and body; a server trickling bytes is cut off when it passes). Reply bodies over
``max_body_bytes`` (:data:`MAX_BODY_BYTES`, 4 MiB) are refused unread. Timeouts, connection
errors, truncated replies, HTTP 408/409/425/429 and 5xx are retried up to ``max_retries`` times with exponential backoff (``backoff_s`` · 2^attempt,
at most ``max_backoff_s``), honouring a ``Retry-After`` header (seconds or HTTP date). At most
``concurrency`` requests are in flight per client, however many groups or callers. Other HTTP
errors and malformed bodies fail that group at once. A failed group is not an exception (no
transport error escapes): its scores are ``None`` and ``parse_error`` starts with ``request failed:``.

Secrets: the API key comes from ``api_key`` or ``$REA2SEG_EVAL_API_KEY``. It is sent only in the
``Authorization`` header; it is not part of ``repr``, the evaluator's ``name``, any message, or
the trace: every text the client produces (error messages, reply snippets, raw answers, chain
of thought, parse errors) has the key masked as ``***`` before it leaves the client.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from core.evaluator.adapter import check_prompt_format, declared_format
from core.evaluator.base import EvaluatorBase, GroupResult, check_inputs, mask_image
from core.evaluator.parser import parse_scores
from core.evaluator.progress import TextFn
from core.evaluator.prompt import MAX_PATCHES, openai_messages, prompt_format, user_text
from core.llm_client import (  # noqa: F401  (API_KEY_ENV, MAX_BODY_BYTES re-exported)
    API_KEY_ENV,
    MAX_BODY_BYTES,
    EndpointError,
    OpenAICompatTransport,
    png_data_url,
)

BASE_URL_ENV = "REA2SEG_EVAL_BASE_URL"
MODEL_ENV = "REA2SEG_EVAL_MODEL"


class OpenAICompatEvaluator(OpenAICompatTransport, EvaluatorBase):
    """Stage-2 evaluator over an OpenAI-style chat-completions endpoint (see module docstring);
    the HTTP side is :class:`core.llm_client.OpenAICompatTransport`.
    """

    backend = "openai-compatible"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        is_random: bool = False,
        prompt_format: str | None = None,
        max_patches: int = MAX_PATCHES,
        cot: bool | None = None,
        **transport: Any,
    ) -> None:
        super().__init__(base_url, model, api_key, **transport)
        self.is_random = bool(is_random)
        self.max_patches = int(max_patches)
        check_prompt_format(prompt_format, self.max_patches, cot, who=f"evaluator {self.name}")
        self.prompt_format = prompt_format

    def format_for(self, cot: bool) -> str:
        """The prompt format id this evaluator sends with or without chain of thought."""
        return prompt_format(cot, self.max_patches)

    @property
    def image_tiling(self) -> str:
        """As recorded in the trace: the server tiles, with the budget it is said to use."""
        return f"by the server, said to be {self.max_patches} tiles per group"

    @classmethod
    def from_config(
        cls, section: dict[str, Any], *, where: str = "evaluator.openai", cot: bool | None = None
    ) -> OpenAICompatEvaluator:
        """From a config section (``base_url``, ``model``, ``api_key``, ``timeout_s``, ``max_retries``,
        ``backoff_s``, ``concurrency``, ``max_tokens``, ``adapter_path``, ``prompt_format``,
        ``max_patches``); ``base_url`` and ``model`` fall back to ``$REA2SEG_EVAL_BASE_URL`` /
        ``$REA2SEG_EVAL_MODEL``, the key to ``$REA2SEG_EVAL_API_KEY``. ``cot``: see the module
        docstring (prompt format)."""
        base_url = section.get("base_url") or os.environ.get(BASE_URL_ENV)
        model = section.get("model") or os.environ.get(MODEL_ENV)
        if not base_url or not model:
            missing = [k for k, v in (("base_url", base_url), ("model", model)) if not v]
            raise ValueError(
                f"the OpenAI-compatible evaluator needs {' and '.join(missing)}: set "
                + ", ".join(f"{where}.{k}" for k in missing)
                + f" in the config file, or ${BASE_URL_ENV} / ${MODEL_ENV}"
            )
        keys = (
            "timeout_s",
            "max_retries",
            "backoff_s",
            "max_backoff_s",
            "concurrency",
            "max_tokens",
            "temperature",
            "max_body_bytes",
        )
        declared = declared_format(
            section.get("prompt_format"),
            section.get("adapter_path"),
            setting=f"{where}.prompt_format",
        )
        return cls(
            str(base_url),
            str(model),
            section.get("api_key"),
            prompt_format=declared,
            max_patches=int(section.get("max_patches", MAX_PATCHES)),
            cot=cot,
            **{k: section[k] for k in keys if k in section},
        )

    # -- scoring -------------------------------------------------------------------------------
    def _payload(
        self, image_url: str, question: str, masks: list[np.ndarray], cot: bool
    ) -> dict[str, Any]:
        urls = [image_url, *[png_data_url(mask_image(m)) for m in masks]]
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "messages": openai_messages(urls, question, cot),
        }

    def score_group_stream(
        self,
        image_rgb: np.ndarray,
        question: str,
        masks: list[np.ndarray],
        cot: bool,
        on_text: TextFn,
    ) -> GroupResult:
        """Score one group with ``"stream": true``, handing each piece of the answer to
        ``on_text`` as the server sends it; the result is what :meth:`score_group` returns. A
        stream that fails (or a server that cannot stream) falls back to the ordinary request,
        with its retries; the text already handed out is then superseded by the result's."""
        check_inputs(image_rgb, [list(masks)])
        image_url = png_data_url(image_rgb)
        text = user_text(question, len(masks), cot)
        t = time.perf_counter()
        try:
            raw = self.post_stream(self._payload(image_url, question, masks, cot), on_text)
        except (EndpointError, ValueError, OSError):
            return self._one(image_url, question, masks, cot)
        return self._result(raw, text, len(masks), time.perf_counter() - t)

    def _result(self, raw: str, text: str, n: int, seconds: float) -> GroupResult:
        raw = self.redact(raw)
        parsed = parse_scores(raw, n)
        return GroupResult(
            parsed.scores,
            None if parsed.cot is None else self.redact(parsed.cot),
            raw,
            text,
            None if parsed.error is None else self.redact(parsed.error),
            seconds,
        )

    def _one(
        self, image_url: str, question: str, masks: list[np.ndarray], cot: bool
    ) -> GroupResult:
        text = user_text(question, len(masks), cot)
        t = time.perf_counter()
        try:
            raw = self.content(self.post(self._payload(image_url, question, masks, cot)))
        except Exception as exc:  # noqa: BLE001  (a failed group, never an escaping exception)
            what = str(exc) if isinstance(exc, EndpointError) else f"{type(exc).__name__}: {exc}"
            return GroupResult(
                [None] * len(masks),
                None,
                "",
                text,
                self.redact(f"request failed: {what}"),
                time.perf_counter() - t,
            )
        return self._result(raw, text, len(masks), time.perf_counter() - t)

    def _score_checked(
        self, image_rgb: np.ndarray, question: str, groups: list[list[np.ndarray]], cot: bool
    ) -> list[GroupResult]:
        """One request per group, at most ``concurrency`` at a time; results in group order."""
        image_url = png_data_url(image_rgb)
        if len(groups) == 1:
            return [self._one(image_url, question, groups[0], cot)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(groups))) as pool:
            futures = [pool.submit(self._one, image_url, question, g, cot) for g in groups]
            return [f.result() for f in futures]
