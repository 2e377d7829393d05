"""Drafting an eval suite for the user's own documents, for a person to review.

``draft_suite`` samples sentences of the documents (a fixed seed), asks an LLM for
one question each and the key fact that answers it (a short span copied from the
sentence), and keeps a question only when cheap checks pass: the fact is a span of
the sentence and not given away by the question, and the sentence is among the top
candidates the retriever finds for the question. What it keeps becomes cases of the
suite schema (``evals.schema``), so ``rag eval`` runs the draft:

- ``answerable``: the question, ``expected`` the fact, ``expected_quote`` the sentence;
- ``unanswerable`` (made by deletion): a question whose fact no other sentence states
  (no retrieved candidate but its own, and no other place in the text, holds the fact);
  the suite's corpus is a copy of the documents with those sentences deleted, and the
  fact is ``forbidden`` in the answer;
- ``followup``: a later question rewritten with "it" for the subject it shares with an
  earlier one (``history``), kept when the follow-up still retrieves its sentence.

It does not judge whether a question is good; that is the reviewer's job, and the
suite file says so at the top. The prompt and the checks answer what
``evals/selector/README.md`` found weak in ``evals.selector_data``'s questions: no
previous-sentence context, a worked example, and a retrieval consistency filter.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from evals.selector_data import eligible
from rag.documents.chunking import sentence_windows
from rag.documents.loading import LoadError, load_file
from rag.documents.sources import discover
from rag.errors import InputError
from rag.generators import Backend
from rag.text import words
from rag.types import Chunk, Document, IngestReport

# The sentence must be among this many candidates retrieved for its question (the
# README's consistency filter; 5 is the default top-k, what an answer can quote).
CONSISTENCY_TOP = 5
# A fact must be missing from this many candidates for a deletion to count as "no
# other sentence states it" (the answerer chooses among 15: rag.pipeline).
DELETION_CANDIDATES = 15
MAX_FACT_WORDS = 10
# The mix of a draft: about a fifth unanswerable, a tenth follow-ups, the rest answerable.
UNANSWERABLE_SHARE = 0.2
FOLLOWUP_SHARE = 0.1
# LLM calls allowed per question wanted: most sentences give a question that passes.
TRIES_PER_QUESTION = 4

SYSTEM_PROMPT = """You write test questions about a document, one sentence at a time.
Ask one short question that the sentence alone answers, as a user of the document would
ask it, in your own words (keep names, options, commands and numbers exactly as written).
Then copy the key fact that answers it: a short span of the sentence, word for word
(a number, a name, an option, or a few words), never the whole sentence.
Reply in exactly two lines:
Question: <the question>
Answer: <the span copied from the sentence>
If the sentence states no fact a user would ask about, reply: Question: NONE"""

FEW_SHOT = [
    {"role": "user", "content": "Document: Orion pump manual\nSection: Configuration\n"
     "Sentence: At start-up the pump reads its settings from /etc/orion.conf and ignores "
     "any other file."},
    {"role": "assistant", "content": "Question: Which file does the pump take its settings "
     "from?\nAnswer: /etc/orion.conf"},
    {"role": "user", "content": "Document: Orion pump manual\nSection: Notes\n"
     "Sentence: The details follow below, in the next part of this manual."},
    {"role": "assistant", "content": "Question: NONE"},
]  # fmt: skip

_QUESTION = re.compile(r"^\s*question\s*:\s*(.+?)\s*$", re.I | re.M)
_ANSWER = re.compile(r"^\s*answer\s*:\s*(.+?)\s*$", re.I | re.M)
_ANSWER_LINE = re.compile(r"answer\s*:[^\n]*\S[^\n]*\n", re.I)
# Words a subject phrase never starts, ends or is made of.
_GLUE = frozenset(
    "a an the is are was were be do does did has have of to in on at for by with from and or "
    "what which who whom whose when where why how can could should would will it its".split()
)
_NAMED = re.compile(r"^[A-Z]|[0-9_./-]")  # "Vixie", "Orion-5", "config.h"
_ARTICLE = r"(?:(?:the|a|an)\s+)?"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Proposal:
    """A question the LLM wrote for one sentence, and the fact that answers it."""

    question: str
    fact: str
    source: str
    start: int
    end: int
    sentence: str  # whitespace collapsed: what ``expected_quote`` matches


@dataclass
class Draft:
    """The drafted cases and what happened on the way (for the reviewer and the CLI)."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    sentences: dict[str, str] = field(default_factory=dict)  # case id -> source sentence
    deleted: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # source -> spans
    tried: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, int]:
        return dict(Counter(str(c["kind"]) for c in self.cases))


