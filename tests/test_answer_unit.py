"""Unit tests for the answer path's logic: fusion, question analysis, follow-up
resolution, answerability and the verifier. No model, no index: evidence is built
by hand from a small document."""

from __future__ import annotations

import pytest

from rag.answering.answer import REFUSAL, select
from rag.answering.question import analyze, has_answer_type, resolve_followup
from rag.answering.verify import Verifier
from rag.documents.chunking import sentence_windows
from rag.documents.loading import load_text
from rag.index.retrieval import Evidence, rrf
from rag.llm.generation import FEW_SHOT, SYSTEM_PROMPT, check_sentence
from rag.types import Citation, Document

DOC = load_text(
    "# Widgets\n\nAcme builds the Widget 2 in Berlin. It is twice as fast as the Widget 1. "
    "Acme does not sell widgets to consumers. The Widget 2 launched in March 2021.\n",
    source="widgets.md",
    kind="md",
)


class FakeView:
    """Just enough of ``CorpusView`` for the answerer: neighbours and term statistics."""

    def __init__(self, doc: Document = DOC) -> None:
        self.chunks = sentence_windows(doc, 1)
        self.ids = [c.id for c in self.chunks]

    def evidence(self, chunk_id: str, dense: float = 0.0) -> Evidence:
        c = next(c for c in self.chunks if c.id == chunk_id)
        return Evidence(
            chunk_id=c.id, source=c.source, title="Widgets", quote=c.text, start=c.start,
            end=c.end, heading=c.heading, context=c.context, ordinal=c.ordinal, page=None,
            is_heading=c.is_heading, dense=dense,
        )  # fmt: skip

    def neighbours(self, evidence: Evidence, before: int, after: int) -> list[Evidence]:
        lo = max(0, evidence.ordinal - before)
        hi = evidence.ordinal + after + 1
        return [self.evidence(c.id) for c in self.chunks[lo:hi] if c.id != evidence.chunk_id]

    def document_frequency(self, term: str) -> int:
        from rag.text import content_tokens

        return sum(term in content_tokens(f"{c.heading} {c.context} {c.text}") for c in self.chunks)


def candidates(view: FakeView, dense: dict[str, float]) -> list[Evidence]:
    out = []
    for c in view.chunks:
        score = next((v for k, v in dense.items() if k in c.text), 0.2)
        out.append(view.evidence(c.id, dense=score))
    return out


def test_rrf_rewards_agreement_between_rankings() -> None:
    fused = rrf([["a", "b", "c"], ["b", "c", "a"]], k=60)
    assert max(fused, key=lambda key: fused[key]) == "b"
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert rrf([[], []]) == {}


@pytest.mark.parametrize(
    ("question", "answer_type"),
    [
        ("When was it launched?", "date"),
        ("In which year did it launch?", "year"),
        ("How much does the Widget 2 cost?", "money"),
        ("By how much does it reduce the cost?", "quantity"),
        ("How many people work there?", "count"),
        ("Where is it built?", "place"),
        ("Where did they get the parts from?", None),
        ("How big is it?", "size"),
        ("Who is the CEO of Acme?", "name"),
        ("Why is it fast?", None),
    ],
)
def test_answer_type(question: str, answer_type: str | None) -> None:
    assert analyze(question).answer_type == answer_type


def test_answer_type_values() -> None:
    assert has_answer_type("year", "It launched in 2021.", frozenset())
    assert not has_answer_type("year", "It launched in March.", frozenset())
    assert has_answer_type("date", "It launched in March.", frozenset())
    assert not has_answer_type("money", "It cuts costs by 40%.", frozenset())
    assert has_answer_type("money", "It costs $1,200.", frozenset())
    assert has_answer_type("place", "It is built in Berlin.", frozenset())
    assert not has_answer_type("name", "Acme builds it.", frozenset({"acme"}))


def test_followup_resolution() -> None:
    assert resolve_followup("Where is it based?", []) == "Where is it based?"
    resolved = resolve_followup("Where is it based?", ["Which company builds the Widget 2?"])
    assert "Widget 2" in resolved and resolved.startswith("Where is it based?")
    assert (
        resolve_followup("What about Widget 3?", ["When did Widget 2 launch?"])
        == "When did Widget 3 launch?"
    )
    # A self-contained question is left alone even with history.
    assert resolve_followup("Where does Acme build widgets?", ["Anything"]) == (
        "Where does Acme build widgets?"
    )


