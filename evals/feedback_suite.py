"""Writing an exported suite: the YAML file and, beside it, the text of its documents.

The suite must run on any machine (``rag eval SUITE.yaml``), so it carries its corpus:
the text of each document it needs, exactly as indexed (``Document.text``), in
``SUITE_docs/`` beside it. Markdown and plain text keep their names, so ingesting them
again gives the same text, offsets and sentences. Other formats (PDF, HTML, DOCX) are
written as their extracted text, ``NAME.txt``, as ``rag draft-suite`` does: the text and
offsets are the same, though a PDF's sentences may split a little differently under the
plain-text rules. Every file written is read back with the loader and compared, so a
text that would not survive the trip is an error, not a silently different suite.

What becomes a case is ``evals.feedback_export``'s; this module only writes.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evals.feedback_export import CHANGED_TAG, ExportCase, ExportReport, LeftOut
from evals.reader_labels import dump_cases
from evals.schema import load_suite
from rag.documents.loading import load_file
from rag.errors import InputError, RagError
from rag.types import Document

# Each exported case is a rating that must keep holding: one wrong answer fails the gate.
THRESHOLDS: dict[str, float] = {
    "correctness": 1.0, "faithfulness": 1.0, "citation_validity": 1.0, "max_hallucinations": 0,
}  # fmt: skip
# Hidden, so ingest skips it; says that --force may replace the folder.
MARKER = ".rag-feedback-export"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class Written:
    suite: Path
    folder: Path
    files: dict[str, str]  # source -> file name in the folder

    def to_json(self) -> dict[str, Any]:
        return {"suite": str(self.suite), "documents_folder": str(self.folder),
                "documents": dict(self.files)}  # fmt: skip


def docs_folder(out: Path) -> Path:
    return out.with_name(f"{out.stem}_docs")


def file_names(documents: Iterable[Document]) -> dict[str, str]:
    """source -> a safe relative file name (sub-folders kept, ``..`` dropped), unique
    even on a file system that ignores case."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for doc in sorted(documents, key=lambda d: d.source):
        parts = [p for p in doc.source.replace("\\", "/").split("/") if p not in ("", ".", "..")]
        parts = [_UNSAFE.sub("_", p).lstrip(".") or "_" for p in parts] or ["document"]
        name = "/".join(parts) + ("" if doc.kind in ("md", "txt") else ".txt")
        stem, dot, suffix = name.rpartition(".")
        number = 1
        while name.casefold() in taken:
            number += 1
            name = f"{stem}-{number}.{suffix}" if dot else f"{suffix}-{number}"
        taken.add(name.casefold())
        names[doc.source] = name
    return names


def check_target(out: Path, force: bool) -> None:
    """Refuse to overwrite what the user did not ask to, before any work is done."""
    folder = docs_folder(out)
    if out.is_dir():
        raise InputError(f"{out} is a folder: pass the suite file to write, e.g. -o {out}/x.yaml")
    if not force and (out.exists() or folder.exists()):
        raise InputError(f"{out} or {folder} exists; pass --force to overwrite them.")
    if folder.exists() and not (folder / MARKER).exists():
        raise InputError(
            f"{folder} exists and was not written by rag feedback export: move it away or "
            "choose another -o."
        )


def _line(text: str) -> str:
    return " ".join(text.split())


