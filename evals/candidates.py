"""The candidates' ceiling: how many answering questions have a right sentence among
the sentences the answerer chooses from; and how hard the questions are.

No selector can quote a sentence that retrieval did not bring, so this share bounds
every answerer's score. A candidate is right when it holds the case's answer span (the
reader corpus records each fact's offsets, ``spans``: every span must be held by some
candidate) or, for cases without spans, the expected quote or every expected fact, as
the selector's training labels it. Each suite is indexed on its own corpus, as
``rag eval`` does. Beside the ceiling it reports two measures of difficulty, to
compare question sets: how often BM25 alone ranks a right sentence first, and the
share of a question's content words that its answer sentence contains::

    python -m evals.candidates evals/benchmark/dev.yaml evals/reader/reader.yaml
    python -m evals.candidates evals/benchmark/dev.yaml --misses /tmp/misses.txt

It does not answer or score answers (``rag eval``).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from evals.benchmark import normalise
from evals.runner import scratch_pipeline
from evals.schema import ANSWERING_KINDS, Case, load_suite
from rag.answering.question import resolve_followup
from rag.index.retrieval import CorpusView, Evidence
from rag.text import content_tokens

CANDIDATES = 15  # what the pipeline retrieves for the answerer (max(3 * top_k, 15))


def holds_expected(
    evidence: Evidence, expected: Sequence[Sequence[str]], quotes: Sequence[str]
) -> bool:
    """A sentence holds an expected quote, or every expected fact (the selector's
    training label of a positive)."""
    text = normalise(evidence.quote)
    if any(normalise(q) in text for q in quotes):
        return True
    return bool(expected) and all(any(normalise(a) in text for a in g) for g in expected)


def holds_span(case: Case, evidence: Evidence, span: Sequence[int]) -> bool:
    """The sentence is in the case's document and contains the answer span (offsets)."""
    start, end = span
    return evidence.source == case.document and evidence.start <= start and end <= evidence.end


def holds_answer(case: Case, candidates: list[Evidence]) -> bool:
    """Whether the candidates hold the case's answer (see the module docstring)."""
    if case.spans:
        return all(any(holds_span(case, e, span) for e in candidates) for span in case.spans)
    return any(holds_expected(e, case.expected, case.expected_quote) for e in candidates)


def answer_sentence(case: Case, view: CorpusView) -> str | None:
    """The indexed sentence that states the case's answer (its first span, else its
    expected quote), or None when no one sentence does."""
    chunks = view.by_source.get(case.document or "", [])
    if case.spans:
        start, end = case.spans[0]
        held = [c for c in chunks if c.start <= start and end <= c.end]
        return held[0].search_text if held else None
    for quote in case.expected_quote:
        for chunk in chunks:
            if normalise(quote) in normalise(chunk.text):
                return chunk.search_text
    return None


def word_overlap(question: str, sentence: str) -> float:
    """The share of the question's content words that the sentence contains."""
    asked = set(content_tokens(question))
    return len(asked & set(content_tokens(sentence))) / len(asked) if asked else 0.0


def bm25_first(query: str, view: CorpusView) -> list[Evidence]:
    """The sentence BM25 alone ranks first (empty when no term matches)."""
    scores = view.bm25_scores(query)
    if not scores:
        return []
    best = max(sorted(scores), key=lambda i: scores[i])
    return [view.evidence(best)]


def ceiling(suite_path: Path, misses: list[str] | None = None) -> dict[str, object]:
    """The share of the suite's answering cases whose answer is among the candidates,
    the share BM25 alone ranks first, and the mean question-answer word overlap."""
    from rag.settings import load_settings

    suite = load_suite(suite_path)
    settings = load_settings().model_copy(update={"answer_selector": "rules"})
    corpus = list(suite.corpus or [settings.corpus_dir])
    held: Counter[str] = Counter()
    total: Counter[str] = Counter()
    lexical_first = 0
    overlaps: list[float] = []
    with scratch_pipeline(settings, corpus, prefix="rag-ceiling-") as pipeline:
        retriever = pipeline.live.retriever
        for case in suite.cases:
            if case.kind not in ANSWERING_KINDS or not (case.expected or case.spans):
                continue
            query = resolve_followup(case.question, list(case.history))
            candidates = retriever.retrieve(query, CANDIDATES)
            total[case.kind] += 1
            lexical_first += holds_answer(case, bm25_first(query, retriever.view))
            sentence = answer_sentence(case, retriever.view)
            if sentence is not None:
                overlaps.append(word_overlap(case.question, sentence))
            if holds_answer(case, candidates):
                held[case.kind] += 1
            elif misses is not None:
                misses.append(f"{suite.name} {case.id} [{case.document}] {case.question}")
                misses += [f"    expected: {' / '.join(g)}" for g in case.expected]
                misses += [f"    quote: {q}" for q in case.expected_quote]
    n = sum(total.values())
    return {
        "suite": suite.name,
        "cases": n,
        "held": sum(held.values()),
        "ceiling": round(sum(held.values()) / n, 4) if n else None,
        "by_kind": {k: f"{held[k]}/{total[k]}" for k in sorted(total)},
        "bm25_first": round(lexical_first / n, 4) if n else None,
        "word_overlap": round(sum(overlaps) / len(overlaps), 4) if overlaps else None,
        "overlap_cases": len(overlaps),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.candidates", description=__doc__)
    parser.add_argument("suites", nargs="+", type=Path)
    parser.add_argument("--misses", type=Path, help="write the cases whose answer is missing")
    args = parser.parse_args(argv)
    misses: list[str] = []
    for path in args.suites:
        row = ceiling(path, misses)
        print(
            f"{row['suite']}: {row['held']}/{row['cases']} answering cases have a right "
            f"candidate among {CANDIDATES} (ceiling {row['ceiling']}); by kind {row['by_kind']}; "
            f"BM25 alone ranks one first for {row['bm25_first']}; mean question-answer word "
            f"overlap {row['word_overlap']} ({row['overlap_cases']} answer sentences found)"
        )
    if args.misses:
        args.misses.write_text("\n".join(misses) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