def test_answers_with_the_sentence_that_holds_the_asked_type() -> None:
    view = FakeView()
    chosen = select(
        "When did the Widget 2 launch?",
        candidates(view, {"launched": 0.8}),
        view,  # type: ignore[arg-type]
    )
    assert not chosen.refused
    assert [e.quote for e in chosen.sentences] == ["The Widget 2 launched in March 2021."]


@pytest.mark.parametrize(
    "question",
    [
        "How much does the Widget 2 cost?",  # no amount of money anywhere
        "Who is the CEO of Acme?",  # attribute never mentioned
        "When did the Widget 3 launch?",  # another product than the one in the text
        "How many employees does Acme have?",
    ],
)
def test_refuses_when_no_sentence_states_what_is_asked(question: str) -> None:
    view = FakeView()
    chosen = select(question, candidates(view, {"Acme": 0.7, "Widget 2": 0.7}), view)  # type: ignore[arg-type]
    assert chosen.refused, [e.quote for e in chosen.sentences]
    assert chosen.sentences == []


def test_false_premise_gets_the_documents_fact() -> None:
    view = FakeView()
    question = "Why is the Widget 2 three times as fast as the Widget 1?"
    chosen = select(question, candidates(view, {"twice": 0.8}), view)  # type: ignore[arg-type]
    assert not chosen.refused
    assert any("twice as fast" in e.quote for e in chosen.sentences)


def test_pronoun_sentence_brings_its_antecedent() -> None:
    view = FakeView()
    chosen = select(
        "How fast is the Widget 2 compared with Widget 1?",
        candidates(view, {"twice": 0.8}),
        view,  # type: ignore[arg-type]
    )
    quotes = [e.quote for e in chosen.sentences]
    assert "It is twice as fast as the Widget 1." in quotes
    assert "Acme builds the Widget 2 in Berlin." in quotes
    assert quotes == sorted(quotes, key=DOC.text.index)  # document order


# -- the verifier ---------------------------------------------------------------------------


def cite(quote: str, cid: int = 1) -> Citation:
    start = DOC.text.index(quote)
    return Citation(cid, DOC.source, "Widgets", None, quote, start, start + len(quote))


DOCS = {DOC.source: DOC.text}
QUOTE = "The Widget 2 launched in March 2021."


def test_verifier_passes_a_verbatim_sentence() -> None:
    verdict = Verifier().check(QUOTE, [cite(QUOTE)], DOCS)
    assert verdict.ok, verdict.reasons


@pytest.mark.parametrize(
    ("sentence", "quote", "problem"),
    [
        ("The Widget 2 launched in March 2022.", QUOTE, "numbers"),
        ("The Widget 2 launched in May 2021.", QUOTE, "dates"),
        ("Bob Smith launched the Widget 2 in March 2021.", QUOTE, "names"),
        (
            "Acme sells widgets to consumers.",
            "Acme does not sell widgets to consumers.",
            "negation",
        ),
        (
            "The Widget 2 launched in March 2021.",
            "Acme builds the Widget 2 in Berlin.",
            "numbers",
        ),
        ("Acme ships rockets to the moon daily.", "Acme builds the Widget 2 in Berlin.", "content"),
    ],
)
def test_verifier_catches_unsupported_sentences(sentence: str, quote: str, problem: str) -> None:
    verdict = Verifier().check(sentence, [cite(quote)], DOCS)
    assert not verdict.ok
    assert any(problem in reason for reason in verdict.reasons), verdict.reasons


def test_verifier_rejects_a_quote_that_is_not_at_its_offsets() -> None:
    bad = Citation(1, DOC.source, "Widgets", None, QUOTE, 0, len(QUOTE))
    verdict = Verifier().check(QUOTE, [bad], DOCS)
    assert not verdict.ok
    assert "offsets" in verdict.reasons[0]


def test_verifier_requires_a_citation() -> None:
    assert not Verifier().check(QUOTE, [], DOCS).ok


