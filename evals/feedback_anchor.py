"""Anchoring a typed correction: where, if anywhere, the documents state it.

A user who rates an answer down may type the right answer. ``rag feedback export``
turns it into an expected fact only when the documents state it, and the fact it
writes is the documents' own text at that place, never the user's: a correction that
is not found is left out with the reason. What "found" allows, in order:

- verbatim: the correction is a substring of a document, case and all;
- normalised: the same words in the same order, ignoring case, punctuation, quote
  styles, hyphens and spacing ("Austin Texas" finds "Austin, Texas");
- one typo: as normalised, but one word of five letters or more may be one edit
  (a letter added, dropped, changed or two swapped) from the document's, and only when
  the correction has two content words or more; numbers never are.

Each is tried on the correction as typed and then without a short lead-in ("no,",
"it's", "the answer is", "the"), which is how users start a correction. A correction
shorter than three characters, made of stop words only, or found in more than
``MAX_PLACES`` places (too common to tell a right answer from a wrong one) is refused.

It does not paraphrase, translate notations ("40 percent" is not "40%") or guess which
part of a sentence the user meant: those are for a person to review. Run as a module,
it prints the anchor rate of a labelled set of corrections
(``evals/feedback/corrections.yaml``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from rag.documents.chunking import split_sentences
from rag.documents.loading import load_file
from rag.text import STOPWORDS
from rag.types import Document

MIN_CHARS = 3
# More places than this and the text is a common word or phrase of the documents, not
# the answer to one question ("Amazon" in an article about Amazon).
MAX_PLACES = 3
# Words of fewer letters have too many neighbours one edit away ("unit"/"unity").
TYPO_MIN_LETTERS = 5
LEAD_INS = (
    "no", "nope", "wrong", "actually", "correct answer is", "the answer is", "answer is",
    "answer", "it should be", "should be", "it's", "it is", "its", "it was", "they're",
    "they are", "the", "a", "an",
)  # fmt: skip

# A word: letters and digits, with inner apostrophes ("it's") or, for numbers, inner
# separators ("1,000", "2.5"), and a trailing percent sign.
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*%?|[^\W_]+(?:['’][^\W_]+)*%?")


@dataclass(frozen=True)
class Token:
    key: str  # what is compared: case-folded, typographic apostrophes plain
    start: int
    end: int


@dataclass(frozen=True)
class Place:
    """Where a correction is stated: the document's text there and its sentence(s)."""

    source: str
    start: int
    end: int
    text: str
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class Anchor:
    """The outcome for one correction: ``places`` when anchored, else ``reason``."""

    correction: str
    places: tuple[Place, ...] = ()
    method: str = ""  # verbatim / normalised / one typo
    reason: str = ""

    @property
    def anchored(self) -> bool:
        return bool(self.places)


def tokens(text: str) -> list[Token]:
    return [
        Token(m.group(0).casefold().replace("’", "'"), m.start(), m.end())
        for m in _TOKEN.finditer(text)
    ]


# Words a correction is made of that state nothing on their own: "it is the one",
# "yes that's right". Stop words for this purpose only (retrieval keeps them).
FILLER = frozenset("one ones thing things yes yeah yep ok okay right correct answer".split())
_IGNORED = STOPWORDS | FILLER


def _content(words: list[Token]) -> list[Token]:
    return [t for t in words if t.key.replace("'", "") not in _IGNORED]


def _one_edit(a: str, b: str) -> bool:
    """At most one insertion, deletion, substitution or swap of neighbours."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            return True
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
    return short[i:] == long[i + 1 :]


def _typo_ok(typed: str, indexed: str) -> bool:
    return (
        typed.isalpha()
        and indexed.isalpha()
        and min(len(typed), len(indexed)) >= TYPO_MIN_LETTERS
        and _one_edit(typed, indexed)
    )


def _lead_in_variants(words: list[Token]) -> Iterator[list[Token]]:
    """The correction's words, then with one lead-in after another taken off its start."""
    yield words
    rest = words
    for _ in range(3):
        for lead in LEAD_INS:
            parts = lead.split()
            if len(rest) > len(parts) and [t.key for t in rest[: len(parts)]] == parts:
                rest = rest[len(parts) :]
                yield rest
                break
        else:
            return


class DocumentText:
    """One document's words, found once (when first searched) and searched for every
    correction through an index of where each word is."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self._words: list[Token] | None = None
        self._at: dict[str, list[int]] = {}
        self._sentences: list[tuple[int, int, str]] | None = None

    @property
    def words(self) -> list[Token]:
        if self._words is None:
            self._words = tokens(self.document.text)
            for i, word in enumerate(self._words):
                self._at.setdefault(word.key, []).append(i)
        return self._words

    def sentences_over(self, start: int, end: int) -> tuple[str, ...]:
        if self._sentences is None:
            self._sentences = [(s.start, s.end, s.text) for s in split_sentences(self.document)]
        over = [" ".join(t.split()) for s, e, t in self._sentences if s < end and e > start]
        return tuple(over)

    def _starts(self, typed: list[Token], typos: int) -> list[int]:
        """Where a match can start. With at most ``typos`` words wrong, one of any
        ``typos + 1`` typed words is right, so the rarest such words' places cover every
        match: no scan of the whole document per correction."""
        words = self.words
        rarest = sorted(range(len(typed)), key=lambda i: len(self._at.get(typed[i].key, [])))
        starts = {p - i for i in rarest[: typos + 1] for p in self._at.get(typed[i].key, [])}
        return sorted(s for s in starts if 0 <= s <= len(words) - len(typed))

    def find(self, typed: list[Token], typos: int) -> Iterator[tuple[int, int]]:
        """(start, end) of each run of words matching ``typed``, with at most ``typos``."""
        n = len(typed)
        for i in self._starts(typed, typos):
            used = 0
            for a, b in zip(typed, self.words[i : i + n], strict=True):
                if a.key == b.key:
                    continue
                used += 1
                if used > typos or not _typo_ok(a.key, b.key):
                    break
            else:
                yield self.words[i].start, self.words[i + n - 1].end


def _whole_words(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` neither starts nor ends inside a word ("2015" is not
    in "20150")."""
    before = start > 0 and text[start - 1].isalnum() and text[start].isalnum()
    after = end < len(text) and text[end].isalnum() and text[end - 1].isalnum()
    return not (before or after)


