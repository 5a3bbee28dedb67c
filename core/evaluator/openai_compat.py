"""Evaluator over any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM or SGLang serving
InternVL3 with the evaluator adapter, or a hosted multimodal model). Standard library only.

One request per group: a system message (:data:`core.evaluator.prompt.SYSTEM`) and one user
message holding the original image and the group's masks as base64 PNG data URLs, each
introduced as ``Image-k``, then the text (:func:`core.evaluator.prompt.openai_user_content`).
Greedy (``temperature`` 0).

Reliability: each request has a timeout; timeouts, connection errors, HTTP 408/409/425/429 and
5xx are retried up to ``max_retries`` times with exponential backoff (``backoff_s`` · 2^attempt,
at most ``max_backoff_s``), honouring a ``Retry-After`` header (seconds or HTTP date). At most
``concurrency`` requests are in flight per client, however many groups or callers. Other HTTP
errors and malformed bodies fail that group at once. A failed group is not an exception: its
scores are ``None`` and ``parse_error`` starts with ``request failed:``.

Secrets: the API key comes from ``api_key`` or ``$REA2SEG_EVAL_API_KEY``. It is sent only in the
``Authorization`` header; it is not part of ``repr``, the evaluator's ``name``, any message, or
the trace, and any echo of it in a server's reply is masked before the reply is recorded.
"""

from __future__ import annotations

import base64
import email.utils
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from core.evaluator.base import EvaluatorBase, GroupResult, check_inputs, mask_image
from core.evaluator.parser import parse_scores
from core.evaluator.prompt import SYSTEM, openai_user_content, user_text

API_KEY_ENV = "REA2SEG_EVAL_API_KEY"
BASE_URL_ENV = "REA2SEG_EVAL_BASE_URL"
MODEL_ENV = "REA2SEG_EVAL_MODEL"
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EndpointError(RuntimeError):
    """A request to the endpoint failed for good (message never holds the API key)."""


def png_data_url(rgb: np.ndarray) -> str:
    """uint8 (H, W, 3) RGB → ``data:image/png;base64,…``."""
    ok, buf = cv2.imencode(
        ".png", np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])
    )
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), ``None`` if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _public_url(url: str) -> str:
    """``url`` without user:password and query (which may carry credentials)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class OpenAICompatEvaluator(EvaluatorBase):
    """Client for an OpenAI-style chat-completions endpoint (see module docstring).

    ``base_url`` ends before ``/chat/completions`` (e.g. ``http://127.0.0.1:8000/v1``).
    """

    backend = "openai-compatible"

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
        is_random: bool = False,
    ) -> None:
        if not base_url or not str(base_url).startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {_public_url(str(base_url))!r}")
        if not model:
            raise ValueError("the endpoint's model name is empty")
        self.base_url = str(base_url).rstrip("/")
        self.model = str(model)
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self.timeout_s = float(timeout_s)
        self.max_retries = max(0, int(max_retries))
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.concurrency = max(1, int(concurrency))
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.is_random = bool(is_random)
        self.name = f"{self.model} @ {_public_url(self.base_url)}"
        self._slots = threading.BoundedSemaphore(self.concurrency)

    @classmethod
    def from_config(
        cls, section: dict[str, Any], *, where: str = "evaluator.openai"
    ) -> OpenAICompatEvaluator:
        """From a config section (``base_url``, ``model``, ``api_key``, ``timeout_s``, ``max_retries``,
        ``backoff_s``, ``concurrency``, ``max_tokens``); ``base_url`` and ``model`` fall back to
        ``$REA2SEG_EVAL_BASE_URL`` / ``$REA2SEG_EVAL_MODEL``, the key to ``$REA2SEG_EVAL_API_KEY``."""
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
        )
        return cls(
            str(base_url),
            str(model),
            section.get("api_key"),
            **{k: section[k] for k in keys if k in section},
        )

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"OpenAICompatEvaluator({self.name!r}, api_key={key}, concurrency={self.concurrency})"
        )

    # -- HTTP ----------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return re.sub(r"(?i)(bearer\s+)\S+", r"\1***", text)

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + "/chat/completions"
        shown = _public_url(url)
        data = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        for attempt in range(self.max_retries + 1):
            wait = min(self.backoff_s * (2**attempt), self.max_backoff_s)
            req = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with self._slots, urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    body = resp.read()
            except urllib.error.HTTPError as exc:
                try:
                    detail = exc.read()[:200].decode("utf-8", "replace")
                except (OSError, ValueError):
                    detail = ""
                msg = f"HTTP {exc.code} from {shown}" + (
                    f": {' '.join(detail.split())}" if detail else ""
                )
                if exc.code not in RETRY_STATUS or attempt == self.max_retries:
                    raise EndpointError(self._redact(msg + self._tries(attempt))) from None
                ra = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                if ra is not None:
                    wait = min(ra, self.max_backoff_s)
            except OSError as exc:  # timeouts, refused connections, URLError
                reason = getattr(exc, "reason", exc)
                kind = "timed out" if isinstance(reason, TimeoutError) else "failed"
                msg = f"request to {shown} {kind} ({type(reason).__name__}: {reason})"
                if attempt == self.max_retries:
                    raise EndpointError(self._redact(msg + self._tries(attempt))) from None
            else:
                try:
                    out = json.loads(body)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    snippet = body[:200].decode("utf-8", "replace")
                    raise EndpointError(
                        self._redact(f"malformed response from {shown} (not JSON): {snippet!r}")
                    ) from None
                if not isinstance(out, dict):
                    raise EndpointError(
                        f"malformed response from {shown}: a JSON {type(out).__name__}, not an object"
                    )
                return out
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _tries(attempt: int) -> str:
        return f" (after {attempt + 1} attempts)" if attempt else ""

    @staticmethod
    def _content(body: dict[str, Any]) -> str:
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise EndpointError(
                f"malformed response: no choices[0].message.content in {str(body)[:200]!r}"
            ) from None
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise EndpointError(
                f"malformed response: message content is a {type(content).__name__}"
            )
        return content

    # -- scoring -------------------------------------------------------------------------------
    def _one(
        self, image_url: str, question: str, masks: list[np.ndarray], cot: bool
    ) -> GroupResult:
        text = user_text(question, len(masks), cot)
        t = time.perf_counter()
        try:
            urls = [image_url, *[png_data_url(mask_image(m)) for m in masks]]
            payload = {
                "model": self.model,
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": openai_user_content(urls, question, cot)},
                ],
            }
            raw = self._content(self._post(payload))
        except EndpointError as exc:
            return GroupResult(
                [None] * len(masks),
                None,
                "",
                text,
                f"request failed: {exc}",
                time.perf_counter() - t,
            )
        raw = self._redact(raw)
        parsed = parse_scores(raw, len(masks))
        return GroupResult(
            parsed.scores, parsed.cot, raw, text, parsed.error, time.perf_counter() - t
        )

    def score_groups(
        self, image_rgb: np.ndarray, question: str, groups: list[list[np.ndarray]], cot: bool
    ) -> list[GroupResult]:
        """One request per group, at most ``concurrency`` at a time; results in group order."""
        if not groups:
            return []
        check_inputs(image_rgb, groups)
        image_url = png_data_url(image_rgb)
        if len(groups) == 1:
            return [self._one(image_url, question, groups[0], cot)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(groups))) as pool:
            futures = [pool.submit(self._one, image_url, question, g, cot) for g in groups]
            return [f.result() for f in futures]
