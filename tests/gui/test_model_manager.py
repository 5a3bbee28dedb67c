"""File → Models…: checkpoint folders checked with the loaders' own messages, device and dtype
choices greyed out with the reason, sizes from the files, Save writes config.toml; the status
bar's memory read-out."""

from __future__ import annotations

import pytest

from core.models.config import load_config
from rea2seg_gui.model_manager import ModelManagerDialog

NO_CUDA = "no CUDA device is visible (torch.cuda.is_available() is False)"
DEVICES = [("cpu", None), ("cuda", NO_CUDA)]


@pytest.fixture
def dialog(qtbot, tmp_path):
    d = ModelManagerDialog(path=tmp_path / "config.toml", devices=DEVICES)
    qtbot.addWidget(d)
    return d


def test_unusable_choices_are_greyed_out_and_say_why(dialog):
    seg = dialog.rows[("presets", "lisa-7b")]
    ev = dialog.rows[("evaluator", "internvl3-8b")]
    assert dialog.choice_why(seg.device, "cuda") == NO_CUDA
    i = seg.device.findData("cuda")
    assert not seg.device.model().item(i).isEnabled() and NO_CUDA in seg.device.itemText(i)
    assert "evaluator only" in dialog.choice_why(seg.dtype, "4bit")
    why = dialog.choice_why(ev.dtype, "4bit")  # on the CPU: bitsandbytes missing, or no CUDA
    assert why and ("bitsandbytes" in why or "CUDA" in why)
    assert dialog.choice_why(ev.dtype, "float32") is None
    assert dialog.choice_why(seg.dtype, "bfloat16") is None


def test_a_wrong_folder_gets_the_loaders_message_and_is_not_saved(dialog, tmp_path):
    empty = tmp_path / "not-a-checkpoint"
    empty.mkdir()
    ev = dialog.rows[("evaluator", "internvl3-8b")]
    ev.paths["model_path"].setText(str(empty))
    assert "has no config.json (setting evaluator.internvl3-8b.model_path)" in ev.status.text()
    ev.paths["model_path"].setText(str(tmp_path / "nowhere"))
    assert "does not exist" in ev.status.text()
    dialog.save()
    assert "Not saved" in dialog.problem.text() and not (tmp_path / "config.toml").exists()
    assert dialog.result() == 0


def test_a_device_that_is_not_here_is_a_problem(qtbot, tmp_path):
    (tmp_path / "config.toml").write_text('[evaluator."internvl3-8b"]\ndevice = "cuda:3"\n')
    d = ModelManagerDialog(path=tmp_path / "config.toml", devices=DEVICES)
    qtbot.addWidget(d)
    ev = d.rows[("evaluator", "internvl3-8b")]
    assert ev.device.currentData() == "cuda:3"
    assert "device cuda:3: unknown device 'cuda:3' here" in ev.status.text()
    # the device list is the one given: a CUDA machine offers cuda, and the row is ready
    d2 = ModelManagerDialog(
        path=tmp_path / "config.toml", devices=[("cpu", None), ("cuda:3", None)]
    )
    qtbot.addWidget(d2)
    assert "device" not in d2.rows[("evaluator", "internvl3-8b")].status.text()


@pytest.mark.slow  # builds the tiny random LISA
def test_a_good_folder_is_sized_and_saved_with_device_and_dtype(dialog, tmp_path):
    from core.models.config import ensure_tiny, preset_problems

    tiny = ensure_tiny("tiny-random-lisa")  # a LISA-style folder with its SAM inside
    seg = dialog.rows[("presets", "lisa-7b")]
    assert "mllm_path is not set" in seg.status.text()
    seg.paths["mllm_path"].setText(str(tiny))
    seg.dtype.setCurrentIndex(seg.dtype.findData("float32"))
    assert seg.status.text().startswith("ready — about ")
    assert "in float32 on cpu" in seg.status.text() and "GiB free" in seg.status.text()
    dialog.save()
    assert dialog.result() == 1
    cfg = load_config(tmp_path / "config.toml")
    assert cfg["presets"]["lisa-7b"] == {"mllm_path": str(tiny), "dtype": "float32"}
    assert preset_problems("lisa-7b", cfg) == []


def test_the_status_bar_shows_memory_in_use(window):
    assert window.memory_label.text().startswith("Memory: ") and "RAM" in window.memory_label.text()
    window.memory_label._read = lambda: "GPU 1.5 / 80 GiB · RAM 2.00 GiB"
    window.memory_label.timer.timeout.emit()
    assert window.memory_label.text() == "Memory: GPU 1.5 / 80 GiB · RAM 2.00 GiB"
