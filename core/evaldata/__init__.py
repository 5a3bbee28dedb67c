"""Evaluator training data (paper §4.4, App. D): samples (image, question, mask) with a
chain-of-thought reasoning text written by an external model through the OpenAI-compatible
client, stored with full provenance and reviewed like generated questions.

- :mod:`.answers` — parsing the answers of the App. D prompts (Figures S7–S10);
- :mod:`.render` — the prompt images (red boxes, numbered for S9);
- :mod:`.records` — what the builders share: prompts, eligible items and resume, recording a
  model call, writing records and samples;
- :mod:`.build` — the four builders: ``gqa`` (S7 → SAM 3 → S8), ``spatial`` (S9),
  ``category`` (S10) and ``answer`` (samples whose answer is known);
- :mod:`.reannotate` — asking a sample's annotator again, from review;
- :mod:`.provenance` — what review needs: the latest annotation of a sample, the verdict filter.
"""
