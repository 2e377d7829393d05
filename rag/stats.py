"""Summary statistics for measured timings, shared by ``rag bench`` and the eval metrics.

Only the nearest-rank percentile: latency figures are reported as values that were
actually measured, never interpolated between two runs. Nothing here measures
(``rag.bench`` does) or scores answers (``evals.metrics`` does).
"""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The measured value at rank ``pct``% of the sorted values (0.0 when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[rank]
