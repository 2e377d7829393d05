"""Folder sync: keep the index in step with a folder (``rag ingest/serve --watch``).

``FolderWatcher`` polls the folder's supported files (size and modification time)
and says which ones are ready to sync: new or changed files whose size and mtime
have stayed the same for ``debounce_s`` and across at least two polls (a file still
being written, or copied, waits and is retried; it is not indexed half-written), and
files gone for as long. ``watch`` runs the loop: each ready batch goes through the
incremental ingest (``rag.index.ingest.ingest`` with ``only`` the ready files and ``prune``
for the gone ones), so unchanged text costs nothing and a crash mid-sync leaves the
index as crash-safe as any ingest. A failed sync (another ingest holds the lock, the
Chroma server is down) is retried at the next poll.

Polling, not inotify: no native dependency, and it works on network and container
mounts where change events are not delivered; the cost is one ``stat`` per file per
poll. A writer that pauses longer than ``debounce_s`` mid-file can still be seen
half-way; write to a temporary (hidden, ``.name``) file and rename it into place to
be exact. Which files are supported is ``rag.documents.loading``; how they are indexed is
``rag.index.ingest``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.documents.loading import is_supported
from rag.errors import RagError
from rag.index.embedding import Embedder
from rag.settings import Settings
from rag.types import IngestReport

# (size in bytes, mtime in ns): cheap to read, and changes with any write.
FileState = tuple[int, int]


def scan(root: Path, images: bool = False) -> dict[Path, FileState]:
    """The supported, non-hidden files under ``root`` (as
    ``rag.documents.sources.discover`` picks; ``images`` when OCR reads them)."""
    found: dict[Path, FileState] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not is_supported(path, images):
            continue
        try:
            stat = path.stat()
        except OSError:
            continue  # removed between the listing and the stat: the next poll sees it gone
        if path.is_file():
            found[path.resolve()] = (stat.st_size, stat.st_mtime_ns)
    return found


@dataclass(frozen=True)
class Pending:
    """What one poll found ready to sync, and how many changed files must still settle."""

    changed: dict[Path, FileState] = field(default_factory=dict)
    removed: frozenset[Path] = frozenset()
    waiting: int = 0
    initial: bool = False  # the first look at an empty folder: prune what is gone

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed or self.initial)


class FolderWatcher:
    """Which files of ``root`` are ready to sync, poll after poll (no I/O but ``scan``)."""

    def __init__(
        self, root: Path, debounce_s: float, clock: Callable[[], float] = time.monotonic,
        images: bool = False,
    ) -> None:  # fmt: skip
        self.root = root.resolve()
        self.images = images
        self.debounce_s = debounce_s
        self.clock = clock
        self.polls = 0
        self._seen: dict[Path, tuple[FileState, float, int]] = {}  # state, since, first poll
        self._gone: dict[Path, float] = {}
        self._synced: dict[Path, FileState] = {}
        self._first = True

    def poll(self) -> Pending:
        now = self.clock()
        self.polls += 1
        current = scan(self.root, self.images)
        for path, state in current.items():
            seen = self._seen.get(path)
            if seen is None or seen[0] != state:
                self._seen[path] = (state, now, self.polls)
        for path in set(self._seen) - set(current):
            del self._seen[path]
        for path in set(self._synced) - set(current):
            self._gone.setdefault(path, now)
        for path in set(self._gone) & set(current):
            del self._gone[path]

        changed: dict[Path, FileState] = {}
        waiting = 0
        for path, (state, since, first_poll) in self._seen.items():
            if self._synced.get(path) == state:
                continue
            # Two polls at least, so even with no debounce a size seen once is confirmed.
            if first_poll < self.polls and now - since >= self.debounce_s:
                changed[path] = state
            else:
                waiting += 1
        removed = frozenset(p for p, since in self._gone.items() if now - since >= self.debounce_s)
        # Every sync prunes, so documents of files deleted while nobody watched go at
        # the first one; an empty folder would have none without this.
        initial = self._first and not current
        return Pending(changed=changed, removed=removed, waiting=waiting, initial=initial)

    def mark_synced(self, pending: Pending) -> None:
        self._first = False
        self._synced.update(pending.changed)
        for path in pending.removed:
            self._synced.pop(path, None)
            self._gone.pop(path, None)


Sync = Callable[[Pending], IngestReport]


def watch(
    watcher: FolderWatcher,
    sync: Sync,
    interval_s: float,
    on_sync: Callable[[Pending, IngestReport], None],
    on_error: Callable[[RagError], None],
    stop: threading.Event | None = None,
) -> None:
    """Poll and sync until ``stop`` is set (or Ctrl+C reaches the caller)."""
    stop = stop or threading.Event()
    while not stop.is_set():
        pending = watcher.poll()
        if pending:
            try:
                report = sync(pending)
            except RagError as exc:
                on_error(exc)  # not marked synced: retried at the next poll
            else:
                watcher.mark_synced(pending)
                on_sync(pending, report)
        stop.wait(interval_s)


def describe_sync(root: Path, pending: Pending, report: IngestReport) -> str:
    """One progress line per sync."""
    parts = [
        f"{report.documents_added} added",
        f"{report.documents_updated} updated",
        f"{report.documents_removed} removed",
        f"{report.documents_unchanged} unchanged",
    ]
    line = (
        f"{time.strftime('%H:%M:%S')} synced {root}: {', '.join(parts)}; "
        f"{report.chunks_embedded} chunks embedded in {report.seconds:.1f}s"
    )
    if pending.waiting:
        line += f" ({pending.waiting} file(s) still being written: retried)"
    return line


def load_failures(report: IngestReport) -> list[str]:
    """Files that could not be indexed (not those of an unsupported type: never watched)."""
    return [
        f"{s['source']}: {s['reason']}" for s in report.skipped if s["reason"] != "unsupported type"
    ]


def ingest_sync(settings: Settings, root: Path, embedder: Embedder | None = None) -> Sync:
    """Sync through a plain ingest (``rag ingest --watch``, and ``rag serve`` with workers)."""
    from rag.index.ingest import ingest

    def sync(pending: Pending) -> IngestReport:
        return ingest(settings, [root], prune=True, only=list(pending.changed), embedder=embedder)

    return sync
