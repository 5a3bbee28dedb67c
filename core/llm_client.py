"""Chat calls to an OpenAI-compatible ``/v1/chat/completions`` endpoint, for any caller.

:class:`OpenAICompatTransport` is the one HTTP client: ``timeout_s`` is a deadline for each
request as a whole (connect, send, headers and body; a server trickling bytes is cut off when it
passes); reply bodies over ``max_body_bytes`` (:data:`MAX_BODY_BYTES`) are refused unread;
timeouts, connection errors, truncated replies, HTTP 408/409/425/429 and 5xx are retried up to
``max_retries`` times with exponential backoff (``backoff_s`` · 2^attempt, at most
``max_backoff_s``), honouring ``Retry-After``; at most ``concurrency`` requests are in flight per
client. The API key (``api_key`` or ``$REA2SEG_EVAL_API_KEY``) is sent only in the
``Authorization`` header and masked as ``***`` in every text the transport returns or raises.

:class:`ChatClient` (question generation, App. C) and the stage-2 evaluator
(:class:`core.evaluator.openai_compat.OpenAICompatEvaluator`) both use it. Standard library only,
plus OpenCV for :func:`png_data_url`.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import http.client
import json
import math
import os
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.textsafe import json_safe, storable_text

API_KEY_ENV = "REA2SEG_EVAL_API_KEY"
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


MAX_BODY_BYTES = 4 * 1024 * 1024
"""Largest reply body read (4 MiB; setting ``max_body_bytes``). A chat answer is a few KB; a
larger reply is refused without being stored. Not from the paper."""


class EndpointError(RuntimeError):
    """A request to the endpoint failed for good (message never holds the API key).

    ``paid`` is true when the server did answer (HTTP 2xx/3xx) but its reply was unusable: the
    request was most likely billed, and a caller that records requests should say so."""

    def __init__(self, message: str, *, paid: bool = False) -> None:
        super().__init__(message)
        self.paid = paid


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def png_data_url(rgb: np.ndarray) -> str:
    """uint8 (H, W, 3) RGB → ``data:image/png;base64,…``."""
    import cv2

    ok, buf = cv2.imencode(
        ".png", np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])
    )
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def retry_after(value: str | None) -> float | None:
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


def public_url(url: str) -> str:
    """``url`` without user:password and query (which may carry credentials)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class OpenAICompatTransport:
    """HTTP client of one OpenAI-style chat-completions endpoint (see the module docstring).

    ``base_url`` ends before ``/chat/completions`` (e.g. ``http://127.0.0.1:8000/v1``).
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
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if not base_url or not str(base_url).startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {public_url(str(base_url))!r}")
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
        self.max_body_bytes = max(1024, int(max_body_bytes))
        self.name = f"{self.model} @ {public_url(self.base_url)}"
        self._slots = threading.BoundedSemaphore(self.concurrency)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"{type(self).__name__}({self.name!r}, api_key={key}, concurrency={self.concurrency})"
        )

    # -- HTTP ----------------------------------------------------------------------------------
    def _key_forms(self) -> set[str]:
        """The API key as it may appear in a text: plain, JSON- or repr-escaped, URL-quoted,
        base64 (empty without a key)."""
        key = self._api_key
        if not key:
            return set()
        return {
            key,
            json.dumps(key)[1:-1],
            key.encode("unicode_escape").decode("ascii"),
            urllib.parse.quote(key, safe=""),
            base64.b64encode(key.encode()).decode("ascii"),
        }

    def redact(self, text: str) -> str:
        """``text`` with the API key (plain, JSON- or repr-escaped) and any bearer token masked."""
        text = str(text)
        for form in sorted(self._key_forms(), key=len, reverse=True):
            if form:
                text = text.replace(form, "***")
        return re.sub(r"(?i)(bearer\s+)(?!\*\*\*)\S+", r"\1***", text)

    def snippet(self, body: bytes, n: int = 200) -> str:
        """At most ``n`` characters of a reply, redacted BEFORE cutting (a cut key is still a key)."""
        return self.redact(body.decode("utf-8", "replace"))[:n]

    def _once(
        self, url: str, data: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """One POST bounded as a whole by ``timeout_s``: (status, headers, body ≤ ``max_body_bytes``).

        The deadline covers connecting, sending, the headers and the body: a watchdog shuts the
        socket down when it passes, so a server trickling bytes cannot hold the call longer.
        Raises ``TimeoutError``, ``OSError``, ``http.client.HTTPException`` or :class:`_TooLarge`.
        """
        parts = urllib.parse.urlsplit(url)
        deadline = time.monotonic() + self.timeout_s
        conn_cls = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
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

    def post(self, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + "/chat/completions"
        shown = public_url(url)
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
                    f"{self.max_body_bytes}-byte limit (max_body_bytes)",
                    paid=True,
                ) from None
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # timeouts, refused or reset connections, truncated replies, bad status lines
                kind = "timed out" if isinstance(exc, TimeoutError) else "failed"
                msg = f"request to {shown} {kind} ({type(exc).__name__}: {exc})"
                if attempt == self.max_retries:
                    raise EndpointError(self.redact(msg + self._tries(attempt))) from None
            else:
                if status >= 400:
                    detail = " ".join(self.snippet(body).split())
                    msg = f"HTTP {status} from {shown}" + (f": {detail}" if detail else "")
                    if status not in RETRY_STATUS or attempt == self.max_retries:
                        raise EndpointError(self.redact(msg + self._tries(attempt)))
                    ra = retry_after(resp_headers.get("retry-after"))
                    if ra is not None:
                        wait = min(ra, self.max_backoff_s)
                else:
                    try:
                        out = json.loads(body)
                    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                        raise EndpointError(
                            f"malformed response from {shown} (not JSON): {self.snippet(body)!r}",
                            paid=True,
                        ) from None
                    if not isinstance(out, dict):
                        raise EndpointError(
                            f"malformed response from {shown}: a JSON {type(out).__name__}, not an object",
                            paid=True,
                        )
                    return out
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def post_stream(self, payload: dict[str, Any], on_text: Any) -> str:
        """One streamed request (``"stream": true``, server-sent events): ``on_text(delta)`` for
        each piece of ``choices[0].delta.content`` as it arrives (each redacted); returns the
        whole text, redacted. A server that answers with a plain JSON body instead is read as
        :meth:`post` would, its text handed out as one piece. ``timeout_s`` bounds the whole
        stream and ``max_body_bytes`` its size. No retries: any failure raises
        :class:`EndpointError` (the caller may fall back to :meth:`post`).

        The key stays masked even when the server splits it across pieces: the text is
        redacted as a whole and the last few characters (one key's length) are held back
        until the next piece shows they are not the start of a key."""
        url = self.base_url + "/chat/completions"
        shown = public_url(url)
        parts = urllib.parse.urlsplit(url)
        data = json.dumps({**payload, "stream": True}).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        conn_cls = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_cls(parts.hostname or "", parts.port, timeout=self.timeout_s)
        deadline = time.monotonic() + self.timeout_s
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            with contextlib.suppress(OSError):
                if conn.sock is not None:
                    conn.sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(self.timeout_s, cut)
        watchdog.daemon = True
        pieces: list[str] = []
        sent = [0]  # characters of the redacted text handed out so far
        hold = max((len(f) for f in self._key_forms()), default=1) - 1

        def hand_out(final: bool = False) -> None:
            safe = self.redact("".join(pieces))
            end = len(safe) if final else max(sent[0], len(safe) - hold)
            if end > sent[0]:
                on_text(safe[sent[0] : end])
                sent[0] = end

        try:
            with self._slots:
                watchdog.start()
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                conn.request("POST", path or "/", body=data, headers=headers)
                resp = conn.getresponse()
                if resp.status >= 400:
                    detail = " ".join(self.snippet(resp.read(4096)).split())
                    raise EndpointError(f"HTTP {resp.status} from {shown}: {detail}")
                if "text/event-stream" not in (resp.getheader("content-type") or ""):
                    body = resp.read(self.max_body_bytes + 1)
                    if len(body) > self.max_body_bytes:
                        raise EndpointError(f"reply from {shown} is over max_body_bytes")
                    text = self.redact(self.content(json.loads(body)))
                    on_text(text)
                    return text
                size = 0
                while time.monotonic() < deadline:
                    line = resp.readline(65536)
                    if not line:
                        break
                    size += len(line)
                    if size > self.max_body_bytes:
                        raise EndpointError(f"stream from {shown} is over max_body_bytes")
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    chunk = line[5:].strip()
                    if chunk == b"[DONE]":
                        break
                    choice = (json.loads(chunk).get("choices") or [{}])[0]
                    delta = (choice.get("delta") or {}).get("content") or ""
                    if isinstance(delta, str) and delta:
                        pieces.append(delta)
                        hand_out()
                if expired.is_set() or time.monotonic() >= deadline:
                    raise TimeoutError(f"no complete stream within {self.timeout_s:g} s")
                hand_out(final=True)
        except EndpointError as exc:
            raise EndpointError(self.redact(str(exc))) from None
        except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
            msg = f"streamed request to {shown} failed ({type(exc).__name__}: {exc})"
            raise EndpointError(self.redact(msg)) from None
        finally:
            watchdog.cancel()
            conn.close()
        return self.redact("".join(pieces))

    @staticmethod
    def _tries(attempt: int) -> str:
        return f" (after {attempt + 1} attempts)" if attempt else ""

    def content(self, body: dict[str, Any]) -> str:
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            # json_safe: a body nested hundreds deep must not break the message itself
            shown = json.dumps(json_safe(body, 4), ensure_ascii=False)
            raise EndpointError(
                f"malformed response: no choices[0].message.content in {self.redact(shown)[:200]!r}",
                paid=True,
            ) from None
        if isinstance(content, list):  # some servers return content parts
            content = "".join(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        if not isinstance(content, str):
            raise EndpointError(
                f"malformed response: message content is a {type(content).__name__}", paid=True
            )
        return content


_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
_MAX_TOKENS_REPORTED = 2**53  # a larger (or negative, or non-finite) count is not a count


def usage_counts(raw: Any) -> dict[str, int]:
    """The token counts of a reply's ``usage``: whole, finite, 0 ≤ n < 2^53; others dropped
    (servers have sent ``NaN``, ``Infinity``, strings and booleans here)."""
    if not isinstance(raw, dict):
        return {}
    out = {}
    for k in _USAGE_KEYS:
        v = raw.get(k)
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
            continue
        if 0 <= v < _MAX_TOKENS_REPORTED:
            out[k] = int(v)
    return out


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
        self, base_url: str, model: str, api_key: str | None = None, **transport: Any
    ) -> None:
        """``transport``: the keyword options of :class:`OpenAICompatTransport` (and its defaults)."""
        self._t = OpenAICompatTransport(base_url, model, api_key, **transport)
        self.model = self._t.model
        self.endpoint = public_url(self._t.base_url)
        self.concurrency = self._t.concurrency

    def __repr__(self) -> str:
        return f"ChatClient({self.model!r} @ {self.endpoint!r})"

    def chat(self, system: str, user_text: str, images: Sequence[np.ndarray] = ()) -> ChatReply:
        """Raises :class:`EndpointError` when the request fails for good or the body is malformed
        (``paid`` tells which). The text has NUL and lone surrogates replaced (U+FFFD)."""
        content = [{"type": "image_url", "image_url": {"url": png_data_url(im)}} for im in images]
        content.append({"type": "text", "text": user_text})
        payload = {
            "model": self.model,
            "max_tokens": self._t.max_tokens,
            "temperature": self._t.temperature,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": content},
            ],
        }
        t0 = time.perf_counter()
        body = self._t.post(payload)
        text = storable_text(self._t.redact(self._t.content(body)))
        reported = body.get("model")
        return ChatReply(
            text,
            usage_counts(body.get("usage")),
            time.perf_counter() - t0,
            storable_text(reported)[:200] if isinstance(reported, str) else "",
        )