def test_an_llm_is_taught_the_refusal_the_extractive_answerer_gives() -> None:
    # One refusal everywhere: the prompt asks an LLM for exactly the extractive
    # answerer's sentence, and that sentence is read back as a refusal, not a claim.
    assert f"reply exactly: {REFUSAL}" in SYSTEM_PROMPT
    assert {"role": "assistant", "content": REFUSAL} in FEW_SHOT
    checked = check_sentence(REFUSAL, [], Verifier(), DOCS)
    assert checked.refusal and checked.dropped is None


def test_a_figure_stays_with_the_thing_it_belongs_to() -> None:
    from rag.text import number_ordinals

    text = "The first pump came in 2020, followed by a faster second model."
    assert number_ordinals(text) == {"2020": "first"}
    assert number_ordinals("Widget 3 is the newest model.") == {}  # a name, not a figure
    citation = Citation(1, "p.md", "P", None, text, 0, len(text))
    wrong = Verifier().check("The second pump came in 2020.", [citation], {"p.md": text})
    assert not wrong.ok and "belongs to the first" in wrong.reasons[0]
    assert Verifier().check("The first pump came in 2020.", [citation], {"p.md": text}).ok


def test_question_about_another_ordinal_is_refused() -> None:
    doc = load_text("The first pump came in 2020, followed by a faster second model.\n",
                    source="p.md")  # fmt: skip
    chunk = sentence_windows(doc, 1)[0]
    evidence = Evidence(
        chunk_id=chunk.id, source="p.md", title="P", quote=chunk.text, start=chunk.start,
        end=chunk.end, heading="", context="", ordinal=0, page=None, dense=0.9,
    )  # fmt: skip

    class View(FakeView):
        def neighbours(self, evidence: Evidence, before: int, after: int) -> list[Evidence]:
            return []

        def document_frequency(self, term: str) -> int:
            return 1

    view = View()
    assert select("In which year did the second model come out?", [evidence], view).refused  # type: ignore[arg-type]
    assert not select("In which year did the first pump come out?", [evidence], view).refused  # type: ignore[arg-type]


def test_irregular_verbs_match_their_base_form() -> None:
    from rag.text import content_tokens

    assert content_tokens("Amazon bought it") == content_tokens("Amazon buys it")
    assert analyze("Which company did Amazon buy?").answer_type == "name"


def test_what_counts_as_defining_a_term() -> None:
    from rag.answering.question import defines

    assert analyze("What is Trainium?").defines == "Trainium"
    assert defines("Trainium", "Amazon builds its own AI chips called Trainium.")
    assert defines("Inferentia", "Inferentia chips (for running AI models)")
    assert not defines("Trainium", "Even though Trainium 3 is new, work goes on.")
    assert not defines("Trainium", "AWS uses Trainium chips in its data centres.")


CHIPS = load_text(
    "# Chips\n\nAWS uses Trainium chips in its data centres. "
    "Amazon builds its own AI chips called Trainium.\n",
    source="chips.md",
    kind="md",
)
USES = "AWS uses Trainium chips in its data centres."
DEFINES = "Amazon builds its own AI chips called Trainium."


def test_definition_questions_prefer_the_defining_sentence() -> None:
    view = FakeView(CHIPS)
    chosen = select("What is Trainium?", candidates(view, {USES: 0.8, DEFINES: 0.6}), view)  # type: ignore[arg-type]
    assert [e.quote for e in chosen.sentences] == [DEFINES]
    scored = {s.evidence.quote: s for s in chosen.scored}
    # Nothing else can explain the choice: the other sentence is closer in meaning
    # and covers the question as well.
    assert scored[USES].dense > scored[DEFINES].dense
    assert scored[USES].coverage == scored[DEFINES].coverage
    # Asked without the "What is X?" form, the same evidence gives the other sentence.
    other = select("Tell me about Trainium.", candidates(view, {USES: 0.8, DEFINES: 0.6}),
                   view)  # type: ignore[arg-type]  # fmt: skip
    assert not analyze("Tell me about Trainium.").defines
    assert [e.quote for e in other.sentences] == [USES]
