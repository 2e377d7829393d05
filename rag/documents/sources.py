"""Sources: which files an ingest reads, under which names, and who may write.

``discover`` lists the supported files under the given paths with their source names
(relative to their root); ``unique_source`` keeps names unique across roots and keeps
a file's name when it is reached through another root; ``ingest_lock`` lets one
ingest at a time write a data directory (a second one waits, saying so, or fails at
once). Reading and splitting files is ``rag.documents.loading`` /
``rag.documents.chunking``; writing the index is ``rag.index.ingest``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from rag.documents.loading import is_supported
from rag.errors import IngestBusyError
from rag.types import DocumentRecord, IngestReport

Notify = Callable[[str], None]


@contextmanager
def ingest_lock(data_dir: Path, wait: bool = True, notify: Notify | None = None) -> Iterator[None]:
    """Hold the data directory's ingest lock; the OS releases it if we are killed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(data_dir / "ingest.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise IngestBusyError(
                f"Another ingest is running on {data_dir}. Wait for it to finish and try again."
            ) from None
        if notify:
            notify(f"Another ingest is running on {data_dir}; waiting for it to finish...")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@dataclass(frozen=True)
class SourceFile:
    path: Path
    source: str


def discover(paths: Sequence[Path], report: IngestReport, images: bool = False) -> list[SourceFile]:
    """Supported files under ``paths``, each with its source name (relative to its root).

    A file reached through two of the paths (``docs docs/sub``) is listed once; image
    files are listed with ``images`` (OCR reads them), else skipped as unsupported.
    """
    found: list[SourceFile] = []
    seen: set[Path] = set()

    def add(path: Path, source: str) -> None:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            found.append(SourceFile(path, source))

    for root in paths:
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(root)
                if any(part.startswith(".") for part in rel.parts) or not path.is_file():
                    continue
                if is_supported(path, images):
                    add(path, rel.as_posix())
                else:
                    report.skipped.append({"source": rel.as_posix(), "reason": "unsupported type"})
        elif root.is_file():
            add(root, root.name)
        else:
            report.warnings.append(f"{root}: no such file or directory")
    return found


def unique_source(
    known: Mapping[str, DocumentRecord], file: SourceFile, taken: set[str],
    by_path: Mapping[str, str],
) -> str:  # fmt: skip
    """Keep sources unique when two roots hold the same relative path.

    A file already in the index keeps its source when reached through another root
    (``rag ingest docs`` then ``rag ingest docs/sub``), so it is never indexed twice.
    """
    indexed = by_path.get(str(file.path.resolve()))
    if indexed is not None and indexed not in taken:
        return indexed
    source = file.source
    record = known.get(source)
    if source not in taken and (record is None or record.path in ("", str(file.path.resolve()))):
        return source
    return f"{file.path.resolve().parent.name}/{source}"
