"""transformers' ``Trainer`` as every trainer here uses it, for a model that is a plain
``nn.Module`` whose ``forward(**batch)`` returns a dict with ``loss`` and its named parts.

- every part besides ``loss`` is averaged between log steps and logged beside it (so it reaches
  the loss curve, :class:`core.training.common.LossCurveCallback`);
- a checkpoint keeps what trains: the model's ``trainable_state_dict()`` when it has one (a
  frozen SAM ViT-H is not copied into every ``checkpoint-N``), its full state dict otherwise;
- resuming loads that back and refuses a checkpoint that does not fit the model.
"""

from __future__ import annotations

from pathlib import Path


def parts_trainer_class() -> type:
    """The ``Trainer`` subclass (module docstring); transformers is imported on call."""
    from transformers import Trainer

    class PartsTrainer(Trainer):
        """transformers' Trainer that logs the loss parts and checkpoints only what trains."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = model(**inputs)
            sums = getattr(self, "_part_sums", {})
            for k in out:
                if k != "loss":
                    total, n = sums.get(k, (0.0, 0))
                    sums[k] = (total + float(out[k].detach()), n + 1)
            self._part_sums = sums
            return (out["loss"], out) if return_outputs else out["loss"]

        def log(self, logs, start_time=None):
            for k, (total, n) in getattr(self, "_part_sums", {}).items():
                if n:
                    logs[k] = round(total / n, 6)
            self._part_sums = {}
            super().log(logs, start_time)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            from safetensors.torch import load_file

            inner = self.accelerator.unwrap_model(model or self.model)
            f = Path(resume_from_checkpoint) / "model.safetensors"
            if not f.is_file():
                raise ValueError(f"'{resume_from_checkpoint}' has no model.safetensors")
            state = load_file(str(f))
            keep = getattr(inner, "trainable_state_dict", inner.state_dict)()
            missing = set(keep) - set(state)
            unexpected = set(state) - set(inner.state_dict())
            if missing or unexpected:
                raise ValueError(
                    f"checkpoint '{resume_from_checkpoint}' does not fit this model (missing "
                    f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}): resume with "
                    "the same base and settings"
                )
            inner.load_state_dict(state, strict=False)

        def _save(self, output_dir=None, state_dict=None):
            inner = self.accelerator.unwrap_model(self.model)
            if state_dict is None and hasattr(inner, "trainable_state_dict"):
                state_dict = inner.trainable_state_dict()
            super()._save(output_dir, state_dict)

    return PartsTrainer


def time_budget_callback(max_minutes: float) -> object:
    """A ``TrainerCallback`` that ends training (with a checkpoint) once ``max_minutes`` of
    wall-clock time have passed since training began — for runs that must fit a time budget.
    The learning-rate schedule still follows ``max_steps``: a run stopped early ends before its
    decay is complete."""
    import time

    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.t0 = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):
            if time.monotonic() - self.t0 > 60.0 * float(max_minutes):
                control.should_training_stop = True
                control.should_save = True

    return TimeBudget()