def _case_row(case: ExportCase, names: Mapping[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": case.id, "kind": case.kind, "question": case.question}
    if case.history:
        row["history"] = list(case.history)
    if case.expected:
        row["expected"] = [[fact] for fact in case.expected]
    if case.expected_quote:
        row["expected_quote"] = list(case.expected_quote)
    if case.document:
        row["document"] = names[case.document]
    if case.changed:
        row["tags"] = [CHANGED_TAG]
    return row


def _left_out(title: str, items: Sequence[LeftOut]) -> list[str]:
    lines = [f"# {title} ({len(items)}):"] if items else []
    for item in items:
        lines.append(f"#   {', '.join(item.record_ids)}: {_line(item.question)!r}: {item.reason}")
    return lines


def suite_text(report: ExportReport, names: Mapping[str, str], name: str, folder: str,
               today: str, since: str | None) -> str:  # fmt: skip
    """The suite as YAML: a header to review by, each case after the ratings it comes
    from, and what was left out at the end."""
    kinds = Counter(c.kind for c in report.cases)
    flagged = [c for c in report.cases if c.changed]
    header = [
        f"Exported from feedback by `rag feedback export` on {today}. REVIEW BEFORE COMMITTING:",
        "each case is a user's rating, kept as a regression that must pass. Check that each",
        "question is worth keeping, that the expected fact answers it, and that an",
        "unanswerable case is really not answered by the documents.",
        f"{report.ratings} rating(s) read{f' since {since}' if since else ''}: "
        + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        + " case(s);",
        f"{len(report.skipped)} left out, {len(report.review)} for review and "
        f"{len(report.conflicts)} conflict(s), listed at the end.",
        f"corpus: the text of the documents the cases need, as indexed on {today}, in",
        f"{folder}/ beside this file, so that the suite runs on any machine.",
    ]
    if flagged:
        header.append(f"{len(flagged)} case(s) FLAGGED (tag {CHANGED_TAG}): their documents "
                      "changed since the rating.")  # fmt: skip
    top = {
        "name": name,
        "description": f"Exported from feedback on {today}; reviewed: no (edit this line "
        "when it is).",
        "corpus": folder,
        "thresholds": THRESHOLDS,
    }
    lines = [f"# {line}" for line in header]
    lines.append(yaml.safe_dump(top, sort_keys=False, allow_unicode=True, width=100).rstrip())
    lines.append("cases:")
    for case in report.cases:
        ratings = "ratings" if len(case.record_ids) > 1 else "rating"
        lines.append(f"# {ratings} {', '.join(case.record_ids)} of {case.created_at[:10]}: "
                     f"{_line(case.origin)}")  # fmt: skip
        for source in case.changed:
            lines.append(f"# FLAGGED: {source} changed since the rating: check the case holds.")
        lines.append(dump_cases([_case_row(case, names)]).rstrip())
    lines += _left_out("Left out", report.skipped)
    lines += _left_out("For review (not exported)", report.review)
    if report.conflicts:
        lines.append(f"# Conflicts, not exported ({len(report.conflicts)}):")
    for conflict in report.conflicts:
        lines.append(f"#   {', '.join(conflict.record_ids)}: {_line(conflict.question)!r}: "
                     f"{conflict.reason}")  # fmt: skip
    return "\n".join(lines) + "\n"


def _write_document(path: Path, name: str, document: Document) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Bytes, not text mode: no newline translation may change a character.
    path.write_bytes(document.text.encode("utf-8"))
    if load_file(path, name).text != document.text:
        raise RagError(
            f"The text of {document.source!r} does not read back the same from {path}, so "
            "the exported suite would test another text. Please report this."
        )


def write_export(report: ExportReport, documents: Mapping[str, Document], out: Path,
                 force: bool, today: str, since: str | None = None) -> Written:  # fmt: skip
    """Write the suite to ``out`` and its documents beside it; returns what was written."""
    check_target(out, force)
    folder = docs_folder(out)
    needed = [documents[s] for s in report.sources(documents)]
    names = file_names(needed)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():
            shutil.rmtree(folder)  # only a folder an earlier export wrote (check_target)
        folder.mkdir()
        (folder / MARKER).write_text("Written by rag feedback export; --force replaces it.\n")
        for doc in needed:
            _write_document(folder / names[doc.source], names[doc.source], doc)
        out.write_text(
            suite_text(report, names, out.stem, folder.name, today, since), encoding="utf-8"
        )
    except OSError as exc:
        raise InputError(
            f"Cannot write {out} ({exc.strerror or exc}): choose another -o, or make its "
            "folder writable."
        ) from exc
    load_suite(out)  # what was written must be a suite the runner accepts
    return Written(out, folder, names)
