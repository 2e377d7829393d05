"""Retrieval: hybrid dense + BM25 search over indexed sentences, fused with RRF.

The unit is the sentence window stored by ingest (one sentence, embedded with its
heading and previous sentence). Dense scores come from Chroma, queried directly
with a vector from the ONNX embedder (no langchain_chroma or sentence-transformers
import on this path: they cost seconds). BM25 (bm25s) runs over each sentence plus
its heading and context. The two rankings are fused by reciprocal rank fusion. A
search can be limited to some documents (a scope): both rankings are filtered.

Does not choose answers (``rag.answering.answer``). Chunks that Chroma holds but the manifest
does not list (leftovers of an interrupted ingest) are ignored.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from rag.documents.chunking import CHUNKER_VERSION, sentence_windows
from rag.documents.safety import looks_like_instruction
from rag.errors import IndexCorruptError
from rag.index.embedding import Embedder
from rag.index.store import Index
from rag.text import content_tokens
from rag.types import Chunk, Citation, Document

# The usual constant of reciprocal rank fusion (Cormack et al. 2009): it damps the
# weight of the very first ranks so that one ranking cannot decide alone.
RRF_K = 60
# Each ranking (dense, BM25) contributes this many times the sentences asked for, at
# least POOL_MIN, before fusion: an answer ranked low by one ranking can still win.
POOL_FACTOR = 3
POOL_MIN = 20


@dataclass(frozen=True)
class Evidence:
    """A retrieved sentence: ``quote == document.text[start:end]``."""

    chunk_id: str
    source: str
    title: str
    quote: str
    start: int
    end: int
    heading: str
    context: str
    ordinal: int
    page: int | None
    is_heading: bool = False
    ocr: bool = False  # the sentence is OCR's reading of a scanned page
    instruction_like: bool = False  # reads as a prompt injection: never quoted
    score: float = 0.0  # fused (RRF) score, higher is better
    dense: float = 0.0  # cosine similarity of question and sentence window
    lexical: float = 0.0  # BM25 score

    def citation(self, cid: int) -> Citation:
        """This sentence as citation number ``cid`` of an answer."""
        return Citation(
            cid, self.source, self.title, self.page, self.quote, self.start, self.end, self.ocr
        )

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "quote": self.quote,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 6),
        }


def rrf(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the rankings (rank from 1)."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return fused


class CorpusView:
    """The live sentences of the index, in memory, with a BM25 index over them."""

    def __init__(self, index: Index, context_sentences: int) -> None:
        import bm25s

        if index.needs_rechunk:
            raise IndexCorruptError(
                f"The index was chunked by another version of the text splitter (version "
                f"{index.chunker_version}, this one is {CHUNKER_VERSION}). Re-chunk it with: "
                "rag ingest (unchanged sentences keep their vectors)"
            )
        self.revision = index.revision
        self.documents: dict[str, Document] = {}
        self.chunks: dict[str, Chunk] = {}
        self.by_source: dict[str, list[Chunk]] = {}
        live = index.live_chunk_ids()
        for record in index.documents():
            doc = index.document(record.source)
            if doc is None:
                continue
            self.documents[doc.source] = doc
            windows = [c for c in sentence_windows(doc, context_sentences) if c.id in live]
            self.by_source[doc.source] = windows
            for chunk in windows:
                self.chunks[chunk.id] = chunk
        self.ids = list(self.chunks)
        self.instruction_like = {
            i for i, c in self.chunks.items() if looks_like_instruction(c.text)
        }
        corpus_tokens = [
            content_tokens(f"{c.heading} {c.context} {c.search_text} {c.search_text}") or ["∅"]
            for c in self.chunks.values()
        ]
        self.vocabulary = {t for tokens in corpus_tokens for t in tokens}
        self._df: dict[str, int] = {}
        for tokens in corpus_tokens:
            for term in set(tokens):
                self._df[term] = self._df.get(term, 0) + 1
        self.bm25 = bm25s.BM25()
        if corpus_tokens:
            self.bm25.index(corpus_tokens, show_progress=False)

    def evidence(self, chunk_id: str, **scores: float) -> Evidence:
        chunk = self.chunks[chunk_id]
        doc = self.documents[chunk.source]
        page = doc.page_of(chunk.start)
        return Evidence(
            chunk_id=chunk.id,
            source=chunk.source,
            title=doc.title,
            quote=chunk.text,
            start=chunk.start,
            end=chunk.end,
            heading=chunk.heading,
            context=chunk.context,
            ordinal=chunk.ordinal,
            page=page.number if page else None,
            is_heading=chunk.is_heading,
            ocr=bool(page and page.ocr),
            instruction_like=chunk.id in self.instruction_like,
            **scores,
        )

    def neighbours(self, evidence: Evidence, before: int, after: int) -> list[Evidence]:
        """Sentences around ``evidence`` in the same document, in order (itself excluded)."""
        chunks = self.by_source.get(evidence.source, [])
        lo = max(0, evidence.ordinal - before)
        hi = min(len(chunks), evidence.ordinal + after + 1)
        return [self.evidence(c.id) for c in chunks[lo:hi] if c.id != evidence.chunk_id]

    def document_frequency(self, term: str) -> int:
        """In how many indexed sentences (with context) ``term`` occurs."""
        return self._df.get(term, 0)

    def bm25_scores(self, query: str) -> dict[str, float]:
        tokens = [t for t in content_tokens(query) if t in self.vocabulary]
        if not tokens or not self.ids:
            return {}
        scores = self.bm25.get_scores(tokens)
        return {self.ids[i]: float(s) for i, s in enumerate(scores) if s > 0}


class Retriever:
    """Hybrid retrieval over one index; ``retrieve(question)`` gives fused evidence."""

    def __init__(self, index: Index, embedder: Embedder, context_sentences: int = 1) -> None:
        self.index = index
        self.embedder = embedder
        self.context_sentences = context_sentences
        self.view = CorpusView(index, context_sentences)

    def dense_scores(
        self, query: str, n: int, sources: Collection[str] | None = None
    ) -> dict[str, float]:
        if not self.view.ids or (sources is not None and not sources):
            return {}
        vector = self.embedder.embed([query])[0]
        # Over-fetch: leftovers of an interrupted ingest may take some of the slots.
        n_results = min(self.index.collection.count(), max(n * 2, n + 10))
        if n_results <= 0:
            return {}
        # A scope is filtered inside Chroma, so its nearest sentences are not crowded
        # out of the result by closer ones from documents outside it.
        where = {"source": {"$in": sorted(sources)}} if sources is not None else None
        result = self.index.collection.query(
            query_embeddings=[vector.astype(np.float32)],
            n_results=n_results,
            include=["distances"],
            where=where,
        )
        scores = {}
        for chunk_id, distance in zip(result["ids"][0], result["distances"][0], strict=True):
            if chunk_id in self.view.chunks:
                scores[chunk_id] = 1.0 - float(distance)  # cosine distance -> similarity
        return scores

    def retrieve(
        self, query: str, k: int, sources: Collection[str] | None = None
    ) -> list[Evidence]:
        """The ``k`` best sentences by fused rank, each with its dense and BM25 scores.

        ``sources`` limits the search to those documents (None: all of them); an empty
        scope finds nothing rather than everything.
        """
        if sources is not None and not sources:
            return []
        pool = max(POOL_FACTOR * k, POOL_MIN)
        dense = self.dense_scores(query, pool, sources)
        lexical = self.view.bm25_scores(query)
        if sources is not None:
            allowed = set(sources)
            lexical = {i: s for i, s in lexical.items() if self.view.chunks[i].source in allowed}
            dense = {i: s for i, s in dense.items() if self.view.chunks[i].source in allowed}
        # Ties (equal BM25 scores are common) are broken by chunk id, never by the
        # order a dict or set happened to be filled in: the same question gets the
        # same candidates in every process.
        dense_rank = sorted(dense, key=lambda i: (-dense[i], i))[:pool]
        lexical_rank = sorted(lexical, key=lambda i: (-lexical[i], i))[:pool]
        fused = rrf([dense_rank, lexical_rank])
        best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        return [
            self.view.evidence(
                i, score=fused[i], dense=dense.get(i, 0.0), lexical=lexical.get(i, 0.0)
            )
            for i in best
        ]
