"""The multi-document benchmark: real documents from downloaded packages, split by
document into dev (tuned on) and test (never tuned on). See evals/benchmark/README.md.

This module checks the benchmark's case files, and the reader corpus's (evals/reader/),
against their documents (every expected fact and quote must be in the document the
case names, as the loader reads it; an answer span must hold its fact) so that a
typo in a case is caught when it is written, not mistaken for an answerer miss.
It does not run the answerer: ``rag eval`` does.

    python -m evals.benchmark check evals/benchmark/cases/dev/*.yaml
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from functools import cache
from pathlib import Path

from evals.reader_labels import DOCS_DIR as READER_DOCS  # checked the same way
from evals.schema import ANSWERING_KINDS, BENCHMARK_DIR, REFUSING_KINDS, Case, load_case_file
from rag.documents.loading import load_file

SPLITS = ("dev", "test")


def normalise(text: str) -> str:
    """Lower case, PDF line-end hyphens joined, whitespace collapsed."""
    text = re.sub(r"(?<=[a-z])-\s*\n\s*(?=[a-z])", "", text)
    return " ".join(text.lower().split())


def document_path(name: str) -> Path | None:
    for folder in [BENCHMARK_DIR / "docs" / split for split in SPLITS] + [READER_DOCS]:
        path = folder / name
        if path.is_file():
            return path
    return None


@cache
def raw_text(name: str) -> str | None:
    path = document_path(name)
    return None if path is None else load_file(path, name).text


@cache
def document_text(name: str) -> str | None:
    raw = raw_text(name)
    return None if raw is None else normalise(raw)


def problems(case: Case) -> list[str]:
    """What is wrong with one case (empty: it is consistent with its document)."""
    found: list[str] = []
    if not case.document:
        return ["no document"]
    text = document_text(case.document)
    if text is None:
        return [f"document {case.document} is not in the benchmark or the reader corpus"]
    if case.kind in ANSWERING_KINDS and not case.expected:
        found.append("an answering case needs expected facts")
    if case.kind in REFUSING_KINDS and (case.expected or case.expected_quote):
        found.append("a refusing case has no expected facts or quotes")
    if case.kind == "followup" and not case.history:
        found.append("a follow-up needs history")
    for group in case.expected:
        if not any(normalise(alt) in text for alt in group):
            found.append(f"expected fact not in the document: {' / '.join(group)}")
    for quote in case.expected_quote:
        if normalise(quote) not in text:
            found.append(f"expected quote not in the document: {quote}")
    return found + span_problems(case)


def span_problems(case: Case) -> list[str]:
    """Each answer span must hold one alternative of its expected group, at its offsets."""
    if not case.spans:
        return []
    if len(case.spans) != len(case.expected):
        return [f"{len(case.spans)} spans for {len(case.expected)} expected groups"]
    raw = raw_text(case.document or "") or ""
    found = []
    for (start, end), group in zip(case.spans, case.expected, strict=True):
        held = " ".join(raw[start:end].lower().split())
        if end > len(raw) or held not in {" ".join(alt.lower().split()) for alt in group}:
            found.append(f"span [{start}, {end}] holds {raw[start:end]!r}, not {' / '.join(group)}")
    return found


def check(paths: list[Path]) -> int:
    """Print every problem and a per-kind count; the number of bad cases."""
    bad = 0
    ids: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    for path in paths:
        for case in load_case_file(path):
            ids[case.id] += 1
            kinds[case.kind] += 1
            tags.update(case.tags)
            for problem in problems(case):
                bad += 1
                print(f"{path.name} {case.id}: {problem}")
    for case_id, count in ids.items():
        if count > 1:
            bad += 1
            print(f"duplicate id {case_id} ({count} times)")
    print(
        f"{sum(kinds.values())} cases: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    )
    print("tags: " + ", ".join(f"{k} {n}" for k, n in sorted(tags.items())))
    return bad


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "check":
        print("usage: python -m evals.benchmark check CASE_FILE...", file=sys.stderr)
        return 2
    return 1 if check([Path(p) for p in argv[1:]]) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
