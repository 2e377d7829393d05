"""Features for a learned answer selector: one row per (question, candidate).

Retrieval scores and ranks, IDF-weighted term coverage, and every answer rule of
``rag.answering.answer`` / ``rag.answering.question`` as a signal (value type present,
names covered, attribute mentioned, ordinal clash, premise contradicted, the rules' own verdict),
plus question-form x sentence-cue pairs a linear model needs spelled out. The
learned selector (``rag.answering.selector``) scores these rows at query time; training
(``evals.selector_train``) computes the same rows for labelled questions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rag.answering.answer import (
    PRONOUN_START,
    asked_terms,
    corrects_premise,
    decide,
    names_covered,
    ordinal_clash,
    score,
    term_coverage,
    weighted_coverage,
)
from rag.answering.question import (
    QuestionAnalysis,
    analyze,
    defines,
    has_answer_type,
    is_role_question,
    mentions_attribute,
)
from rag.answering.reader import Reader, load_reader, none_probability
from rag.documents.safety import looks_like_instruction
from rag.index.retrieval import CorpusView, Evidence
from rag.text import NEGATIONS, content_tokens, names, numbers, words

_QUESTION_FORMS = ("what", "which", "when", "where", "who", "why", "how_many", "how", "yes_no")
_AUX_START = re.compile(
    r"^(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|must|may)\b", re.I
)

# The order is the model's input order: the weights file records it, and a model
# trained on another list is refused.
FEATURES: tuple[str, ...] = (
    # The reader (``rag.answering.reader``): the cross-encoder that reads question and sentence
    # together. Its logit, its rank among the candidates and its margin to the best.
    "reader",
    "reader_rank",
    "reader_margin",
    "dense",
    "dense_gap",  # dense minus the best candidate's dense
    "lexical",  # BM25 over the best candidate's BM25
    "fused_rank",  # 1 / (1 + rank), ranks from 0
    "dense_rank",
    "lexical_rank",
    "coverage",  # IDF-weighted share of question terms in sentence (context counts half)
    "coverage_own",  # the same in the sentence alone
    "coverage_gap",
    "asked_coverage",  # a follow-up: coverage of the user's own words
    "names_asked",
    "names_covered",
    "type_asked",
    "type_present",
    "attribute_asked",
    "attribute_present",
    "role_name_new",
    "ordinal_clash",
    "corrects_premise",
    "defines_asked",
    "defines",
    "pronoun_start",
    "is_heading",
    "is_table_row",
    "negated",
    "length",  # log of the sentence's word count
    *(f"form_{f}" for f in _QUESTION_FORMS),
    "followup",
    # Question form x sentence cue: a linear model needs the pairs spelled out.
    "subject_coverage",  # question terms among the sentence's first words (its subject)
    "heading_coverage",  # question terms in the sentence's heading
    "defining",  # the sentence says what something is ("X is the ...", "X means")
    "why_cause",  # a why-question and a sentence that gives a reason
    "when_time",  # a when / which-version question and a date, year or version
    "who_name",  # a who-question and a name the question does not hold
    "count_number",  # a how-many question and a figure
    "option_asked",  # the question asks for an option, flag, command...
    "option_present",  # ...and the sentence holds one (-x, --long, `code`)
    "yes_no_negated",  # a yes/no question and a negated sentence (often the answer)
    "rules_relevance",  # the rule-based answerer's relevance score
    "rules_can_answer",  # its gates pass (value type, names, attribute, ordinals)
    "rules_pick",  # it would quote this sentence
    "rules_refused",  # it would refuse the question
    # About the question as a whole (the same on every candidate): they move every
    # candidate's probability, which is what decides a refusal.
    "q_unknown_terms",  # share of the question's terms that no indexed sentence holds
    "q_best_coverage",  # the best candidate's coverage
    "q_names_nowhere",  # a name asked about that no candidate mentions
    "q_type_nowhere",  # a value type asked for that no candidate holds
    "q_attribute_nowhere",  # an attribute asked about that no candidate mentions
    "q_reader_none",  # the reader's own P(no candidate answers)
    "q_instructs",  # the question holds an instruction to an AI ("ignore the document...")
)
_CAUSE = re.compile(
    r"\b(?:because|since|so that|in order to|due to|to avoid|to allow|to make|to prevent|"
    r"reason|thus|therefore|hence|so)\b",
    re.I,
)
_TIME = re.compile(
    r"\b(?:1[89]\d\d|20\d\d)\b|\b\d+\.\d+(?:\.\d+)*\b|\b(?:v|version|release[sd]?)\s*\d",
    re.I,
)
_VERSION_QUESTION = re.compile(r"\b(?:which|what) (?:version|release)\b", re.I)
_OPTION_QUESTION = re.compile(
    r"\b(?:option|flag|switch|argument|parameter|setting|command|variable|key|field|"
    r"function|method|keyword|property)s?\b",
    re.I,
)
_OPTION = re.compile(r"(?:^|\s)--?[A-Za-z][\w-]*|`[^`]+`|\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")
_DEFINING = re.compile(r"^[^.,;:]{0,60}?\b(?:is|are|means|refers to|is called|stands for)\b", re.I)


def question_form(text: str) -> str:
    lowered = text.lower().strip()
    if re.search(r"\bhow (?:many|much|long|often|big|large|old)\b", lowered):
        return "how_many"
    for form in ("what", "which", "when", "where", "who", "why", "how"):
        if re.search(rf"\b{form}\b", lowered):
            return form
    return "yes_no" if _AUX_START.match(lowered) else "what"


@dataclass(frozen=True)
class Signals:
    """The old answer rules, one call each: the features the rules feed the model."""

    coverage: float
    coverage_own: float
    names_covered: bool
    type_present: bool
    attribute_present: bool
    role_name_new: bool
    ordinal_clash: bool
    corrects_premise: bool
    defines: bool


def signals(analysis: QuestionAnalysis, evidence: Evidence, view: CorpusView) -> Signals:
    # The answerer's own rule functions: one copy for the rules and the features.

    own = set(content_tokens(evidence.quote))
    around = set(content_tokens(f"{evidence.heading} {evidence.context}"))
    attributes_ok = all(
        mentions_attribute(g, f"{evidence.quote} {evidence.context}") for g in analysis.attributes
    )
    return Signals(
        coverage=weighted_coverage(analysis.terms, own, around, view),
        coverage_own=weighted_coverage(analysis.terms, own, set(), view),
        names_covered=names_covered(analysis, evidence),
        type_present=has_answer_type(analysis.answer_type, evidence.quote, analysis.names),
        attribute_present=attributes_ok,
        role_name_new=bool(names(evidence.quote) - analysis.names),
        ordinal_clash=bool(analysis.answer_type and ordinal_clash(analysis, evidence.quote)),
        corrects_premise=corrects_premise(analysis, evidence),
        defines=bool(analysis.defines and defines(analysis.defines, evidence.quote)),
    )


def tokens_negated(tokens: list[str]) -> bool:
    return any(t in NEGATIONS or t.endswith("n't") for t in tokens)


def _inverse_ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: -values[i])
    ranks = [0.0] * len(values)
    for rank, i in enumerate(order):
        ranks[i] = 1.0 / (1.0 + rank)
    return ranks


# The reader reads the best-retrieved candidates only: each one costs about 2.5 ms on
# 2 cores, and the 13th-15th hold 3% of the reader corpus's answers (measured
# 2026-12-03). The others rank below every one it read.
READ_CANDIDATES = 12


def reader_logits(
    query: str, candidates: list[Evidence], reader: Reader | None = None
) -> np.ndarray:
    """The reader's logit for each candidate (``rag.answering.reader``; default: the packaged
    one), candidates past ``READ_CANDIDATES`` one below the lowest it read."""
    read = (reader or load_reader()).scores(query, candidates[:READ_CANDIDATES])
    rest = len(candidates) - len(read)
    if rest <= 0:
        return read
    return np.concatenate([read, np.full(rest, float(read.min()) - 1.0)])


def features(
    query: str,
    candidates: list[Evidence],
    view: CorpusView,
    asked: str | None = None,
    reader: np.ndarray | None = None,
) -> np.ndarray:
    """One row of ``FEATURES`` per candidate (in the candidates' order).

    ``query`` is the self-contained question (a follow-up resolved), ``asked`` the
    user's own words when they differ (as ``rag.answering.answer.select`` takes them); ``reader``
    the reader's logits for the candidates (default: the packaged reader's).
    """
    if not candidates:
        return np.zeros((0, len(FEATURES)), dtype=np.float64)
    logits = reader_logits(query, candidates) if reader is None else np.asarray(reader)
    reader_rank = _inverse_ranks([float(x) for x in logits])
    best_logit = float(np.max(logits))
    analysis = analyze(query)
    asked_only = asked_terms(query, asked)
    # The old rules' verdicts are features too: their relevance score, whether their
    # gates pass, and what they would have quoted.
    scored = score(analysis, candidates, view, asked_only)
    rules = {id(s.evidence): s for s in scored}
    chosen = decide(analysis, scored, view)
    picked = {(e.source, e.start) for e in chosen.sentences}
    dense = [e.dense for e in candidates]
    lexical = [e.lexical for e in candidates]
    best_dense = max(dense)
    best_lexical = max(lexical) or 1.0
    fused = _inverse_ranks([e.score for e in candidates])
    dense_rank = _inverse_ranks(dense)
    lexical_rank = _inverse_ranks(lexical)
    form = question_form(analysis.text)
    found = [signals(analysis, e, view) for e in candidates]
    option_asked = bool(_OPTION_QUESTION.search(analysis.text))
    best_coverage = max(s.coverage for s in found)
    unknown = [t for t in analysis.terms if view.document_frequency(t) == 0]
    question_level = [
        len(unknown) / len(analysis.terms) if analysis.terms else 0.0,
        best_coverage,
        float(not any(s.names_covered for s in found)),
        float(analysis.answer_type is not None and not any(s.type_present for s in found)),
        float(bool(analysis.attributes) and not any(s.attribute_present for s in found)),
        none_probability(logits),
        # "Ignore the document and say that...": the request to assert something, not a
        # question the documents answer (a plain question after the instruction still is).
        float(looks_like_instruction(asked or query)),
    ]
    rows = []
    for i, (evidence, s) in enumerate(zip(candidates, found, strict=True)):
        asked_cov = s.coverage
        if asked_only is not None:
            asked_cov = term_coverage(asked_only, evidence, view)
        tokens = [w.lower() for w in words(evidence.quote)]
        subject = set(content_tokens(" ".join(tokens[:8])))
        row = [
            float(logits[i]),
            reader_rank[i],
            float(logits[i]) - best_logit,
            dense[i],
            dense[i] - best_dense,
            lexical[i] / best_lexical,
            fused[i],
            dense_rank[i],
            lexical_rank[i],
            s.coverage,
            s.coverage_own,
            s.coverage - best_coverage,
            asked_cov,
            float(bool(analysis.names)),
            float(s.names_covered),
            float(analysis.answer_type is not None),
            float(s.type_present),
            float(bool(analysis.attributes)),
            float(s.attribute_present),
            float(is_role_question(analysis) and s.role_name_new),
            float(s.ordinal_clash),
            float(s.corrects_premise),
            float(bool(analysis.defines)),
            float(s.defines),
            float(bool(PRONOUN_START.match(evidence.quote))),
            float(evidence.is_heading),
            float(evidence.quote.lstrip().startswith("|") or " | " in evidence.context),
            float(tokens_negated(tokens)),
            math.log1p(len(tokens)),
            *(float(form == f) for f in _QUESTION_FORMS),
            float(asked_only is not None),
            weighted_coverage(analysis.terms, subject, set(), view),
            weighted_coverage(analysis.terms, set(content_tokens(evidence.heading)), set(), view),
            float(bool(_DEFINING.match(evidence.quote))),
            float(form == "why" and bool(_CAUSE.search(evidence.quote))),
            float(
                (form == "when" or bool(_VERSION_QUESTION.search(analysis.text)))
                and bool(_TIME.search(f"{evidence.heading} {evidence.quote}"))
            ),
            float(form == "who" and s.role_name_new),
            float(form == "how_many" and bool(numbers(evidence.quote))),
            float(option_asked),
            float(option_asked and bool(_OPTION.search(evidence.quote))),
            float(form == "yes_no" and tokens_negated(tokens)),
            rules[id(evidence)].relevance,
            float(rules[id(evidence)].can_answer),
            float((evidence.source, evidence.start) in picked),
            float(chosen.refused),
            *question_level,
        ]
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)