def load_documents(paths: Sequence[Path]) -> list[Document]:
    """The supported files under ``paths``; a path that is missing, unreadable or holds
    no supported file is an error naming it."""
    documents = []
    for path in paths:
        report = IngestReport()
        if not path.exists():
            raise InputError(f"{path}: no such file or directory.")
        found = discover([path], report)
        if not found:
            raise InputError(
                f"{path}: no supported document (.md, .txt, .html, .pdf, .docx) to draft from."
            )
        for file in found:
            try:
                documents.append(load_file(file.path, file.source))
            except LoadError as exc:
                raise InputError(f"Cannot draft from {file.path}: {exc}") from exc
    return documents


def sample_sentences(documents: Sequence[Document], seed: int) -> list[tuple[Document, Chunk]]:
    """Every eligible sentence of every document, in an order fixed by ``seed``."""
    pool = [(doc, chunk) for doc in documents for chunk in sentence_windows(doc) if eligible(chunk)]
    random.Random(seed).shuffle(pool)
    return pool


def build_messages(title: str, heading: str, sentence: str) -> list[dict[str, str]]:
    """The prompt for one sentence: rules, a worked example and a "NONE", the sentence."""
    asked = f"Document: {title}\nSection: {heading or title}\nSentence: {sentence}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, *FEW_SHOT,
            {"role": "user", "content": asked}]  # fmt: skip


def read_reply(tokens: Iterator[str]) -> str:
    """The reply up to the end of its "Answer:" line (the model is stopped there)."""
    text = ""
    for token in tokens:
        text += token
        if _ANSWER_LINE.search(text) or "NONE" in text:
            break
    return text


def locate(fact: str, sentence: str) -> str | None:
    """``fact`` as the sentence writes it (case and spacing), or None if it is not a span."""
    fact = " ".join(fact.split()).strip(" \"'`“”‘’")
    fact = re.sub(r"[.,;:]+$", "", fact)
    # "-K` or `--key" (a span across Markdown code marks): the first code span, "-K".
    fact = fact.split("`")[0].strip() if "`" in fact else fact
    if not fact:
        return None
    found = sentence.lower().find(fact.lower())
    return sentence[found : found + len(fact)] if found >= 0 else None


def parse_reply(reply: str, sentence: str) -> tuple[str, str] | str:
    """(question, fact) from the model's reply, or the reason it is not usable."""
    question = _QUESTION.search(reply)
    if question is None or question.group(1).strip().upper().startswith("NONE"):
        return "the model found nothing to ask"
    text = " ".join(question.group(1).split()).strip("\"'")
    if not text.endswith("?") or not 3 <= len(text.split()) <= 30:
        return "not a question"
    answer = _ANSWER.search(reply)
    fact = locate(answer.group(1), sentence) if answer else None
    if fact is None:
        return "the answer is not a span of the sentence"
    if len(words(fact)) > MAX_FACT_WORDS or len(fact) >= 0.8 * len(sentence):
        return "the answer is not a short span"
    if " ".join(fact.lower().split()) in " ".join(text.lower().split()):
        return "the question gives its answer away"
    return text, fact


