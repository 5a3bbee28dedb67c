"""Evaluator over any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, hosted models).

Each group is one request whose user message holds the original image and the group's masks as
base64 PNG data URLs, then the text of :mod:`core.evaluator.prompt`. Requests run with a
concurrency limit; timeouts, HTTP 429 and 5xx are retried with exponential backoff (honouring
``Retry-After``); other errors and malformed bodies become a plain parse failure for that group.
The API key comes from the config or ``REA2SEG_EVAL_API_KEY`` and never appears in messages.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from core.evaluator.base import GroupResult, mask_image
from core.evaluator.parser import parse_scores
from core.evaluator.prompt import SYSTEM, user_text

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class EndpointError(RuntimeError):
    pass


def _data_url(rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError("could not encode image as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


@dataclass
class OpenAICompatEvaluator:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 1.0
    concurrency: int = 4
    max_tokens: int = 1024
    is_random: bool = False
    backend: str = "openai-compatible"

    def __post_init__(self) -> None:
        if self.api_key is None:
            self.api_key = os.environ.get("REA2SEG_EVAL_API_KEY")
        self.name = f"{self.model} @ {self.base_url}"

    def _redact(self, text: str) -> str:
        return text.replace(self.api_key, "***") if self.api_key else text

    def _post(self, payload: dict) -> dict:
        url = self.base_url.rstrip("/") + "/chat/completions"
        data = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        delay = self.backoff_s
        last = ""
        for attempt in range(self.max_retries + 1):
            req = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    body = resp.read()
                try:
                    return json.loads(body)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise EndpointError(f"malformed response body from {url}: {body[:200]!r}") from exc
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} from {url}"
                if exc.code not in RETRY_STATUS or attempt == self.max_retries:
                    raise EndpointError(self._redact(last)) from None
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else delay
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__} talking to {url}: {getattr(exc, 'reason', exc)}"
                if attempt == self.max_retries:
                    raise EndpointError(self._redact(last)) from None
                wait = delay
            time.sleep(min(wait, 60.0))
            delay *= 2
        raise EndpointError(self._redact(last))

    def _one(self, image_url: str, question: str, masks: list[np.ndarray], cot: bool) -> GroupResult:
        text = user_text(question, len(masks), cot)
        content = [{"type": "image_url", "image_url": {"url": image_url}}]
        content += [{"type": "image_url", "image_url": {"url": _data_url(mask_image(m))}} for m in masks]
        content.append({"type": "text", "text": text})
        payload = {"model": self.model, "max_tokens": self.max_tokens, "temperature": 0,
                   "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]}
        t = time.perf_counter()
        try:
            body = self._post(payload)
            raw = body["choices"][0]["message"]["content"]
            if not isinstance(raw, str):
                raise EndpointError(f"unexpected message content type {type(raw).__name__}")
        except (EndpointError, KeyError, IndexError, TypeError) as exc:
            msg = self._redact(str(exc) if isinstance(exc, EndpointError) else f"malformed response: missing {exc}")
            return GroupResult([None] * len(masks), None, "", text, f"request failed: {msg}", time.perf_counter() - t)
        parsed = parse_scores(raw, len(masks))
        return GroupResult(parsed.scores, parsed.cot, raw, text, parsed.error, time.perf_counter() - t)

    def score_groups(self, image_rgb: np.ndarray, question: str, groups: list[list[np.ndarray]], cot: bool) -> list[GroupResult]:
        image_url = _data_url(image_rgb)
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            futures = [pool.submit(self._one, image_url, question, g, cot) for g in groups]
            return [f.result() for f in futures]
