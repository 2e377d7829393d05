"""Answerers: turn a question's chosen evidence into checked answer sentences.

Both answerers work on one typed ``AnswerState`` (the question, its resolved query,
the retrieved candidates, the answerability decision of ``rag.answering.answer``) and yield
``Checked`` sentences: each one already verified against the passage(s) it cites,
or marked as dropped with the verifier's reason.

- ``ExtractiveAnswerer`` (the default): the chosen sentences themselves, quoted
  word for word; each still passes the verifier (quotes at their offsets).
- ``GenerativeAnswerer``: an LLM writes from the chosen sentences only (the
  selector's evidence); ``rag.llm.generation`` cuts its stream into sentences and checks
  each one (re-attributing a wrong citation number to the passage that holds it).

What happens to those sentences (numbering citations, streaming snapshots, stopping
a model that left the evidence, refusing, falling back) is the pipeline's one
streaming path (``rag.pipeline.Pipeline.stream``), the same for both. Answerers do
not retrieve, decide answerability, or build the answer contract.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from rag.answering.answer import Selection
from rag.answering.verify import Verifier
from rag.index.retrieval import Evidence
from rag.llm.generation import Checked
from rag.settings import Settings
from rag.types import Dropped


@dataclass
class AnswerState:
    """What answering one question knows, filled in step by step."""

    question: str  # the user's words, cleaned
    history: list[str]  # earlier questions (follow-up resolution)
    turns: list[tuple[str, str]]  # earlier (question, answer) pairs, for an LLM's context
    generator: str
    top_k: int
    query: str = ""  # the self-contained question (a follow-up resolved)
    candidates: list[Evidence] = field(default_factory=list)
    selection: Selection | None = None
    documents: dict[str, str] = field(default_factory=dict)  # source -> text, for checks
    retrieve_ms: float = 0.0
    select_ms: float = 0.0

    @property
    def evidence(self) -> list[Evidence]:
        """The top-k candidates: what the answer contract lists as evidence."""
        return self.candidates[: self.top_k]

    @property
    def chosen(self) -> list[Evidence]:
        return self.selection.sentences if self.selection is not None else []


class Answerer(Protocol):
    """Yields checked sentences for a state whose selection did not refuse."""

    name: str
    # Stop after this many kept sentences, or this many dropped ones in a row (None:
    # no limit): a small model that starts inventing rarely comes back.
    max_sentences: int | None
    max_consecutive_drops: int | None

    def sentences(self, state: AnswerState) -> Iterator[Checked]: ...


class ExtractiveAnswerer:
    """Quotes the chosen sentences, each checked like any answer sentence."""

    name = "extractive"
    max_sentences: int | None = None
    max_consecutive_drops: int | None = None

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    def sentences(self, state: AnswerState) -> Iterator[Checked]:
        for chosen in state.chosen:
            text = " ".join(chosen.quote.split())
            verdict = self.verifier.check(text, [chosen.citation(1)], state.documents)
            if verdict.ok:
                yield Checked(text, (chosen,))
            else:
                yield Checked(text, (), dropped=Dropped(text, "; ".join(verdict.reasons)))


# An LLM answer stops after this many sentences, or after this many unsupported
# sentences in a row.
MAX_LLM_SENTENCES = 4
MAX_CONSECUTIVE_DROPS = 3


class GenerativeAnswerer:
    """An LLM writes from the evidence; every sentence it writes is checked."""

    max_sentences: int | None = MAX_LLM_SENTENCES
    max_consecutive_drops: int | None = MAX_CONSECUTIVE_DROPS

    def __init__(
        self, name: str, settings: Settings, verifier: Verifier, lock: threading.Lock
    ) -> None:
        self.name = name
        self.settings = settings
        self.verifier = verifier
        # A local LLM is not re-entrant: one generation at a time per process.
        self.lock = lock

    def sentences(self, state: AnswerState) -> Iterator[Checked]:
        from rag.llm.generation import generate, make_backend

        # The selector's evidence only: it decided what answers (the rest of top-k is
        # what it judged beside the point), and every passage costs prompt time.
        evidence = [e for e in dict.fromkeys(state.chosen) if not e.instruction_like]
        backend = make_backend(self.settings, self.name)
        with self.lock:
            stream = generate(
                backend, state.query, evidence, state.turns, self.verifier, state.documents
            )
            try:
                yield from stream
            finally:
                stream.close()  # stops the model mid-answer when the caller stops early
