"""The learned selector's precision/recall curve on a suite, with the rules beside it.

For every case the suite's own pipeline retrieves the candidates once; the learned
selector scores them (``rag.answering.selector``) and the old rules choose on the same
candidates (``rag.answering.answer.select``). A case is *answered* at threshold t when its
P(the documents answer it) reaches t; an answer is *right* when the case should be answered and the
quoted sentences state every expected fact. Then, per threshold:

- precision: right answers / answered cases (how often an answer can be trusted);
- recall: right answers / cases that should be answered;
- correct: right answers plus right refusals, over all cases.

The rules are one point on the same axes. ``rag eval`` prints the curve for the
benchmark's splits, marks the threshold in use, and writes it to the JSON report.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evals.schema import Case, Suite
from rag.answering import answer as rules
from rag.answering.selector import LearnedSelector, learned_selector
from rag.index.retrieval import Evidence
from rag.pipeline import Pipeline

CURVE_THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.05, 0.951, 0.05))


def _states_all(case: Case, chosen: list[Evidence]) -> bool:
    text = " ".join(" ".join(e.quote.lower().split()) for e in chosen)
    return all(any(" ".join(a.lower().split()) in text for a in group) for group in case.expected)


def selector_report(pipeline: Pipeline, suite: Suite) -> dict[str, Any]:
    """The curve of the selector the pipeline's settings describe, on ``suite``."""
    selector = learned_selector(pipeline.settings)
    return curve(case_points(pipeline, suite, selector), selector.threshold)


def case_points(pipeline: Pipeline, suite: Suite, selector: LearnedSelector
                ) -> list[dict[str, Any]]:  # fmt: skip
    """Per case: P(the documents answer it), whether the selector's quotes (and the rules')
    state the expected facts, and whether the rules refuse."""
    points = []
    for case in suite.cases:
        if case.should_refuse is None:
            continue
        state = pipeline.prepare(case.question, case.history, generator="extractive")
        with pipeline.live.reading() as retriever:
            view = retriever.view
            quote = selector.quote(state.query, state.candidates, view, state.question)
            by_rules = rules.select(state.query, state.candidates, view, state.question)
        points.append(
            {
                "id": case.id,
                "should_refuse": bool(case.should_refuse),
                "answerable": quote.answerable,
                "states": _states_all(case, quote.sentences),
                "rules_refused": by_rules.refused,
                "rules_states": _states_all(case, by_rules.sentences),
            }
        )
    return points


def _figures(points: list[dict[str, Any]], answered: list[bool], states: list[bool]
             ) -> dict[str, float]:  # fmt: skip
    should_answer = sum(not p["should_refuse"] for p in points)
    right = sum(a and s and not p["should_refuse"] for p, a, s in zip(points, answered, states,
                                                                      strict=True))  # fmt: skip
    refused_right = sum(not a and p["should_refuse"] for p, a in zip(points, answered, strict=True))
    return {
        "precision": round(right / sum(answered), 4) if any(answered) else 1.0,
        "recall": round(right / should_answer, 4) if should_answer else 1.0,
        "correct": round((right + refused_right) / len(points), 4) if points else 0.0,
        "answered": sum(answered),
    }


def curve(points: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """The curve over ``CURVE_THRESHOLDS`` (and ``threshold``, the one in use) and the
    rules' point."""
    states = [p["states"] for p in points]
    rows = []
    for t in sorted({*CURVE_THRESHOLDS, round(threshold, 3)}):
        answered = [p["answerable"] >= t for p in points]
        rows.append({"threshold": t, **_figures(points, answered, states)})
    rules_point = _figures(
        points, [not p["rules_refused"] for p in points], [p["rules_states"] for p in points]
    )
    return {"threshold": round(threshold, 3), "cases": len(points), "curve": rows,
            "rules": rules_point}  # fmt: skip


def curve_text(selector: dict[str, Any]) -> str:
    """The curve as a small table: every other threshold, the one in use marked."""
    lines = [
        f"Learned selector on {selector['cases']} cases (threshold in use "
        f"{selector['threshold']:.2f}; answered = P(the documents answer) >= threshold):",
        "  threshold  precision  recall  correct  answered",
    ]
    for row in selector["curve"]:
        t = row["threshold"]
        in_use = abs(t - selector["threshold"]) < 1e-9
        if not in_use and round(t * 100) % 10:
            continue
        mark = "  <- in use" if in_use else ""
        lines.append(f"  {t:>9.2f}  {row['precision']:>9.2f}  {row['recall']:>6.2f}  "
                     f"{row['correct']:>7.2f}  {row['answered']:>8}{mark}")  # fmt: skip
    r = selector["rules"]
    lines.append(
        f"  {'rules':>9}  {r['precision']:>9.2f}  {r['recall']:>6.2f}  "
        f"{r['correct']:>7.2f}  {r['answered']:>8}  (the first version's rules)"
    )
    return "\n".join(lines)
