"""The README's five-minute tour names the keys the window binds (from the same tables the
cheat sheet and docs/reference/shortcuts.md are made of)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tour() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = readme[
        readme.index("## A five-minute tour") : readme.index(
            "\n## ", readme.index("## A five-minute tour") + 1
        )
    ]
    return " ".join(tour.split())


def test_the_tour_names_the_keys_the_window_binds():
    from rea2seg_gui.canvas_layers import LAYER_BY_KEY, LAYERS
    from rea2seg_gui.key_bindings import TOOL_KEYS
    from rea2seg_gui.layer_style import LEGEND_SHORTCUT, OUTLINE_SHORTCUT
    from rea2seg_gui.shortcuts import SHORTCUTS

    tour = _tour()
    actions = dict(SHORTCUTS)
    for key, verb in (("A", "Accept"), ("R", "Reject"), ("F", "Flag")):
        assert actions[key].startswith(verb), key
    assert "A accepts, R rejects, F flags" in tour
    assert {"N / Down", "P / Up", "Ctrl+Z / Ctrl+Shift+Z", "F1 or ?"} <= set(actions)
    assert "N / Down and P / Up" in tour and "Ctrl+Z undoes" in tour and "F1 (or ?)" in tour
    # the layer keys in the order of the Layers tab: I, then 1 … 9 and 0
    # (the answer and prompt-box layers, W and Q, are described in docs/review-loop.md)
    layer_keys = [s.shortcut for s in LAYERS if s.key not in ("diff", "answer", "prompt")]
    assert layer_keys == ["I", *"1234567890"]
    assert "I for the image, 1 … 9 and 0 for ground truth, ignore region, attention heatmap" in tour
    assert f"{LAYER_BY_KEY['diff'].shortcut} for the GT-vs-edited difference" in tour
    assert f"{OUTLINE_SHORTCUT} for outlines only, {LEGEND_SHORTCUT} for the legend" in tour
    keys = [k for k, _ in TOOL_KEYS]
    assert [t for _, t in TOOL_KEYS] == ["brush", "eraser", "polygon", "sam", "box"]
    assert (
        f"{', '.join(keys[:-1])} and {keys[-1]} pick the brush, eraser, polygon, SAM-click" in tour
    )
