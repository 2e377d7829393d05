"""The live index: the one owner of the open index in a long-running process.

A web chat (or an HTTP server) answers many questions over hours while documents
are added and removed, here or by another process. ``LiveIndex`` owns what that
needs: the open ``Index`` and its ``Retriever``, the lock that keeps a query and an
index swap (or an in-process ingest) apart, reopening when the index changed on
disk or in the shared manifest (an embedded Chroma client does not see another
process's writes until it is reopened), the document list, and ingest and removal in-process.

It does not answer questions (``rag.pipeline``) or decide how files are read and
split (``rag.index.ingest``).
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.index.catalog import is_shared
from rag.index.embedding import Embedder
from rag.index.ingest import Progress, ingest, read_scans
from rag.index.removal import remove_document
from rag.index.retrieval import Retriever
from rag.index.store import DocumentRecord, Index, forget_chroma_clients
from rag.settings import Settings
from rag.types import Document, IngestReport


class LiveIndex:
    """The open index of one process, reopened when it changes on disk."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.index = Index.open(settings)
        self.retriever = Retriever(self.index, embedder, settings.context_sentences)
        # Held while answering and while the index is swapped or written in-process:
        # reopening Chroma under a running query (or ingest) would pull it away.
        self.lock = threading.RLock()
        # A local manifest is read on every request (two SQLite reads); a shared one
        # at most every manifest_poll_s, so that a busy replica does not turn each
        # request into round trips to the database. Changes made here refresh at once.
        self._poll_s = settings.manifest_poll_s if is_shared(settings) else 0.0
        self._checked_at = time.monotonic()

    def refresh(self, force: bool = False) -> bool:
        """Reopen the index if it changed (an ingest here, in another process, or on
        another replica sharing the manifest)."""
        with self.lock:
            checked = time.monotonic()
            if not force and checked - self._checked_at < self._poll_s:
                return False
            generation = self.index.catalog.live()
            current = self.index.generation
            if generation == current and self.index.revision == self.retriever.view.revision:
                self._checked_at = checked
                return False
            self.index.close()
            forget_chroma_clients()
            self.index = Index.open(self.settings)
            self.retriever = Retriever(self.index, self.embedder, self.settings.context_sentences)
            self._checked_at = checked
            return True

    @contextmanager
    def reading(self) -> Iterator[Retriever]:
        """The up-to-date retriever, held against swaps for the duration of a query."""
        with self.lock:
            self.refresh()
            yield self.retriever

    def check_store(self) -> None:
        """Raise ``StoreUnavailableError`` if the Chroma server is down (readiness)."""
        self.index.check_store()

    def documents(self) -> list[DocumentRecord]:
        with self.lock:
            self.refresh()
            return self.index.documents()

    def match(self, patterns: Sequence[str]) -> frozenset[str]:
        """The live sources that ``patterns`` name: exact sources or glob patterns
        (``reports/*.pdf``, ``*guide*``); case-sensitive, as sources are."""
        with self.lock:
            self.refresh()
            sources = list(self.retriever.view.documents)
        return frozenset(
            source
            for source in sources
            if any(source == p or fnmatch.fnmatchcase(source, p) for p in patterns)
        )

    def document(self, source: str) -> Document | None:
        with self.lock:
            self.refresh()
            return self.index.document(source)

    def ingest(
        self,
        paths: Sequence[Path],
        progress: Progress | None = None,
        *,
        prune: bool = False,
        only: Collection[Path] | None = None,
        embedder: Embedder | None = None,
    ) -> IngestReport:
        """Ingest ``paths`` into this index now (fails at once if another ingest runs).

        ``prune``, ``only`` and ``embedder`` are ``rag.index.ingest.ingest``'s (folder sync)."""
        options: dict[str, Any] = {"prune": prune, "only": only, "embedder": embedder}
        if progress is not None:
            options["progress"] = progress
        # OCR first, outside the lock: questions are answered during a long scan.
        read = read_scans(self.settings, list(paths), progress or (lambda *_: None), only)
        with self.lock:
            report = ingest(self.settings, list(paths), wait=False, scans_read=read, **options)
            self.refresh(force=True)
        return report

    def remove(self, source: str) -> tuple[Document | None, int]:
        """Remove one document; returns what it was (None if unknown) and its chunk count."""
        with self.lock:
            doc = self.index.document(source)
            removed = remove_document(self.settings, source, wait=False)
            self.refresh(force=True)
        return doc, removed

    def close(self) -> None:
        with self.lock:
            self.index.close()
