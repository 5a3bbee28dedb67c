"""History rows as the review panel shows them, and an edited mask's provenance in words."""

from __future__ import annotations

from typing import Any

from core.store import Store, review


def describe_provenance(prov: dict[str, Any] | None) -> str:
    """A short plain description of how an edited mask was made (from its provenance dict)."""
    if not prov:
        return "(no provenance)"
    tool = prov.get("tool", "?")
    if tool == "sam":
        if prov.get("clicks_undone"):
            return "SAM clicks undone"
        mp = prov.get("mask_prompt") or {}
        src = mp.get("source")
        if src == "candidate":
            src = f"candidate {mp.get('from_candidate')} of run {mp.get('run')}"
        n = len(prov.get("points_xy") or [])
        return (
            f"SAM, {n} click{'s' if n != 1 else ''}"
            + (f", mask prompt: {src}" if src else "")
            + (" (random weights)" if prov.get("is_random") else "")
        )
    if tool == "sam_box":
        box = ", ".join(f"{v:g}" for v in prov.get("box_xyxy") or [])
        n = len(prov.get("points_xy") or [])
        clicks = f" + {n} click{'s' if n != 1 else ''}" if n else ""
        return f"SAM box ({box}){clicks}" + (" (random weights)" if prov.get("is_random") else "")
    if tool == "candidate":
        return f"candidate {prov.get('from_candidate')} ({prov.get('origin')}) of run {prov.get('run')}"
    if tool in ("brush", "eraser"):
        return f"{tool} r={prov.get('radius')}"
    if tool == "polygon":
        return f"polygon ({prov.get('mode', 'add')}, {len(prov.get('points_xy') or [])} vertices)"
    return str(tool).replace("_", " ")


def history_rows(store: Store, sample_id: int) -> list[tuple[str, str, str, str, str]]:
    """(when, who, what, before → after, note) per change of the sample, newest first."""
    from core.store.models import Mask

    hist = review.history(store, sample_id)
    mask_ids = {
        v
        for h in hist
        if h.field == "edited_mask"
        for v in (h.before, h.after)
        if isinstance(v, int)
    }
    provs = (
        store.run(
            lambda s: {
                m: (s.get(Mask, m).provenance if s.get(Mask, m) else None) for m in mask_ids
            },
            write=False,
        )
        if mask_ids
        else {}
    )

    def show(field: str, v: Any) -> str:
        if field == "edited_mask" and v is not None:
            return f"#{v} {describe_provenance(provs.get(v))}"
        return "—" if v is None else str(v)

    rows = []
    for h in reversed(hist):
        what = h.field if h.action == "edit" else f"{h.field} ({h.action})"
        if h.undone:
            what += " [undone]"
        rows.append(
            (
                h.at.strftime("%m-%d %H:%M:%S"),
                h.user,
                what,
                f"{show(h.field, h.before)} → {show(h.field, h.after)}",
                h.note or "",
            )
        )
    return rows
