"""Candidate masks read back from a trace decode on first use, to the same mask."""

from __future__ import annotations

import numpy as np
import pytest

from core.masks import MaskError, encode_rle
from core.trace import Candidate, PipelineTrace
from tests.unit.conftest import box_mask


def test_a_loaded_candidate_decodes_its_mask_once_on_first_use(monkeypatch):
    import core.trace as trace_mod

    masks = [box_mask((30, 40), i, i + 9, 2 * i, 2 * i + 7) for i in range(3)]
    tr = PipelineTrace(
        "q",
        (30, 40),
        "t",
        {},
        False,
        {},
        None,
        None,
        None,
        None,
        None,
        [Candidate(i, "amg", i, m, 0.5) for i, m in enumerate(masks)],
    )
    calls = []
    real = trace_mod.decode_rle
    monkeypatch.setattr(trace_mod, "decode_rle", lambda *a, **k: calls.append(1) or real(*a, **k))
    back = PipelineTrace.from_json(tr.to_json())
    assert calls == []  # nothing decoded by loading
    assert np.array_equal(back.candidates[1].mask, masks[1]) and len(calls) == 1
    assert back.candidates[1].mask is back.candidates[1].mask and len(calls) == 1  # once
    assert back.to_json() == tr.to_json()  # the others decode when serialised


def test_a_candidate_of_the_wrong_size_is_refused_on_load():
    rle = encode_rle(np.ones((5, 6), bool))
    with pytest.raises(MaskError, match=r"candidate mask size \[5, 6\] != image size \[30, 40\]"):
        Candidate.from_rle(rle, (30, 40), id=0, origin="amg", origin_rank=0, sam_score=0.5)


def test_setting_a_mask_replaces_the_pending_one():
    c = Candidate.from_rle(
        encode_rle(np.zeros((4, 4), bool)), (4, 4), id=0, origin="amg", origin_rank=0, sam_score=0.5
    )
    c.mask = np.ones((4, 4), bool)
    assert c.mask.all()
