"""Chunking: exact offsets, stable content-derived ids, section and size limits.

Fast unit tests: no model, no index. Every document kind the splitter must handle
goes through the same invariant checks (``test_offsets_are_exact``).
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys

import pytest

from rag.documents.chunking import SentenceSplitter, chunk_document, pack_spans, split_sentences
from rag.documents.loading import load_file, load_text
from rag.settings import load_settings
from rag.types import Document
from tests.helpers import CORPUS, REPO, index_chunks

MARKDOWN = """---
title: "Chips: a field guide"
source: tests
---

# Chips: a field guide

Amazon designs its own chips. It bought Annapurna Labs in 2015.

## Families

The first chips were:

- Graviton, for general computing.
- Inferentia, for running models. It is cheaper
  than a GPU for inference.
* Trainium, for training.
1. Numbered item one.
2) Numbered item two.

## Trainium 3

It is smaller than a credit card. It is twice as powerful as version 2. Costs fall
by up to 40% compared to GPUs.
"""

# The shape of ../shared/corpus/trainium-article.txt: hard-wrapped lines, unmarked
# headings, bullets whose text wraps onto the next line.
HARD_WRAPPED = """Amazon's AI initiative in the US is centered in Texas
Amazon is working to reduce its dependence on Nvidia by
building its own AI chips called Trainium. These chips are specially designed
for machine learning and artificial intelligence (AI).
Why Amazon Is Building Its Own Chips
For many years, Amazon relied on outside suppliers for
chips. In 2015, it bought Annapurna Labs to start designing its own processors.
It first launched:
- Graviton
chips (for cloud computing)
- Inferentia
chips (for running AI models)
The first Trainium chip came in 2020, followed by a
faster second version.
Trainium 3: Faster and Cheaper
The newest version, Trainium 3, was launched in December.
- It
is smaller than a credit card.
- It
may reduce the cost of building and running generative AI models by up to 40%
compared to GPUs (graphics processing units), which are currently the
industry standard.
"""

ABBREVIATIONS = (
    "Dr. Smith joined the U.S. Army in 2019. The budget grew 3.5 times, to $4.2 million. "
    "Prof. Jones, Mr. Lee and Ms. Wu disagreed, e.g. on cost. J. R. Smith wrote the "
    "report! Was it on p. 12? Yes. Version 2. Then version 3… And so on."
)

LONG_SENTENCE = "Intro sentence here. " + "word " * 150 + "ends here. Short tail sentence."


def _docs() -> dict[str, Document]:
    return {
        "markdown": load_text(MARKDOWN, "guide.md", kind="md"),
        "markdown-crlf": load_text(MARKDOWN.replace("\n", "\r\n"), "guide.md", kind="md"),
        "hard-wrapped": load_text(HARD_WRAPPED, "article.txt"),
        "hard-wrapped-crlf": load_text(HARD_WRAPPED.replace("\n", "\r\n"), "article.txt"),
        "abbreviations": load_text(ABBREVIATIONS, "abbr.txt"),
        "long-sentence": load_text(LONG_SENTENCE, "long.txt"),
        "bundled-corpus": load_file(CORPUS / "trainium-article.md", "trainium-article.md"),
        "empty-body": load_text("---\ntitle: x\n---\n", "empty.md", kind="md"),
    }


DOCS = _docs()


def _settings():
    return load_settings(data_dir="unused")


@pytest.mark.parametrize("name", sorted(DOCS))
def test_offsets_are_exact(name: str) -> None:
    doc = DOCS[name]
    spans = split_sentences(doc)
    previous_end = doc.body_start
    for span in spans:
        assert span.text == doc.text[span.start : span.end]
        assert span.text and span.text == span.text.strip(), "spans are trimmed"
        assert span.start >= previous_end, "spans are in order and do not overlap"
        previous_end = span.end
    for chunks in (
        chunk_document(doc, 200, 1),
        chunk_document(doc),
        index_chunks(doc, _settings()),
    ):
        for chunk in chunks:
            assert chunk.text == doc.text[chunk.start : chunk.end]
            assert chunk.source == doc.source
            assert chunk.start >= doc.body_start
        assert [c.ordinal for c in chunks] == list(range(len(chunks)))
        assert len({c.id for c in chunks}) == len(chunks)


@pytest.mark.parametrize("name", sorted(DOCS))
def test_no_text_is_lost(name: str) -> None:
    """Everything outside the spans is whitespace or Markdown markup (#, bullets, numbers)."""
    doc = DOCS[name]
    spans = split_sentences(doc)
    left = list(doc.text[doc.body_start :])
    for span in spans:
        for i in range(span.start - doc.body_start, span.end - doc.body_start):
            left[i] = " "
    leftover = "".join(left).split()
    assert all(re.fullmatch(r"#{1,6}|[-*+•]|\d{1,3}[.)]", token) for token in leftover), leftover
    # And every sentence reaches the index: inside some stored chunk.
    stored = index_chunks(doc, _settings())
    for span in spans:
        if not span.is_heading:
            assert any(c.start <= span.start and span.end <= c.end for c in stored), span


def test_markdown_structure() -> None:
    doc = DOCS["markdown"]
    assert doc.title == "Chips: a field guide"
    assert doc.text[doc.body_start :].startswith("\n# Chips")
    spans = split_sentences(doc)
    headings = [s.text for s in spans if s.is_heading]
    assert headings == ["Chips: a field guide", "Families", "Trainium 3"]
    texts = [s.text for s in spans if not s.is_heading]
    assert "Graviton, for general computing." in texts
    assert "It is cheaper\n  than a GPU for inference." in texts  # a wrapped list item
    assert "Trainium, for training." in texts
    assert "Numbered item one." in texts and "Numbered item two." in texts
    assert all(not t.startswith(("-", "*", "1.", "2)")) for t in texts), "bullets are not text"
    assert {s.heading for s in spans if "credit card" in s.text} == {"Trainium 3"}


def test_hard_wrapped_text_joins_lines_and_finds_headings() -> None:
    spans = split_sentences(DOCS["hard-wrapped"])
    headings = [s.text for s in spans if s.is_heading]
    assert headings == [
        "Amazon's AI initiative in the US is centered in Texas",
        "Why Amazon Is Building Its Own Chips",
        "Trainium 3: Faster and Cheaper",
    ]
    texts = [" ".join(s.text.split()) for s in spans if not s.is_heading]
    assert texts[0] == (
        "Amazon is working to reduce its dependence on Nvidia by building its own AI chips "
        "called Trainium."
    )
    assert "Graviton chips (for cloud computing)" in texts
    assert "It is smaller than a credit card." in texts
    assert "The first Trainium chip came in 2020, followed by a faster second version." in texts


def test_abbreviations_initials_and_decimals_do_not_end_sentences() -> None:
    texts = [s.text for s in split_sentences(DOCS["abbreviations"])]
    assert texts == [
        "Dr. Smith joined the U.S. Army in 2019.",
        "The budget grew 3.5 times, to $4.2 million.",
        "Prof. Jones, Mr. Lee and Ms. Wu disagreed, e.g. on cost.",
        "J. R. Smith wrote the report!",
        "Was it on p. 12?",
        "Yes.",
        "Version 2.",
        "Then version 3…",
        "And so on.",
    ]


@pytest.mark.parametrize("name", ["markdown", "hard-wrapped"])
def test_crlf_gives_the_same_sentences(name: str) -> None:
    lf, crlf = DOCS[name], DOCS[name + "-crlf"]
    assert crlf.title == lf.title
    lf_spans, crlf_spans = split_sentences(lf), split_sentences(crlf)
    assert [s.text for s in crlf_spans] == [s.text.replace("\n", "\r\n") for s in lf_spans]
    assert all("\r" not in (s.text[0], s.text[-1]) for s in crlf_spans)
    assert [s.is_heading for s in crlf_spans] == [s.is_heading for s in lf_spans]


def test_headings_start_a_new_chunk() -> None:
    for doc in (DOCS["markdown"], DOCS["hard-wrapped"], DOCS["bundled-corpus"]):
        spans = split_sentences(doc)
        chunks = chunk_document(doc, 2000, 1)  # big enough that only headings split
        starts = {c.start for c in chunks}
        for heading in (s for s in spans if s.is_heading):
            assert heading.start in starts, heading.text
            inside = [c for c in chunks if c.start < heading.start < c.end]
            assert not inside, f"a chunk straddles the heading {heading.text!r}"
        assert len(chunks) == sum(s.is_heading for s in spans) + (not spans[0].is_heading)


@pytest.mark.parametrize("chunk_size", [100, 200, 600])
@pytest.mark.parametrize("name", ["markdown", "hard-wrapped", "bundled-corpus", "long-sentence"])
def test_chunk_size_is_respected_except_for_one_long_sentence(name: str, chunk_size: int) -> None:
    doc = DOCS[name]
    groups = pack_spans(split_sentences(doc), chunk_size, overlap=1)
    for group in groups:
        if len(group) > 1:
            assert group[-1].end - group[0].start <= chunk_size, [s.text for s in group]
    for current, following in itertools.pairwise(groups):
        # Greedy packing: a chunk ends early only at a heading or when full.
        new = [s for s in following if s.start >= current[-1].end]
        assert new[0].is_heading or new[0].end - current[0].start > chunk_size
    chunks = chunk_document(doc, chunk_size, 1)
    assert len(chunks) == len(groups)
    if name == "long-sentence":
        long = next(s for s in split_sentences(doc) if len(s.text) > 600)
        assert any(c.start == long.start and c.end == long.end for c in chunks)


def test_overlap_repeats_the_last_sentence() -> None:
    doc = DOCS["bundled-corpus"]
    with_overlap = chunk_document(doc, 200, 1)
    without = chunk_document(doc, 200, 0)
    pairs = list(itertools.pairwise(with_overlap))
    assert any(a.end > b.start and a.heading == b.heading for a, b in pairs)
    assert all(a.end <= b.start for a, b in itertools.pairwise(without))


@pytest.mark.parametrize("chunker", ["index", "packed"])
def test_ids_are_stable_and_follow_content(chunker: str) -> None:
    def chunks(text: str, source: str = "guide.md"):
        doc = load_text(text, source, kind="md")
        if chunker == "index":
            return index_chunks(doc, _settings())
        return chunk_document(doc, 200, 1)

    first, again = chunks(MARKDOWN), chunks(MARKDOWN)
    assert [c.id for c in first] == [c.id for c in again]
    assert all(re.fullmatch(r"[0-9a-f]{32}", c.id) for c in first)

    edit_at = MARKDOWN.index("It is twice as powerful")
    edited = chunks(MARKDOWN.replace("twice as powerful", "three times as powerful"))
    old_ids = {c.id for c in first}
    before = [c for c in first if c.end < edit_at]
    assert before and {c.id for c in before} <= {c.id for c in edited}, "earlier chunks keep ids"
    touched = [c for c in edited if c.start <= edit_at < c.end]
    assert touched and all(c.id not in old_ids for c in touched), "the edited chunk gets a new id"

    renamed = chunks(MARKDOWN, source="other.md")
    assert not {c.id for c in renamed} & old_ids, "the source is part of the id"


def test_ids_are_stable_across_processes() -> None:
    script = (
        "import json, sys\n"
        "from rag.documents.loading import load_text\n"
        "from rag.settings import load_settings\n"
        "from tests.helpers import index_chunks\n"
        "doc = load_text(sys.stdin.read(), 'guide.md', kind='md')\n"
        "print(json.dumps([c.id for c in index_chunks(doc, load_settings(data_dir='x'))]))\n"
    )
    ids = []
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", script],
            input=MARKDOWN,
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**_clean_env(), "PYTHONHASHSEED": seed},
            check=True,
            timeout=120,
        )
        ids.append(json.loads(out.stdout))
    here = [c.id for c in index_chunks(load_text(MARKDOWN, "guide.md", kind="md"), _settings())]
    assert ids[0] == ids[1] == here


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | {
        "RAG_CONFIG": "/nonexistent/rag.toml"
    }


def test_langchain_splitter_returns_the_same_chunks() -> None:
    splitter = SentenceSplitter(chunk_size=200, chunk_overlap=1)
    texts = splitter.split_text(HARD_WRAPPED)
    doc = Document(source="", path="", title="", text=HARD_WRAPPED, content_hash="", kind="txt")
    assert texts == [c.text for c in chunk_document(doc, 200, 1)]
    assert all(t in HARD_WRAPPED for t in texts)
    assert splitter.create_documents([HARD_WRAPPED])[0].page_content == texts[0]
