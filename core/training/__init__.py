"""Training: the evaluator (paper §4.4, App. B/D), the generator (App. B, LISA recipe) and the
miniature that trains both here.

Trainers run on transformers' ``Trainer`` with PEFT adapters; ``common`` holds what they share
(the loss-curve file, resuming from the last checkpoint).
"""
