"""The reader's training data: every reader-corpus question with the candidates the
real retriever brings for it, each labelled by the question's answer offsets.

The first stage of ``make train-reader`` (``evals.reader_train``). The 109 documents of
``evals/reader/docs`` are indexed once into a cache directory (ingest is incremental:
a killed run resumes where it stopped), and each question of ``evals/reader/cases`` is
retrieved as the pipeline retrieves it (a follow-up resolved first, the same number of
candidates the answerer chooses from). A candidate is positive when it holds one of
the question's answer spans (``spans``: offsets into the loaded text of its
document); refusing kinds have no positive. One JSON line per question, written as it
goes, so a rerun only retrieves the questions not yet written::

    python -m evals.reader_data [--out .cache/reader/candidates.jsonl]

Reads neither the benchmark nor the article suite: the reader is judged on them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from evals.candidates import CANDIDATES, holds_span
from evals.reader_labels import DOCS_DIR, READER_DIR
from evals.schema import ANSWERING_KINDS, REFUSING_KINDS, Case, load_suite
from rag.answering.question import resolve_followup
from rag.index.retrieval import Evidence, Retriever

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".cache" / "reader"
CANDIDATES_FILE = CACHE_DIR / "candidates.jsonl"
READER_SUITE = READER_DIR / "reader.yaml"


@dataclass(frozen=True)
class Candidate:
    """A retrieved sentence as the reader sees it, with its label."""

    source: str
    title: str
    quote: str
    start: int
    end: int
    heading: str
    context: str
    is_heading: bool
    dense: float
    lexical: float
    label: int

    @classmethod
    def of(cls, evidence: Evidence, label: int) -> Candidate:
        shared = {f.name: getattr(evidence, f.name) for f in fields(cls) if f.name != "label"}
        # Rounded: the embedder's multithreaded sums differ in the last bits.
        shared.update(dense=round(evidence.dense, 6), lexical=round(evidence.lexical, 6))
        return cls(**shared, label=label)


@dataclass(frozen=True)
class Question:
    """One labelled question and its candidates, in retrieval order."""

    id: str
    document: str
    kind: str
    question: str
    query: str  # the self-contained question (a follow-up resolved)
    candidates: list[Candidate]

    @property
    def answerable(self) -> bool:
        return any(c.label for c in self.candidates)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Question:
        raw = json.loads(line)
        candidates = [Candidate(**c) for c in raw.pop("candidates")]
        return cls(candidates=candidates, **raw)


def labelled_cases(documents: Collection[str] | None = None) -> list[Case]:
    """The reader corpus's questions the reader learns from (those on ``documents``
    only, when given): answering ones with offsets, and refusing ones (no positive)."""
    suite = load_suite(READER_SUITE)
    return [
        c
        for c in suite.cases
        if (c.kind in REFUSING_KINDS or (c.kind in ANSWERING_KINDS and c.spans))
        and (documents is None or c.document in documents)
    ]


def read_questions(path: Path = CANDIDATES_FILE) -> list[Question]:
    """The written questions (a torn last line from a killed run is skipped)."""
    if not path.is_file():
        return []
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            questions.append(Question.from_json(line))
        except (ValueError, TypeError, KeyError):
            continue
    return questions


def data_hash(questions: list[Question]) -> str:
    """A fingerprint of the training data (questions, candidates and labels)."""
    digest = hashlib.sha256()
    for q in sorted(questions, key=lambda q: q.id):
        digest.update(q.to_json().encode())
    return digest.hexdigest()[:16]


def build(
    out: Path = CANDIDATES_FILE,
    documents: Collection[str] | None = None,
    progress: bool = True,
) -> list[Question]:
    """Index the reader corpus (cached beside ``out``) and write every question's
    candidates; ``documents`` limits both to those documents (a test's slice)."""
    from rag.index.ingest import ingest
    from rag.pipeline import build_pipeline
    from rag.settings import load_settings

    cases = labelled_cases(documents)
    done = {q.id for q in read_questions(out)}
    todo = [c for c in cases if c.id not in done]
    if todo:
        settings = load_settings().model_copy(
            update={"data_dir": out.parent / "index", "answer_selector": "rules"}
        )
        if progress:
            print(f"Indexing {DOCS_DIR} (cached in {settings.data_dir})...", file=sys.stderr)
        paths = [DOCS_DIR] if documents is None else [DOCS_DIR / d for d in sorted(documents)]
        ingest(settings, paths)
        pipeline = build_pipeline(settings)
        try:
            retriever = pipeline.live.retriever
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a", encoding="utf-8") as sink:
                for n, question in enumerate(_retrieve(retriever, todo), start=1):
                    sink.write(question.to_json() + "\n")
                    if progress and n % 250 == 0:
                        print(f"  {n}/{len(todo)} questions retrieved", file=sys.stderr)
        finally:
            pipeline.close()
    by_id = {q.id: q for q in read_questions(out)}
    return [by_id[c.id] for c in cases if c.id in by_id]


def _label(case: Case, evidence: Evidence) -> int:
    """Positive when the sentence holds one of the case's answer spans."""
    return int(any(holds_span(case, evidence, span) for span in case.spans or []))


def _retrieve(retriever: Retriever, cases: list[Case]) -> Iterator[Question]:
    for case in cases:
        query = resolve_followup(case.question, list(case.history))
        found = retriever.retrieve(query, CANDIDATES)
        refuse = case.kind in REFUSING_KINDS
        yield Question(
            id=case.id,
            document=case.document or "",
            kind=case.kind,
            question=case.question,
            query=query,
            candidates=[Candidate.of(e, 0 if refuse else _label(case, e)) for e in found],
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.reader_data", description=__doc__)
    parser.add_argument("--out", type=Path, default=CANDIDATES_FILE)
    args = parser.parse_args(argv)
    questions = build(args.out)
    answerable = sum(q.answerable for q in questions)
    print(
        f"{len(questions)} questions, {answerable} with a positive candidate, "
        f"data hash {data_hash(questions)}: {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
