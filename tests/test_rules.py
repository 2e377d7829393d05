"""The answer rules as data: the answer-type table, named weights, one negation reader.

Fast unit tests, no model.
"""

from __future__ import annotations

import pytest

from rag.answering import answer
from rag.answering.question import ANSWER_TYPES, answer_type_of, has_answer_type
from rag.text import negated_terms, stem

# (type, a question asking for it, a sentence holding one, a sentence holding none)
EXAMPLES = [
    ("year", "In which year was the depot built?", "It was built in 1998.", "It was built."),
    ("date", "When did the depot open?", "It opened in March.", "It opened early."),
    ("duration", "How long does the warranty last?", "It lasts two years.", "It lasts."),
    ("money", "How much does the license cost?", "It costs $40.", "It costs little."),
    ("count", "How many ports are there?", "There are 12 ports.", "There are ports."),
    ("quantity", "How much faster is it?", "It is three times faster.", "It is faster."),
    ("size", "How big is the chip?", "It is smaller than a card.", "It is new."),
    ("place", "Where is the lab located?", "The lab is in Austin.", "The lab is new."),
    ("name", "Who founded the lab?", "Maria Lopez founded it.", "someone founded it."),
]


def test_every_answer_type_has_an_example() -> None:
    assert [t.name for t in ANSWER_TYPES if t.checked] == [e[0] for e in EXAMPLES]


@pytest.mark.parametrize(("kind", "question", "holds", "lacks"), EXAMPLES)
def test_a_type_is_asked_for_and_held(kind: str, question: str, holds: str, lacks: str) -> None:
    assert answer_type_of(question) == kind
    assert has_answer_type(kind, holds, frozenset())
    assert not has_answer_type(kind, lacks, frozenset())


def test_a_row_can_stop_the_chain_without_a_type() -> None:
    # "where ... from" asks for a source: not a place, and nothing to check.
    assert answer_type_of("Where did Amazon get its chips from?") is None
    assert answer_type_of("What does the flag do?") is None
    assert has_answer_type(None, "anything at all", frozenset())


def test_negation_is_read_in_one_place() -> None:
    assert negated_terms("Amazon does not sell its chips.") == {stem("sell"), "it", "chip"}
    assert negated_terms("It never runs twice.") == {"run", "twice"}
    assert negated_terms("Amazon sells chips.") == set()


def test_weights_are_named_and_sane() -> None:
    assert abs(answer.DENSE_WEIGHT + answer.COVERAGE_WEIGHT - 1.0) < 1e-9
    assert abs(answer.ASKED_TERMS_WEIGHT + answer.HISTORY_TERMS_WEIGHT - 1.0) < 1e-9
    assert 0 < answer.MIN_RELEVANCE < answer.MIN_DENSE_ALONE < 1
    assert answer.MAX_SENTENCES >= 1 and 0 < answer.SECOND_SENTENCE_RATIO <= 1


def test_a_sentence_that_opens_with_no_is_its_own_negated_claim() -> None:
    from rag.answering.verify import Verifier
    from rag.types import Citation

    text = "No direct support is provided for 'at'."
    documents = {"doc.txt": f"Intro. {text} More."}
    citation = Citation(1, "doc.txt", "Doc", None, text, 7, 7 + len(text))
    assert Verifier().check(text, [citation], documents).ok
    # "No, ..." answers the question; what follows is the claim checked.
    flipped = Verifier().check("No, direct support is provided for 'at'.", [citation], documents)
    assert not flipped.ok and "negation" in " ".join(flipped.reasons)
