"""The time budget of the trainers stops a run with a checkpoint once its minutes are spent."""

from __future__ import annotations

from transformers import TrainerControl

from core.training.hf import time_budget_callback


def test_time_budget_stops_only_after_the_budget():
    cb = time_budget_callback(max_minutes=1.0)
    cb.on_train_begin(None, None, TrainerControl())
    control = TrainerControl()
    cb.on_step_end(None, None, control)
    assert not control.should_training_stop
    cb.t0 -= 61.0  # a minute and a second later
    cb.on_step_end(None, None, control)
    assert control.should_training_stop and control.should_save
