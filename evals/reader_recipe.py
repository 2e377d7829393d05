"""The reader's recipe: everything that decides its trained weights, recorded in
``reader.json``.

Its own module because every stage reads it: the model and its loss
(``evals.reader_model``), the training loop (``evals.reader_train``), the held-out
scoring (``evals.reader_eval``) and the export (``evals.reader_export``). Only the
settings live here, none of the work.
"""

from __future__ import annotations

from dataclasses import dataclass

SEED = 20261203
HELD_OUT_DOCS = 16


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights (recorded in ``reader.json``)."""

    layers: int = 3
    max_tokens: int = 96
    group: int = 6  # candidates per question in a step: positives + sampled negatives
    max_positives: int = 2
    questions_per_step: int = 4
    epochs: int = 2
    lr: float = 1e-4
    head_lr: float = 1e-3
    warmup: float = 0.06
    bce_weight: float = 0.5
    weight_decay: float = 0.01
    seed: int = SEED
    held_out_docs: int = HELD_OUT_DOCS
    limit: int = 0  # 0: every training question; else a slice (the recipe's test)
