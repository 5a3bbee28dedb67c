"""Evaluator over any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM or SGLang serving
InternVL3 with the evaluator adapter, or a hosted multimodal model). Standard library only.

One request per group: a system message (:data:`core.evaluator.prompt.SYSTEM`) and one user
message holding the original image and the group's masks as base64 PNG data URLs, each
introduced as ``Image-k``, then the text (:func:`core.evaluator.prompt.openai_user_content`).
Greedy (``temperature`` 0).

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

import base64
import contextlib
import email.utils
import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.parse
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


MAX_BODY_BYTES = 4 * 1024 * 1024
"""Largest reply body read (4 MiB; setting ``max_body_bytes``). A chat answer is a few KB; a
larger reply is refused without being stored. Not from the paper."""


class EndpointError(RuntimeError):
    """A request to the endpoint failed for good (message never holds the API key)."""


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


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
        max_body_bytes: int = MAX_BODY_BYTES,
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
        self.max_body_bytes = max(1024, int(max_body_bytes))
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
            "max_body_bytes",
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
        """``text`` with the API key (plain, JSON- or repr-escaped) and any bearer token masked."""
        text = str(text)
        key = self._api_key
        if key:
            forms = {key, json.dumps(key)[1:-1], key.encode("unicode_escape").decode("ascii"),
                     urllib.parse.quote(key, safe=""), base64.b64encode(key.encode()).decode("ascii")}
            for form in sorted(forms, key=len, reverse=True):
                if form:
                    text = text.replace(form, "***")
        return re.sub(r"(?i)(bearer\s+)(?!\*\*\*)\S+", r"\1***", text)

    def _snippet(self, body: bytes, n: int = 200) -> str:
        """At most ``n`` characters of a reply, redacted BEFORE cutting (a cut key is still a key)."""
        return self._redact(body.decode("utf-8", "replace"))[:n]

    def _once(self, url: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One POST bounded as a whole by ``timeout_s``: (status, headers, body ≤ ``max_body_bytes``).

        The deadline covers connecting, sending, the headers and the body: a watchdog shuts the
        socket down when it passes, so a server trickling bytes cannot hold the call longer.
        Raises ``TimeoutError``, ``OSError``, ``http.client.HTTPException`` or :class:`_TooLarge`.
        """
        parts = urllib.parse.urlsplit(url)
        deadline = time.monotonic() + self.timeout_s
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.hostname or "", parts.port, timeout=self.timeout_s)
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(self.timeout_s, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request("POST", path or "/", body=data, headers=headers)
            resp = conn.getresponse()
            status = resp.status
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
            cap = self.max_body_bytes if status < 400 else min(self.max_body_bytes, 64 * 1024)
            length = resp_headers.get("content-length", "")
            if status < 400 and length.isdigit() and int(length) > cap:
                raise _TooLarge(int(length))
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError("the reply did not finish in time")
                chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    if status >= 400:  # an error body only feeds a message: keep its start
                        chunks.append(chunk)
                        break
                    raise _TooLarge(size)
                chunks.append(chunk)
            if expired.is_set():  # the watchdog's shutdown reads as an early end of the body
                raise TimeoutError(f"no complete reply within {self.timeout_s:g} s")
            if status < 400 and length.isdigit() and size < int(length):
                raise http.client.IncompleteRead(b"", int(length) - size)
            return status, resp_headers, b"".join(chunks)
        except (OSError, http.client.HTTPException, ValueError):
            if expired.is_set():
                raise TimeoutError(f"no complete reply within {self.timeout_s:g} s") from None
            raise
        finally:
            watchdog.cancel()
            conn.close()

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + "/chat/completions"
        shown = _public_url(url)
        data = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        for attempt in range(self.max_retries + 1):
            wait = min(self.backoff_s * (2**attempt), self.max_backoff_s)
            try:
                with self._slots:
                    status, resp_headers, body = self._once(url, data, headers)
            except _TooLarge as exc:
                raise EndpointError(
                    f"reply from {shown} refused: {exc.size} bytes or more, over the "
                    f"{self.max_body_bytes}-byte limit (max_body_bytes)"
                ) from None
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # timeouts, refused or reset connections, truncated replies, bad status lines
                kind = "timed out" if isinstance(exc, TimeoutError) else "failed"
                msg = f"request to {shown} {kind} ({type(exc).__name__}: {exc})"
                if attempt == self.max_retries:
                    raise EndpointError(self._redact(msg + self._tries(attempt))) from None
            else:
                if status >= 400:
                    detail = " ".join(self._snippet(body).split())
                    msg = f"HTTP {status} from {shown}" + (f": {detail}" if detail else "")
                    if status not in RETRY_STATUS or attempt == self.max_retries:
                        raise EndpointError(self._redact(msg + self._tries(attempt)))
                    ra = _retry_after(resp_headers.get("retry-after"))
                    if ra is not None:
                        wait = min(ra, self.max_backoff_s)
                else:
                    try:
                        out = json.loads(body)
                    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                        raise EndpointError(
                            f"malformed response from {shown} (not JSON): {self._snippet(body)!r}"
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

    def _content(self, body: dict[str, Any]) -> str:
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            shown = self._redact(json.dumps(body, ensure_ascii=False, default=str))[:200]
            raise EndpointError(f"malformed response: no choices[0].message.content in {shown!r}") from None
        if isinstance(content, list):  # some servers return content parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
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
        except Exception as exc:  # noqa: BLE001  (a failed group, never an escaping exception)
            what = str(exc) if isinstance(exc, EndpointError) else f"{type(exc).__name__}: {exc}"
            return GroupResult(
                [None] * len(masks),
                None,
                "",
                text,
                self._redact(f"request failed: {what}"),
                time.perf_counter() - t,
            )
        raw = self._redact(raw)
        parsed = parse_scores(raw, len(masks))
        return GroupResult(
            parsed.scores,
            None if parsed.cot is None else self._redact(parsed.cot),
            raw,
            text,
            None if parsed.error is None else self._redact(parsed.error),
            time.perf_counter() - t,
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
