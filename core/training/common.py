"""What every trainer shares: the loss-curve file and resuming from the last checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

LOSS_CURVE_FILE = "loss_curve.jsonl"


class LossCurveCallback(TrainerCallback):
    """Appends every logged step (step, epoch, loss, learning rate, …) to ``out_dir/loss_curve.jsonl``.

    Only the main process writes, so a multi-process (DDP) run keeps one curve. A resumed run
    appends after the last step it finds, so the file stays one curve without repeated steps.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / LOSS_CURVE_FILE

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        done = {row["step"] for row in read_loss_curve(self.path)}
        if state.global_step in done and "loss" in logs:
            return
        row = {"step": state.global_step, "epoch": state.epoch}
        row.update({k: v for k, v in logs.items() if isinstance(v, int | float)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def read_loss_curve(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a loss-curve file, oldest first; a missing file or a torn last line is skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / LOSS_CURVE_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
    return rows


def resume_checkpoint(out_dir: str | Path) -> str | None:
    """The newest complete ``checkpoint-N`` folder under ``out_dir`` (for ``--resume``), or None.

    ``Trainer`` writes ``trainer_state.json`` last, so a checkpoint cut short by a kill (no
    readable state file) is passed over for the one before it.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir() or get_last_checkpoint(str(out_dir)) is None:
        return None
    found = []
    for d in out_dir.glob("checkpoint-*"):
        tail = d.name.rsplit("-", 1)[-1]
        if d.is_dir() and tail.isdigit():
            found.append((int(tail), d))
    for _, d in sorted(found, reverse=True):
        try:
            json.loads((d / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        return str(d)
    return None


def end_distributed() -> None:
    """Under ``torchrun`` / ``accelerate launch``: wait for every rank, then close the process
    group, so that no rank exits while another still talks to it (an unclosed gloo group can
    abort a rank at exit after the training finished). Nothing happens in a single process."""
    import sys

    dist = getattr(sys.modules.get("torch"), "distributed", None)
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return
    dist.barrier()
    dist.destroy_process_group()