def pronoun_followup(first: str, second: str) -> str | None:
    """``second`` with "it" for the longest phrase (with a named word) it
    shares with ``first``: "Where does Vixie Cron keep its tables?" after "Who wrote
    Vixie Cron?" becomes "Where does it keep its tables?". None if they share none."""
    tokens = second.rstrip("?").split()
    earlier = f" {' '.join(first.lower().rstrip('?').split())} "
    for n in range(min(4, len(tokens) - 1), 0, -1):
        for i in range(1, len(tokens) - n + 1):  # never the question word itself
            phrase = [re.sub(r"['’]s$", "", t.strip(",;:")) for t in tokens[i : i + n]]
            if not all(phrase) or any(w.lower() in _GLUE for w in phrase):
                continue
            if f" {' '.join(phrase).lower()} " not in earlier:
                continue
            if not any(_NAMED.search(w) for w in phrase):
                continue  # "the option", "the file": a common noun, not a named subject
            pattern = rf"\b{_ARTICLE}{re.escape(' '.join(phrase))}(?P<own>['’]s)?\b"
            match = re.search(pattern, second)
            if match is None:
                continue
            pronoun = "its" if match.group("own") else "it"
            return second[: match.start()] + pronoun + second[match.end() :]
    return None


def _is(evidence: Any, proposal: Proposal) -> bool:
    return bool(evidence.source == proposal.source and evidence.start == proposal.start)


def _states(text: str, fact: str) -> bool:
    return " ".join(fact.lower().split()) in " ".join(text.lower().split())


class Drafter:
    """Writes and checks questions over one scratch index of the documents."""

    def __init__(self, backend: Backend, pipeline: Any, documents: Sequence[Document]) -> None:
        self.backend = backend
        self.pipeline = pipeline
        self.documents = {d.source: d for d in documents}

    def propose(self, doc: Document, chunk: Chunk) -> Proposal | str:
        """A checked question for one sentence, or the reason there is none."""
        sentence = " ".join(doc.text[chunk.start : chunk.end].split())
        stream = self.backend.stream(build_messages(doc.title, chunk.heading, sentence))
        try:
            reply = read_reply(iter(stream))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # stops the model after the answer line
        parsed = parse_reply(reply, sentence)
        if isinstance(parsed, str):
            return parsed
        proposal = Proposal(parsed[0], parsed[1], doc.source, chunk.start, chunk.end, sentence)
        _, found = self.pipeline.retrieve(proposal.question, top_k=CONSISTENCY_TOP)
        if not any(_is(e, proposal) for e in found):
            return f"its sentence is not among the top {CONSISTENCY_TOP} retrieved"
        return proposal

    def deletable(self, proposal: Proposal) -> bool:
        """Does no other sentence state the fact? Retrieval, then the whole text."""
        _, found = self.pipeline.retrieve(proposal.question, top_k=DELETION_CANDIDATES)
        if any(_states(e.quote, proposal.fact) for e in found if not _is(e, proposal)):
            return False
        for doc in self.documents.values():
            text = doc.text
            if doc.source == proposal.source:
                text = text[: proposal.start] + text[proposal.end :]
            if _states(text, proposal.fact):
                return False
        return True

    def followup(self, first: Proposal, second: Proposal) -> str | None:
        question = pronoun_followup(first.question, second.question)
        if question is None:
            return None
        _, found = self.pipeline.retrieve(question, top_k=CONSISTENCY_TOP,
                                          history=[first.question])  # fmt: skip
        return question if any(_is(e, second) for e in found) else None


def quotas(max_questions: int) -> tuple[int, int]:
    """(unanswerable, follow-up) cases wanted among ``max_questions``."""
    unanswerable = round(UNANSWERABLE_SHARE * max_questions) if max_questions >= 3 else 0
    followups = round(FOLLOWUP_SHARE * max_questions) if max_questions >= 4 else 0
    return max(unanswerable, 1 if max_questions >= 3 else 0), followups


