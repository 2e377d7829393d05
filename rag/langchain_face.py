"""The LangChain face of the pipeline, for use in other people's chains.

- ``EvidenceRetriever`` is a LangChain ``BaseRetriever``: hybrid retrieval (dense +
  BM25, fused) over the live index, one ``Document`` per sentence with its source,
  offsets, page and scores in the metadata. It retrieves only; it does not decide
  whether the sentences answer anything.
- ``answer_runnable(pipeline)`` is a ``Runnable`` from ``{"question", "history",
  "generator", "top_k"}`` (or a plain question string) to the answer contract
  (``Answer``). It runs exactly what ``rag ask`` runs, for every generator: retrieve,
  the answerability decision of ``rag.answering.answer``, the extractive quote or an LLM's
  sentences, each one verified before it is kept (``Pipeline.stream``); ``stream``
  on it yields the growing answer.

Neither adds behaviour of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict

from rag.index.live_index import LiveIndex
from rag.pipeline import Pipeline
from rag.types import Answer


class EvidenceRetriever(BaseRetriever):
    """Sentences of the live index for a query, best first."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    live: LiveIndex
    k: int = 5

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        with self.live.reading() as retriever:
            found = retriever.retrieve(query, self.k)
        return [
            LCDocument(
                page_content=e.quote,
                metadata={
                    "source": e.source,
                    "title": e.title,
                    "page": e.page,
                    "start": e.start,
                    "end": e.end,
                    "heading": e.heading,
                    "score": e.score,
                    "dense": e.dense,
                    "lexical": e.lexical,
                },
            )
            for e in found
        ]


def _inputs(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"question": value}
    return dict(value)


class AnswerRunnable(Runnable[Any, Answer]):
    """The whole answering path as a Runnable: ``invoke`` gives the answer, ``stream``
    the growing answer's snapshots (each sentence verified before it appears)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def _call(self, value: Any) -> Iterator[Answer]:
        given: dict[str, Any] = {"question": value} if isinstance(value, str) else dict(value)
        return self.pipeline.stream(given["question"], given.get("history", ()),
                                    given.get("top_k"), given.get("generator"))  # fmt: skip

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        *_, final = self._call(input)  # Pipeline.stream always ends with an answer
        return final

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Answer]:
        yield from self._call(input)


def answer_runnable(pipeline: Pipeline) -> AnswerRunnable:
    return AnswerRunnable(pipeline)
