"""The composition root: settings in, a ready question-answering pipeline out.

``build_pipeline(settings)`` is the one place that wires index, embedder,
retriever, answerer and verifier together; the CLI, the UI and the evals all call
it. The chain is LangChain runnables (retrieve | answer | verify) over a plain
dict state, so a generative answerer can replace the middle step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from rag import answer as extractive
from rag.embedding import make_embedder
from rag.errors import InputError
from rag.question import resolve_followup
from rag.retrieval import Evidence, Retriever
from rag.settings import Settings
from rag.store import Index, forget_chroma_clients, read_pointer
from rag.types import Answer, AnswerSentence, Citation, Dropped
from rag.verify import Verifier

# An LLM answer stops after this many sentences, or after this many unsupported
# sentences in a row (a small model that starts inventing rarely comes back).
MAX_LLM_SENTENCES = 4
MAX_CONSECUTIVE_DROPS = 3


class QuestionError(InputError):
    """The question itself is unusable (empty, too long): a usage error."""


def check_question(question: str, max_chars: int) -> str:
    cleaned = " ".join(question.split())
    if not cleaned:
        raise QuestionError("The question is empty. Ask something about the documents.")
    if len(cleaned) > max_chars:
        raise QuestionError(
            f"The question is {len(cleaned)} characters long; the limit is {max_chars} "
            "(RAG_MAX_QUESTION_CHARS)."
        )
    return cleaned


@dataclass
class Turn:
    question: str
    answer: Answer


@dataclass
class Conversation:
    """The history a chat keeps; follow-ups are resolved against its user turns."""

    turns: list[Turn] = field(default_factory=list)

    def questions(self) -> list[str]:
        # Resolved questions, so "And its size?" after a follow-up still has a subject.
        return [t.answer.resolved_question or t.question for t in self.turns]

    def reset(self) -> None:
        self.turns.clear()


class Pipeline:
    """retrieve -> answer -> verify, over one index."""

    def __init__(self, settings: Settings, index: Index, retriever: Retriever) -> None:
        self.settings = settings
        self.index = index
        self.retriever = retriever
        self.verifier = Verifier()
        # Held while answering and while the index is swapped or written in-process:
        # reopening Chroma under a running query (or ingest) would pull it away.
        self.lock = threading.RLock()
        # A local LLM is not re-entrant: one generation at a time per process.
        self._backend_lock = threading.Lock()
        self._judges: dict[str, Any] = {}
        self.chain: Runnable[dict[str, Any], Answer] = (
            RunnableLambda(self._retrieve)
            | RunnableLambda(self._answer)
            | RunnableLambda(self._verify)
        )

    # -- chain steps -----------------------------------------------------------------

    def _retrieve(self, state: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        self.refresh()
        query = resolve_followup(state["question"], state.get("history", []))
        k = max(state.get("top_k") or self.settings.top_k, 1)
        candidates = self.retriever.retrieve(query, k=max(3 * k, 15))
        state.update(
            query=query,
            candidates=candidates,
            k=k,
            retrieve_ms=(time.perf_counter() - started) * 1000,
        )
        return state

    def _answer(self, state: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        candidates: list[Evidence] = state["candidates"]
        selection = extractive.select(
            state["query"], candidates, self.retriever.view, asked=state["question"]
        )
        state.update(selection=selection, answer_ms=(time.perf_counter() - started) * 1000)
        return state

    def _verify(self, state: dict[str, Any]) -> Answer:
        started = time.perf_counter()
        selection: extractive.Selection = state["selection"]
        k: int = state["k"]
        evidence = [e.to_json() for e in state["candidates"][:k]]
        answer = Answer(
            question=state["question"],
            answer=extractive.REFUSAL,
            refused=True,
            generator="extractive",
            sentences=[AnswerSentence(extractive.REFUSAL, ())],
            citations=[],
            evidence=evidence,
            resolved_question=state["query"],
        )
        if not selection.refused:
            documents = {
                e.source: self.retriever.view.documents[e.source].text for e in selection.sentences
            }
            sentences: list[AnswerSentence] = []
            citations: list[Citation] = []
            dropped: list[Dropped] = []
            for chosen in selection.sentences:
                citation = chosen.citation(len(citations) + 1)
                text = " ".join(chosen.quote.split())
                verdict = self.verifier.check(text, [citation], documents)
                if verdict.ok:
                    citations.append(citation)
                    sentences.append(AnswerSentence(text, (citation.id,)))
                else:
                    dropped.append(Dropped(text, "; ".join(verdict.reasons)))
            if sentences:
                answer.sentences = sentences
                answer.citations = citations
                answer.answer = " ".join(s.text for s in sentences)
                answer.refused = False
            answer.dropped = dropped
        verify_ms = (time.perf_counter() - started) * 1000
        answer.timings_ms = {
            "retrieve": state["retrieve_ms"],
            "answer": state["answer_ms"] + verify_ms,
            "total": state["retrieve_ms"] + state["answer_ms"] + verify_ms,
        }
        state["answer"] = answer
        return answer

    # -- public API ------------------------------------------------------------------

    def refresh(self) -> bool:
        """Reopen the index if it changed on disk (an ingest here or in another process)."""
        with self.lock:
            generation = read_pointer(self.settings.data_dir)
            current = self.index.directory.name
            if generation == current and self.index.revision == self.retriever.view.revision:
                return False
            self.index.close()
            forget_chroma_clients()
            self.index = Index.open(self.settings)
            self.retriever = Retriever(
                self.index, self.retriever.embedder, self.settings.context_sentences
            )
            return True

    def ask(
        self,
        question: str,
        history: Sequence[str] = (),
        top_k: int | None = None,
        generator: str | None = None,
        turns: Sequence[tuple[str, str]] = (),
    ) -> Answer:
        """The complete answer (the last snapshot of ``stream``)."""
        return _last(self.stream(question, history, top_k, generator, turns))

    def stream(
        self,
        question: str,
        history: Sequence[str] = (),
        top_k: int | None = None,
        generator: str | None = None,
        turns: Sequence[tuple[str, str]] = (),
    ) -> Iterator[Answer]:
        """Answer snapshots, growing sentence by sentence; the last one is complete.

        ``history`` holds earlier questions (follow-up resolution); ``turns`` earlier
        (question, answer) pairs for an LLM's context.
        """
        cleaned = check_question(question, self.settings.max_question_chars)
        generator = generator or self.settings.generator
        state: dict[str, Any] = {"question": cleaned, "history": list(history), "top_k": top_k}
        with self.lock:
            if generator == "extractive":
                yield self.chain.invoke(state)
                return
            state = self._answer(self._retrieve(state))
            documents = {d: v.text for d, v in self.retriever.view.documents.items()}
            selection: extractive.Selection = state["selection"]
            extractive_answer = self._verify(dict(state))
        if selection.refused:
            # Answerability is decided by the deterministic gates; no LLM is asked.
            extractive_answer.generator = generator
            yield extractive_answer
            return
        yield from self._generate(state, generator, documents, extractive_answer, turns)

    def _generate(
        self,
        state: dict[str, Any],
        generator: str,
        documents: dict[str, str],
        fallback: Answer,
        turns: Sequence[tuple[str, str]],
    ) -> Iterator[Answer]:
        from rag.generation import generate, make_backend

        started = time.perf_counter()
        selection: extractive.Selection = state["selection"]
        # The sentences the extractive answerer chose lead; the rest of top-k follows.
        evidence = list(dict.fromkeys([*selection.sentences, *state["candidates"][: state["k"]]]))
        evidence = [e for e in evidence if not e.instruction_like]
        backend = make_backend(self.settings, generator)
        verifier = self._generative_verifier(generator)
        answer = Answer(
            question=state["question"], answer="", refused=False, generator=generator,
            sentences=[], citations=[], evidence=fallback.evidence,
            resolved_question=state["query"],
        )  # fmt: skip
        ids: dict[tuple[str, int], int] = {}
        misses = 0
        with self._backend_lock:
            stream = generate(backend, state["query"], evidence, turns, verifier, documents)
            try:
                for checked in stream:
                    if checked.refusal:
                        continue
                    if checked.dropped is not None:
                        answer.dropped.append(checked.dropped)
                        misses += 1
                        if misses >= MAX_CONSECUTIVE_DROPS:
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
                    if len(answer.sentences) >= MAX_LLM_SENTENCES:
                        break
                    yield replace(
                        answer,
                        sentences=list(answer.sentences),
                        citations=list(answer.citations),
                        dropped=list(answer.dropped),
                    )
            finally:
                stream.close()  # stops the model mid-answer when we break early
        generate_ms = (time.perf_counter() - started) * 1000
        answering = {(e.source, e.start) for e in selection.sentences}
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
        if not answer.sentences:
            # Nothing the LLM wrote is supported: the extractive answer stands in.
            fallback.generator = generator
            fallback.dropped = answer.dropped + fallback.dropped
            answer = fallback
        answer.timings_ms = {
            "retrieve": state["retrieve_ms"],
            "answer": state["answer_ms"] + generate_ms,
            "total": state["retrieve_ms"] + state["answer_ms"] + generate_ms,
        }
        yield answer

    def _generative_verifier(self, generator: str) -> Verifier:
        """The verifier plus embedding similarity (generated text is not verbatim) and,
        when enabled, the LLM support check."""
        embedder = self.retriever.embedder
        extra = list(self.verifier.extra_checks)
        if self.settings.llm_support_check:
            if generator not in self._judges:
                from rag.judge import LlmJudge

                self._judges[generator] = LlmJudge(self.settings, generator)
            extra.append(self._judges[generator].check)

        def similarity(sentence: str, quotes: str) -> float:
            vectors = embedder.embed([sentence, quotes])
            return float(vectors[0] @ vectors[1])

        return Verifier(extra_checks=extra, similarity=similarity)

    def chat(
        self,
        question: str,
        conversation: Conversation,
        top_k: int | None = None,
        generator: str | None = None,
    ) -> Answer:
        return _last(self.stream_chat(question, conversation, top_k, generator))

    def stream_chat(
        self,
        question: str,
        conversation: Conversation,
        top_k: int | None = None,
        generator: str | None = None,
    ) -> Iterator[Answer]:
        """``stream`` with the conversation's history; the turn is recorded at the end."""
        turns = [(t.question, t.answer.answer) for t in conversation.turns]
        result: Answer | None = None
        for result in self.stream(question, conversation.questions(), top_k, generator, turns):
            yield result
        if result is not None:
            conversation.turns.append(Turn(question, result))

    def close(self) -> None:
        self.index.close()


def _last(snapshots: Iterator[Answer]) -> Answer:
    final: Answer | None = None
    for snapshot in snapshots:
        final = snapshot
    if final is None:
        raise RuntimeError("the answer stream ended without an answer")
    return final


def build_pipeline(settings: Settings) -> Pipeline:
    """Open the live index and wire the query path (fast: no torch import if exported)."""
    index = Index.open(settings)
    embedder = make_embedder(settings, purpose="query")
    retriever = Retriever(index, embedder, settings.context_sentences)
    return Pipeline(settings, index, retriever)
