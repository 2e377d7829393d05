"""The composition root and the one answering path.

``build_pipeline(settings)`` is the one place that wires the live index, embedder,
retriever, answerers and verifiers together; the CLI, the UI and the evals all call
it. ``Pipeline.stream`` is the one path every answer takes, whatever the generator:

    retrieve (hybrid, ``rag.index.retrieval``) -> decide answerability and choose evidence
    (``rag.answering.answer``) -> an answerer writes checked sentences (``rag.llm.answerers``:
    the extractive quote, or an LLM) -> this module releases them: citations
    numbered, snapshots streamed, a model that left the evidence stopped, a refusal
    or the extractive fallback when nothing usable is left, timings recorded.

``ask`` is the last snapshot of ``stream``. The LangChain face
(``rag.langchain_face``) wraps this same path. Conversations live in
``rag.answering.conversation``; the open index, its lock and refresh in ``rag.index.live_index``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

from rag import generators
from rag.answering import answer as extractive
from rag.answering.conversation import Conversation, Turn
from rag.answering.question import resolve_followup
from rag.answering.selector import make_selector
from rag.errors import InputError
from rag.feedback.record import Feedback, FeedbackRecord
from rag.feedback.record import check as check_feedback
from rag.feedback.store import FeedbackStore, open_feedback_store
from rag.index.embedding import make_embedder
from rag.index.live_index import LiveIndex
from rag.index.retrieval import Evidence
from rag.llm.answerers import Answerer, AnswerState, ExtractiveAnswerer, GenerativeAnswerer
from rag.llm.judge import Verifiers
from rag.settings import Settings
from rag.text import clean_text
from rag.types import Answer, AnswerSentence, Dropped

__all__ = ["Conversation", "Pipeline", "QuestionError", "Turn", "build_pipeline"]


# The answerer chooses among this many candidates per evidence sentence kept (at
# least MIN_CANDIDATES): set by hand with the first version, on the article's
# questions. On the benchmark's dev split a right sentence is among the 15 for 89%
# of the answerable questions (evals/selector_train.py).
CANDIDATES_PER_KEPT = 3
MIN_CANDIDATES = 15


class QuestionError(InputError):
    """The question itself is unusable (empty, too long): a usage error."""


def check_question(question: str, max_chars: int) -> str:
    if len(question) > 4 * max_chars:
        # Refused before it is cleaned: a megabyte of text costs time even to scan.
        raise QuestionError(
            f"The question is {len(question)} characters long; the limit is {max_chars} "
            "(RAG_MAX_QUESTION_CHARS)."
        )
    cleaned = " ".join(clean_text(question).split())
    if not cleaned:
        raise QuestionError("The question is empty. Ask something about the documents.")
    if len(cleaned) > max_chars:
        raise QuestionError(
            f"The question is {len(cleaned)} characters long; the limit is {max_chars} "
            "(RAG_MAX_QUESTION_CHARS)."
        )
    return cleaned


def unmatched_scope(patterns: Sequence[str]) -> str:
    """The refusal for a scope that names no indexed document."""
    shown = ", ".join(repr(p) for p in patterns[:5]) + (" ..." if len(patterns) > 5 else "")
    what = f"No indexed document matches {shown}" if patterns else "The scope names no document"
    return (
        f"{what}, so nothing was searched. "
        "List the documents (rag docs) and scope by their sources or glob patterns."
    )


class Pipeline:
    """Answers questions over one live index."""

    def __init__(self, settings: Settings, live: LiveIndex) -> None:
        self.settings = settings
        self.live = live
        self.verifiers = Verifiers(settings, live.embedder)
        self.selector = make_selector(settings)
        self._llm_lock = threading.Lock()
        # Opened at the first rating: most processes never store one.
        self._feedback: FeedbackStore | None = None
        self._feedback_lock = threading.Lock()
        self._answerers: dict[str, Answerer] = {
            "extractive": ExtractiveAnswerer(self.verifiers.extractive)
        }

    def answerer(self, generator: str) -> Answerer:
        if generator not in self._answerers:
            verifier = self.verifiers.for_generator(generator)
            self._answerers[generator] = GenerativeAnswerer(
                generator, self.settings, verifier, self._llm_lock
            )
        return self._answerers[generator]

    # -- the steps -------------------------------------------------------------------

    def prepare(
        self,
        question: str,
        history: Sequence[str] = (),
        top_k: int | None = None,
        generator: str | None = None,
        turns: Sequence[tuple[str, str]] = (),
        sources: frozenset[str] | None = None,
    ) -> AnswerState:
        """Retrieve and decide: the state every answerer starts from (over ``sources``
        only, when given). ``generator`` is a registered name (``stream`` checks it)."""
        state = AnswerState(
            question=check_question(question, self.settings.max_question_chars),
            history=[clean_text(h) for h in history],
            turns=[(clean_text(q), clean_text(a)) for q, a in turns],
            generator=generator or self.settings.generator,
            top_k=max(top_k or self.settings.top_k, 1),
        )
        with self.live.reading() as retriever:
            started = time.perf_counter()
            state.query = resolve_followup(state.question, state.history)
            wanted = max(CANDIDATES_PER_KEPT * state.top_k, MIN_CANDIDATES)
            state.candidates = retriever.retrieve(state.query, k=wanted, sources=sources)
            state.retrieve_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            state.selection = self.selector.select(
                state.query, state.candidates, retriever.view, asked=state.question
            )
            state.select_ms = (time.perf_counter() - started) * 1000
            state.documents = {s: d.text for s, d in retriever.view.documents.items()}
        return state

    def scope(self, documents: Sequence[str] | None) -> frozenset[str] | None:
        """The sources ``documents`` (sources or glob patterns) name; None: no scope."""
        if documents is None:
            return None
        return self.live.match([clean_text(d) for d in documents])

    def retrieve(
        self,
        query: str,
        top_k: int | None = None,
        documents: Sequence[str] | None = None,
        history: Sequence[str] = (),
    ) -> tuple[str, list[Evidence]]:
        """The evidence alone: (the resolved query, its ``top_k`` best sentences)."""
        query = check_question(query, self.settings.max_question_chars)
        sources = self.scope(documents)
        resolved = resolve_followup(query, [clean_text(h) for h in history])
        if sources is not None and not sources:
            return resolved, []
        k = max(top_k or self.settings.top_k, 1)
        with self.live.reading() as retriever:
            return resolved, retriever.retrieve(resolved, k, sources=sources)

    def _refusal(self, state: AnswerState) -> Answer:
        return Answer(
            question=state.question,
            answer=extractive.REFUSAL,
            refused=True,
            generator=state.generator,
            sentences=[AnswerSentence(extractive.REFUSAL, ())],
            citations=[],
            evidence=[e.to_json() for e in state.evidence],
            resolved_question=state.query,
        )

    def release(self, state: AnswerState, answerer: Answerer, fallback: Answer) -> Iterator[Answer]:
        """Turn an answerer's checked sentences into growing answers; the last is final.

        ``fallback`` stands in when nothing usable is left (every sentence dropped, or
        only sentences that do not use the evidence that answers the question).
        """
        started = time.perf_counter()
        answer = Answer(
            question=state.question, answer="", refused=False, generator=state.generator,
            sentences=[], citations=[], evidence=[e.to_json() for e in state.evidence],
            resolved_question=state.query,
        )  # fmt: skip
        ids: dict[tuple[str, int], int] = {}
        misses = 0
        first_ms: float | None = None  # when the first verified sentence was released
        sentences = answerer.sentences(state)
        try:
            for checked in sentences:
                if checked.refusal:
                    continue
                if checked.dropped is not None:
                    answer.dropped.append(checked.dropped)
                    misses += 1
                    if answerer.max_consecutive_drops and misses >= answerer.max_consecutive_drops:
                        break  # the model has left the evidence; stop paying for tokens
                    continue
                misses = 0
                cited = []
                for chosen in checked.evidence:
                    key = (chosen.source, chosen.start)
                    if key not in ids:
                        ids[key] = len(answer.citations) + 1
                        answer.citations.append(chosen.citation(ids[key]))
                    cited.append(ids[key])
                answer.sentences.append(AnswerSentence(checked.text, tuple(cited)))
                answer.answer = " ".join(s.text for s in answer.sentences)
                if first_ms is None:
                    first_ms = (time.perf_counter() - started) * 1000
                if answerer.max_sentences and len(answer.sentences) >= answerer.max_sentences:
                    break
                yield replace(
                    answer,
                    sentences=list(answer.sentences),
                    citations=list(answer.citations),
                    dropped=list(answer.dropped),
                )
        finally:
            close = getattr(sentences, "close", None)
            if close is not None:
                close()
        answering = {(e.source, e.start) for e in state.chosen}
        if answer.sentences and not any((c.source, c.start) in answering for c in answer.citations):
            # Supported but beside the point: none of its sentences uses the evidence
            # that answers the question. The extractive answer is the safer reply.
            answer.dropped += [
                Dropped(
                    s.text, "supported, but does not use the evidence that answers the question"
                )
                for s in answer.sentences
            ]
            answer.sentences = []
        answer_ms = state.select_ms + (time.perf_counter() - started) * 1000
        if not answer.sentences:
            if not fallback.refused and answerer.name != fallback.generator:
                # The user must be able to tell quoted evidence from the LLM's writing.
                fallback.fallback = fallback.generator
            fallback.generator = state.generator
            fallback.dropped = answer.dropped + fallback.dropped
            answer = fallback
            first_ms = None
        if answer.refused:
            first = None
        elif first_ms is None:
            first = answer_ms  # a fallback is released with the complete answer
        else:
            first = state.select_ms + first_ms
        answer.timings_ms = _timings(state.retrieve_ms, answer_ms, first)
        yield answer

    # -- public API ------------------------------------------------------------------

    def ask(
        self,
        question: str,
        history: Sequence[str] = (),
        top_k: int | None = None,
        generator: str | None = None,
        turns: Sequence[tuple[str, str]] = (),
        documents: Sequence[str] | None = None,
    ) -> Answer:
        """The complete answer (the last snapshot of ``stream``)."""
        return _last(self.stream(question, history, top_k, generator, turns, documents))

    def stream(
        self,
        question: str,
        history: Sequence[str] = (),
        top_k: int | None = None,
        generator: str | None = None,
        turns: Sequence[tuple[str, str]] = (),
        documents: Sequence[str] | None = None,
    ) -> Iterator[Answer]:
        """Answer snapshots, growing sentence by sentence; the last one is complete.

        ``history`` holds earlier questions (follow-up resolution); ``turns`` earlier
        (question, answer) pairs for an LLM's context; ``documents`` (sources or glob
        patterns) limits the search to the documents they name.
        """
        # An unknown generator is refused before anything runs, even on a question
        # that would be refused anyway (its answer would carry a false label).
        generator = generators.get(generator or self.settings.generator).name
        sources = self.scope(documents)
        if sources is not None and not sources:
            # A scope that names nothing is said so, never widened to every document.
            cleaned = check_question(question, self.settings.max_question_chars)
            message = unmatched_scope(list(documents or ()))
            yield Answer(
                question=cleaned, answer=message, refused=True, generator=generator,
                sentences=[AnswerSentence(message, ())], citations=[], evidence=[],
                resolved_question=cleaned, timings_ms=_timings(0.0, 0.0),
            )  # fmt: skip
            return
        state = self.prepare(question, history, top_k, generator, turns, sources)
        refusal = self._refusal(state)
        if state.selection is None or state.selection.refused:
            # Answerability is decided before any answerer runs: no LLM is asked.
            refusal.timings_ms = _timings(state.retrieve_ms, state.select_ms)
            yield refusal
            return
        quote = self._answerers["extractive"]
        if state.generator == quote.name:
            yield from self.release(state, quote, refusal)
            return
        # The extractive answer is computed first: it is the LLM's fallback.
        fallback = _last(self.release(replace(state, generator=quote.name), quote, refusal))
        yield from self.release(state, self.answerer(state.generator), fallback)

    def chat(
        self,
        question: str,
        conversation: Conversation,
        top_k: int | None = None,
        generator: str | None = None,
        documents: Sequence[str] | None = None,
    ) -> Answer:
        return _last(self.stream_chat(question, conversation, top_k, generator, documents))

    def stream_chat(
        self,
        question: str,
        conversation: Conversation,
        top_k: int | None = None,
        generator: str | None = None,
        documents: Sequence[str] | None = None,
    ) -> Iterator[Answer]:
        """``stream`` with the conversation's history; the turn is recorded when the
        answer is complete."""
        result: Answer | None = None
        for result in self.stream(
            question,
            conversation.questions(),
            top_k,
            generator,
            conversation.exchanges(),
            documents,
        ):
            yield result
        if result is not None:
            conversation.record(question, result)

    # -- feedback ----------------------------------------------------------------------

    def rate(self, feedback: Feedback, key: str | None = None) -> FeedbackRecord:
        """Check a rating of an answer against the live index (its citations must still
        be the documents' text) and store it; ``key``: the API key it came with."""
        record = check_feedback(feedback, self.live.document, self.settings.max_question_chars, key)
        with self._feedback_lock:
            if self._feedback is None:
                self._feedback = open_feedback_store(self.settings)
            store = self._feedback
        store.add(record)
        return record

    def close(self) -> None:
        with self._feedback_lock:
            if self._feedback is not None:
                self._feedback.close()
                self._feedback = None
        self.live.close()


def _timings(
    retrieve_ms: float, answer_ms: float, first_ms: float | None = None
) -> dict[str, float]:
    """``first_ms`` (answering time until the first verified sentence was released)
    becomes ``first_sentence``, counted like ``total`` from the start of retrieval."""
    timings = {"retrieve": retrieve_ms, "answer": answer_ms, "total": retrieve_ms + answer_ms}
    if first_ms is not None:
        timings["first_sentence"] = retrieve_ms + first_ms
    return timings


def _last(snapshots: Iterator[Answer]) -> Answer:
    final: Answer | None = None
    for snapshot in snapshots:
        final = snapshot
    if final is None:
        raise RuntimeError("the answer stream ended without an answer")
    return final


def build_pipeline(settings: Settings) -> Pipeline:
    """Open the live index and wire the query path (fast: no torch import if exported)."""
    return Pipeline(settings, LiveIndex(settings, make_embedder(settings, purpose="query")))