def _extend(text: str, end: int, tail: str) -> int:
    """Take in the punctuation the user typed after the last word when the document has
    it there too: "Amazon Web Services (AWS)" keeps its closing parenthesis."""
    for char in tail:
        if end < len(text) and text[end] == char:
            end += 1
        else:
            break
    return end


class Anchorer:
    """Anchors corrections in a set of documents (source -> indexed document)."""

    def __init__(self, documents: Mapping[str, Document]) -> None:
        self.texts = [DocumentText(d) for _, d in sorted(documents.items())]

    def _places(self, typed: list[Token], typos: int, tail: str) -> list[Place]:
        places = []
        for doc in self.texts:
            for start, end in doc.find(typed, typos):
                end = _extend(doc.document.text, end, tail)
                text = doc.document.text[start:end]
                places.append(
                    Place(doc.document.source, start, end, text, doc.sentences_over(start, end))
                )
        return places

    def _verbatim(self, correction: str) -> list[Place]:
        places = []
        for doc in self.texts:
            text = doc.document.text
            at = text.find(correction)
            while at >= 0:
                end = at + len(correction)
                if _whole_words(text, at, end):
                    places.append(
                        Place(doc.document.source, at, end, correction, doc.sentences_over(at, end))
                    )
                at = text.find(correction, at + 1)
        return places

    def anchor(self, correction: str) -> Anchor:
        typed = " ".join(correction.split())
        words = tokens(typed)
        if len(typed) < MIN_CHARS or sum(len(t.key) for t in words) < MIN_CHARS:
            return Anchor(typed, reason=f"too short to be a fact (under {MIN_CHARS} characters)")
        if not _content(words):
            return Anchor(typed, reason="only stop words: nothing to look for in the documents")
        tail = typed[words[-1].end :].strip()
        common: list[tuple[str, int]] = []
        found = self._verbatim(typed)
        tries: list[tuple[str, list[Place]]] = [("verbatim", found)] if found else []
        for variant in _lead_in_variants(words):
            content = _content(variant)
            if not content or sum(len(t.key) for t in variant) < MIN_CHARS:
                continue
            tries.append(("normalised", self._places(variant, 0, tail)))
            allowed = 0 if len(content) < 2 else 1
            if allowed:
                tries.append(("one typo", self._places(variant, allowed, tail)))
        for method, places in tries:
            if not places:
                continue
            if len(places) > MAX_PLACES:
                common.append((places[0].text, len(places)))
                continue
            return Anchor(typed, tuple(places), method)
        if common:
            text, count = common[0]
            return Anchor(
                typed,
                reason=f"{text!r} is in {count} places of the documents (more than "
                f"{MAX_PLACES}): too common to tell a right answer from a wrong one",
            )
        return Anchor(
            typed,
            reason="not in the documents, even ignoring case, punctuation and one typo "
            "(a paraphrase, or a fact from elsewhere)",
        )


# -- the anchor rate of a labelled set -------------------------------------------------------

CORRECTIONS = Path(__file__).resolve().parent / "feedback" / "corrections.yaml"


@dataclass(frozen=True)
class RateRow:
    question: str
    correction: str
    should_anchor: bool
    anchor: Anchor

    @property
    def agrees(self) -> bool:
        return self.should_anchor == self.anchor.anchored


def anchor_rate(path: Path) -> list[RateRow]:
    """Anchor every correction of a labelled file (see ``evals/feedback/corrections.yaml``)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    document_path = (path.parent / str(data["document"])).resolve()
    document = load_file(document_path, document_path.name)
    anchorer = Anchorer({document.source: document})
    return [
        RateRow(
            str(row["question"]),
            str(row["correction"]),
            bool(row["should_anchor"]),
            anchorer.anchor(str(row["correction"])),
        )
        for row in data["corrections"]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.feedback_anchor",
        description="Print the anchor rate of a labelled set of typed corrections.",
    )
    parser.add_argument("corrections", type=Path, nargs="?", default=CORRECTIONS)
    args = parser.parse_args(argv)
    rows = anchor_rate(args.corrections)
    for row in rows:
        mark = "ok " if row.agrees else "NO "
        outcome = (
            f"{row.anchor.method}: {row.anchor.places[0].text!r}"
            if row.anchor.anchored
            else row.anchor.reason
        )
        print(f"{mark} should={'y' if row.should_anchor else 'n'}  {row.correction!r} -> {outcome}")
    anchored = sum(r.anchor.anchored for r in rows)
    agree = sum(r.agrees for r in rows)
    should = [r for r in rows if r.should_anchor]
    hits = sum(r.anchor.anchored for r in should)
    false_anchors = sum(r.anchor.anchored for r in rows if not r.should_anchor)
    print(f"anchored {anchored}/{len(rows)} ({anchored / len(rows):.0%}); agrees with the labels "
          f"{agree}/{len(rows)} ({agree / len(rows):.0%}); anchored {hits}/{len(should)} of those "
          f"that should; {false_anchors} anchored that should not")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
