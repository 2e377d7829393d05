"""Verification: is each answer sentence supported by the quotes it cites?

Deterministic checks, run on every answer whatever generated it:

- citation validity: each quote is exactly the document text at its offsets;
- hard facts: every number, date, amount and name in the sentence is in the quotes;
- polarity: the sentence and the quotes agree on negation ("sells" vs "does not sell");
- content: the sentence's content words are covered by the quotes.

Extractive answers pass by construction (their sentences are the quotes); the
checks exist for everything that is not verbatim. Optional LLM support checks
plug in through ``Verifier.extra_checks``. Does not judge whether the answer
answers the question: that is the answerer's job and the eval suite's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rag.text import (
    content_tokens,
    months,
    names,
    negated_terms,
    number_ordinals,
    numbers,
    stem,
    words,
)
from rag.types import Citation

# Calibrated with `rag eval --calibrate` on the corrupted-answer set (220 pairs):
# coverage thresholds from 0.5 to 0.8 all keep precision and recall at 1.0 there;
# below 0.5 wrong-quote pairs slip through, above 0.8 faithful paraphrases are
# flagged. We take the strict end of that plateau: a sentence dropped by mistake
# costs fluency (the extractive answer stands in), one kept by mistake costs trust.
# (At 0.65, Qwen's "AWS makes money from its custom silicon through its subsidiary
# Annapurna Labs" passed on 70% coverage.)
MIN_CONTENT_COVERAGE = 0.8
# Embedding similarity of a sentence and its quotes: on the same set faithful pairs
# go as low as 0.26 (a short claim against a long quote), so the gate sits just
# under that; it only catches sentences about something else entirely.
MIN_SIMILARITY = 0.25


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: tuple[str, ...]
    coverage: float


def quote_is_exact(citation: Citation, documents: Mapping[str, str]) -> bool:
    text = documents.get(citation.source)
    if text is None:
        return False
    return 0 <= citation.start <= citation.end <= len(text) and (
        text[citation.start : citation.end] == citation.quote
    )


def _name_forms(text: str) -> set[str]:
    tokens = words(text)
    plain = {w.lower().removesuffix("'s").removesuffix("’s") for w in tokens}
    return names(text) | plain | {stem(w) for w in tokens}


# "Yes, ..." / "No. ..." answer the question; the claim is what follows. Only with its
# punctuation: "No direct support is provided" is itself the (negated) claim.
_ANSWER_PARTICLE = re.compile(r"^\s*(?:yes|no)[,.!:;]\s+", re.IGNORECASE)

ExtraCheck = Callable[[str, Sequence[Citation]], str | None]


@dataclass
class Verifier:
    """Checks answer sentences against their citations; ``extra_checks`` may add more."""

    min_coverage: float = MIN_CONTENT_COVERAGE
    extra_checks: list[ExtraCheck] = field(default_factory=list)
    # (sentence, quotes) -> cosine similarity; set for generated answers.
    similarity: Callable[[str, str], float] | None = None
    min_similarity: float = MIN_SIMILARITY

    def check(
        self, sentence: str, citations: Sequence[Citation], documents: Mapping[str, str]
    ) -> Verdict:
        reasons: list[str] = []
        # "Yes, ..." / "No, ..." answer the question; the claim is what follows.
        sentence = _ANSWER_PARTICLE.sub("", sentence)
        if not citations:
            return Verdict(False, ("cites nothing",), 0.0)
        for citation in citations:
            if not quote_is_exact(citation, documents):
                reasons.append(f"quote [{citation.id}] is not the source text at its offsets")
        quotes = " ".join(c.quote for c in citations)

        missing_numbers = numbers(sentence) - numbers(quotes)
        if missing_numbers:
            reasons.append("numbers not in the quotes: " + ", ".join(sorted(missing_numbers)))
        quoted_ordinals = number_ordinals(quotes)
        for value, ordinal in number_ordinals(sentence).items():
            other = quoted_ordinals.get(value)
            if other is not None and other != ordinal:
                reasons.append(f"{value} belongs to the {other}, not the {ordinal}, in the quotes")
        missing_months = months(sentence) - months(quotes)
        if missing_months:
            reasons.append("dates not in the quotes: " + ", ".join(sorted(missing_months)))
        forms = _name_forms(quotes)
        missing_names = {n for n in names(sentence) if n not in forms and stem(n) not in forms}
        if missing_names:
            reasons.append("names not in the quotes: " + ", ".join(sorted(missing_names)))

        sentence_terms = set(content_tokens(sentence))
        quote_terms = set(content_tokens(quotes))
        flipped = (negated_terms(sentence) ^ negated_terms(quotes)) & sentence_terms & quote_terms
        if flipped:
            reasons.append("negation disagrees with the quotes on: " + ", ".join(sorted(flipped)))

        coverage = (
            len(sentence_terms & quote_terms) / len(sentence_terms) if sentence_terms else 1.0
        )
        if coverage < self.min_coverage:
            reasons.append(f"only {coverage:.0%} of its content is in the quotes")

        if self.similarity is not None and not reasons:
            score = self.similarity(sentence, quotes)
            if score < self.min_similarity:
                reasons.append(f"meaning too far from the quotes (similarity {score:.2f})")

        for extra in self.extra_checks:
            problem = extra(sentence, citations)
            if problem:
                reasons.append(problem)
        return Verdict(not reasons, tuple(reasons), coverage)