def draft(
    drafter: Drafter,
    sentences: Sequence[tuple[Document, Chunk]],
    max_questions: int,
    progress: Progress | None = None,
) -> Draft:
    """Up to ``max_questions`` cases from ``sentences`` (in order)."""
    result = Draft()
    want_unanswerable, want_followups = quotas(max_questions)
    answerable: list[Proposal] = []
    unanswerable: list[Proposal] = []
    for doc, chunk in sentences:
        if len(answerable) + len(unanswerable) >= max_questions:
            break
        if result.tried >= TRIES_PER_QUESTION * max_questions:
            result.rejected["gave up: too many tries"] += 1
            break
        result.tried += 1
        proposal = drafter.propose(doc, chunk)
        if isinstance(proposal, str):
            result.rejected[proposal] += 1
            continue
        # Unanswerable cases are spread over the draft (one per four answerable), so a
        # document that runs out of sentences still gets mostly answerable ones.
        spread = len(unanswerable) * (1 - UNANSWERABLE_SHARE) <= UNANSWERABLE_SHARE * len(
            answerable
        )
        if len(unanswerable) < want_unanswerable and spread and drafter.deletable(proposal):
            unanswerable.append(proposal)
        elif len(answerable) < max_questions - want_unanswerable:
            answerable.append(proposal)
        else:
            result.rejected["answerable cases enough; its fact is stated elsewhere"] += 1
        if progress is not None:
            progress(len(answerable) + len(unanswerable), max_questions)

    followups = _pair_followups(drafter, answerable, want_followups)
    for n, proposal in enumerate(answerable, 1):
        case: dict[str, Any] = {"id": f"a{n:02d}", "kind": "answerable",
                                "question": proposal.question}  # fmt: skip
        if id(proposal) in followups:
            first, question = followups[id(proposal)]
            case = {"id": f"f{n:02d}", "kind": "followup", "question": question,
                    "history": [first.question]}  # fmt: skip
        case.update(expected=[[proposal.fact]], expected_quote=[proposal.sentence],
                    document=proposal.source)  # fmt: skip
        result.cases.append(case)
        result.sentences[case["id"]] = proposal.sentence
    for n, proposal in enumerate(unanswerable, 1):
        case = {"id": f"u{n:02d}", "kind": "unanswerable", "question": proposal.question,
                "forbidden": [proposal.fact], "document": proposal.source,
                "tags": ["by-deletion"]}  # fmt: skip
        result.cases.append(case)
        result.sentences[case["id"]] = proposal.sentence
        result.deleted.setdefault(proposal.source, []).append((proposal.start, proposal.end))
    return result


def _pair_followups(
    drafter: Drafter, answerable: list[Proposal], wanted: int
) -> dict[int, tuple[Proposal, str]]:
    """Up to ``wanted`` answerable proposals turned into follow-ups of an earlier one."""
    chosen: dict[int, tuple[Proposal, str]] = {}
    used: set[int] = set()
    for i, second in enumerate(answerable):
        if len(chosen) >= wanted:
            break
        for first in answerable[:i]:
            if id(first) in used or id(first) in chosen or first.source != second.source:
                continue
            question = drafter.followup(first, second)
            if question is not None:
                chosen[id(second)] = (first, question)
                used.add(id(first))
                break
    return chosen


def corpus_copy(documents: Sequence[Document], deleted: dict[str, list[tuple[int, int]]],
                folder: Path) -> dict[str, Path]:  # fmt: skip
    """Write the documents that lose sentences, without them, into ``folder``.

    Returns source -> written file. Markdown and text keep their names; other formats
    are written as their extracted text (``NAME.txt``).
    """
    written: dict[str, Path] = {}
    for doc in documents:
        spans = sorted(deleted.get(doc.source, []), reverse=True)
        if not spans:
            continue
        text = doc.text
        for start, end in spans:
            text = text[:start] + text[end:]
        name = doc.source if doc.kind in ("md", "txt") else f"{doc.source}.txt"
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written[doc.source] = target
    return written


def suite_text(result: Draft, name: str, corpus: Sequence[str], header: Sequence[str]) -> str:
    """The suite as YAML: a header comment, then each case after its source sentence."""
    lines = [f"# {line}".rstrip() for line in header]
    top = {"name": name, "split": "draft",
           "description": f"Drafted by rag draft-suite on {date.today().isoformat()}; "
           "reviewed: no (edit this line when it is).", "corpus": list(corpus)}  # fmt: skip
    lines.append(yaml.safe_dump(top, sort_keys=False, allow_unicode=True, width=100).rstrip())
    lines.append("cases:" if result.cases else "cases: []  # none passed the checks")
    for case in result.cases:
        where = "deleted from the corpus copy" if case["kind"] == "unanswerable" else "source"
        lines.append(f"# {where}: {result.sentences[case['id']]}")
        dumped = yaml.safe_dump([case], sort_keys=False, allow_unicode=True, width=100)
        lines.append(dumped.rstrip())
    return "\n".join(lines) + "\n"
