"""The Edit tab's text / concept prompt: a tiny random-init SAM 3 (transformers ``Sam3Model``)
segments a typed concept in the worker; its instances become the editable edited mask."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

pytestmark = pytest.mark.slow  # builds and runs a (tiny) SAM 3


@pytest.fixture(scope="module")
def tiny_sam3(tmp_path_factory):
    from core.models.sam3_text import build_tiny_sam3

    return build_tiny_sam3(tmp_path_factory.mktemp("sam3-gui"))


def _edited(store, sid):
    from core.store import repo
    from core.store.models import Mask

    def q(s):
        m = s.scalars(
            select(Mask)
            .where(Mask.sample_id == sid, Mask.kind == "edited")
            .order_by(Mask.id.desc())
        ).first()
        return repo.edited_mask(s, sid), (m.provenance if m is not None else None)

    return store.run(q, write=False)


def test_a_concept_prompt_adds_sam3_instances_as_the_edited_mask(
    qtbot, window, demo_store, tiny_sam3, settings
):
    from core.models.sam3_text import load_sam3

    box = window.edit_panel.text_prompt
    window.tabs.setCurrentWidget(window.edit_panel)
    assert window.state.sample_id == 1 and _edited(demo_store, 1)[0] is None
    box.text_edit.setText("cup")
    box.segment_button.click()  # no checkpoint yet: said, nothing runs
    assert "checkpoint folder" in box.state() and not window.jobs.busy
    box.checkpoint_edit.setText(str(tiny_sam3))
    box.threshold_spin.setValue(0.0)  # random weights score low: keep every instance
    labels: list[str] = []
    window.jobs.progress.connect(lambda d, t, label: labels.append(label))
    with qtbot.waitSignal(window.text_prompt.mask_added, timeout=120_000):
        box.text_edit.returnPressed.emit()
        assert window.jobs.busy and box.state() == "SAM 3: segmenting 'cup'…"
    assert labels[0] == f"loading SAM 3 from {tiny_sam3}"  # model loading shows in the panel
    want, scores = load_sam3(tiny_sam3, threshold=0.0).segment(window.state.image, "cup")
    assert len(want) >= 2
    mask, prov = _edited(demo_store, 1)
    assert np.array_equal(mask, np.logical_or.reduce(want))
    assert prov["tool"] == "sam3_text" and prov["text"] == "cup" and prov["is_random"] is False
    assert prov["instances"] == list(range(len(want))) and len(prov["scores"]) == len(want)
    assert window.layers_panel.is_visible("edited")
    assert "RANDOM" not in box.state() and "refine it" in box.state()
    # one instance instead: the second one, as its own change (Ctrl+Z restores the union)
    combo = box.instances_combo
    assert combo.isEnabled() and combo.count() == len(want) + 1
    combo.activated.emit(2)
    mask, prov = _edited(demo_store, 1)
    assert np.array_equal(mask, want[1]) and prov["instances"] == [1]
    window.review.undo()
    assert np.array_equal(_edited(demo_store, 1)[0], np.logical_or.reduce(want))
    # the checkpoint folder is remembered
    assert settings.value("sam3/checkpoint") == str(tiny_sam3)
    # a threshold nothing reaches: said, nothing saved; the loaded model is reused per threshold
    box.threshold_spin.setValue(1.0)
    before = _edited(demo_store, 1)[0]
    labels.clear()
    with qtbot.waitSignal(
        window.jobs.busy_changed, timeout=120_000, check_params_cb=lambda b, c: not b
    ):
        box.segment_button.click()
    assert "found no 'cup'" in box.state() and not combo.isEnabled()
    assert np.array_equal(_edited(demo_store, 1)[0], before)


def test_a_bad_checkpoint_folder_is_one_line_in_the_panel(qtbot, window, tmp_path):
    box = window.edit_panel.text_prompt
    box.checkpoint_edit.setText(str(tmp_path / "nowhere"))
    box.text_edit.setText("cup")
    with qtbot.waitSignal(
        window.jobs.busy_changed, timeout=60_000, check_params_cb=lambda b, c: not b
    ):
        box.segment_button.click()
    assert box.state().startswith("SAM 3 failed: ") and "nowhere" in box.state()
    assert "\n" not in box.state() and box.segment_button.isEnabled()
