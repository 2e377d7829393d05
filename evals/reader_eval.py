"""The reader's held-out figures: every held-out candidate scored by the fp32 model,
and what those scores get right as the suites count it.

Separate from the training loop (``evals.reader_train``) because two stages judge by
the same figures: the loop chooses its epoch by them, and the int8 check compares the
shipped model's against them. Nothing here trains or writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evals.reader_data import Question
from evals.reader_model import encode
from evals.reader_recipe import Recipe
from evals.schema import REFUSING_KINDS
from rag.answering.reader import none_probability, passage_text


def score_questions(
    model: Any, questions: Sequence[Question], tok: Any, recipe: Recipe
) -> list[np.ndarray]:
    """Every candidate's logit, per question (fp32 torch)."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for q in questions:
            if not q.candidates:
                out.append(np.zeros(0))
                continue
            feeds = encode(
                tok, [(q.query, passage_text(c)) for c in q.candidates], recipe.max_tokens
            )
            out.append(model(**feeds).numpy().astype(np.float64))
    model.train()
    return out


def held_out_figures(questions: Sequence[Question], logits: Sequence[np.ndarray]) -> dict[str, Any]:
    """The reader alone on held-out questions: its top candidate right, and "right" as
    the suites count it (the top candidate holds the answer and is not refused, or a
    refusing question refused) at the best bar on P(none)."""
    has_answer = [q.answerable for q in questions]
    refusing = [q.kind in REFUSING_KINDS for q in questions]
    top_right = [
        bool(len(x)) and bool(q.candidates[int(np.argmax(x))].label)
        for q, x in zip(questions, logits, strict=True)
    ]
    none = np.array([none_probability(x) for x in logits])
    best = (0.0, 0.5)
    for bar in np.arange(0.05, 0.96, 0.05):
        refused = none >= bar
        right = sum(
            (r and ref) or (not ref and h and t)
            for r, ref, h, t in zip(refusing, refused, has_answer, top_right, strict=True)
        )
        if right > best[0]:
            best = (right, round(float(bar), 2))
    answerable = [t for t, h in zip(top_right, has_answer, strict=True) if h]
    auc = _auc(none, refusing)
    return {
        "questions": len(questions),
        "top1_answerable": round(float(np.mean(answerable)), 4) if answerable else 0.0,
        "right": round(float(best[0]) / max(len(questions), 1), 4),
        "none_bar": best[1],
        "refusal_auc": round(auc, 4),
    }


def _auc(scores: np.ndarray, positive: Sequence[bool]) -> float:
    from sklearn.metrics import roc_auc_score

    if all(positive) or not any(positive):
        return 0.5  # undefined with one class only
    return float(roc_auc_score(positive, scores))
