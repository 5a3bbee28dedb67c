"""Time limits that tests used to assert, measured here instead (a loaded CI machine makes
wall-clock assertions flaky; the tests keep the functional checks).

Each line: what was timed, the measured seconds, the budget and their ratio (< 1: within it).

- the evaluator answer parser on each hostile text (``tests/unit/test_evaluator_parser.py``),
  budget 2 s each;
- refusing a 10 MB RLE string without decoding it (``tests/hostile/test_import_hostile.py``),
  budget 0.5 s;
- the OpenAI-compatible client against a server answering after 0.8 s, ``timeout_s`` 0.2 with
  one retry (``tests/unit/test_evaluator_openai.py``), budget 1.5 s;
- the same client against a server trickling a byte every 0.5 s, ``timeout_s`` 1.5 (body and
  headers) and ``timeout_s`` 1.0 with one retry (``tests/hostile/test_evaluator_hostile.py``),
  budgets ``timeout_s + 1`` and ``2 × timeout_s + 1``.

The latency of showing a sample whose trace loads slowly is in ``bench/gui_latency.py``.

    .venv/bin/python bench/deadlines.py [--strict]   # --strict: exit 1 when a ratio is over 1
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from core.evaluator.openai_compat import OpenAICompatEvaluator  # noqa: E402
from core.evaluator.parser import parse_scores  # noqa: E402
from core.masks import MaskError, decode_rle  # noqa: E402
from tests.hostile.servers import RawServer, http_reply  # noqa: E402
from tests.unit.test_evaluator_parser import HOSTILE_TEXTS  # noqa: E402


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _late_answer(conn, _n) -> None:
    time.sleep(0.8)
    conn.sendall(http_reply(200, b'{"choices": [{"message": {"content": "Mask 1: 0.1"}}]}'))


def _trickle_body(conn, _n) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    for _ in range(120):
        conn.sendall(b" ")
        time.sleep(0.5)


def _trickle_headers(conn, _n) -> None:
    for b in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
        conn.sendall(bytes([b]))
        time.sleep(0.5)


def _client_call(reply, timeout_s: float, retries: int) -> float:
    img = np.full((12, 16, 3), 90, np.uint8)
    mask = np.zeros((12, 16), bool)
    mask[2:6, 3:9] = True
    srv = RawServer(reply, max_requests=retries + 1)
    try:
        client = OpenAICompatEvaluator(
            srv.url,
            "evaluator-x",
            api_key="sk-bench",
            timeout_s=timeout_s,
            max_retries=retries,
            backoff_s=0.01,
        )
        t = time.perf_counter()
        r = client.score_group(img, "q", [mask], False)
        seconds = time.perf_counter() - t
    finally:
        srv.close()
    assert "timed out" in (r.parse_error or ""), r.parse_error
    return seconds


def measurements() -> list[tuple[str, float, float]]:
    """``(what, seconds, budget_seconds)`` for every former wall-clock assertion."""
    rows = []
    for i, text in enumerate(HOSTILE_TEXTS):
        rows.append(
            (
                f"parser, hostile text {i} ({len(text)} chars)",
                _timed(lambda t=text: parse_scores(t, 5)),
                2.0,
            )
        )

    def refuse_rle():
        try:
            decode_rle({"size": [4000, 4000], "counts": "0" * (10 * 1024 * 1024)})
        except MaskError:
            return
        raise AssertionError("a 10 MB RLE string was accepted")

    rows.append(("10 MB RLE refused", _timed(refuse_rle), 0.5))
    rows.append(
        ("client: 0.8 s answer, timeout 0.2 s, 1 retry", _client_call(_late_answer, 0.2, 1), 1.5)
    )
    rows.append(("client: trickled body, timeout 1.5 s", _client_call(_trickle_body, 1.5, 0), 2.5))
    rows.append(
        ("client: trickled headers, timeout 1.5 s", _client_call(_trickle_headers, 1.5, 0), 2.5)
    )
    rows.append(
        ("client: trickled body, timeout 1.0 s, 1 retry", _client_call(_trickle_body, 1.0, 1), 3.0)
    )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strict", action="store_true", help="exit 1 when a ratio is over 1")
    args = ap.parse_args()
    over = 0
    print(f"{'what':<52}{'seconds':>9}{'budget':>8}{'ratio':>7}")
    for what, seconds, budget in measurements():
        ratio = seconds / budget
        over += ratio > 1
        print(
            f"{what:<52}{seconds:>9.3f}{budget:>8.1f}{ratio:>7.2f}{'  OVER' if ratio > 1 else ''}"
        )
    return 1 if args.strict and over else 0


if __name__ == "__main__":
    sys.exit(main())
