"""Ratings: what is checked before one is stored, and the SQLite store (its PostgreSQL
twin runs in tests/test_replicas.py, the API in tests/test_server.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from rag.documents.loading import load_text
from rag.feedback.record import Feedback, FeedbackError, Picked, check, key_fingerprint
from rag.feedback.store import (
    FILE,
    FeedbackFullError,
    FeedbackStoreError,
    SqliteFeedbackStore,
    open_feedback_store,
)
from rag.settings import Settings

DOC = load_text(
    "# Pumps\n\nThe Orion-5 pump was released in March 2019. It moves 40 litres per minute.\n",
    "pumps.md",
    kind="md",
)
QUOTE = "The Orion-5 pump was released in March 2019."
START = DOC.text.index(QUOTE)


def lookup(source: str) -> Any:
    return DOC if source == DOC.source else None


def answer(**changes: Any) -> dict[str, Any]:
    citation = {"id": 1, "source": "pumps.md", "title": "Pumps", "page": None,
                "quote": QUOTE, "start": START, "end": START + len(QUOTE)}  # fmt: skip
    base = {"question": "When was the Orion-5 released?", "answer": f"{QUOTE} [1]",
            "refused": False, "citations": [citation], "evidence": []}  # fmt: skip
    return {**base, **changes}


BAD_OFFSETS = {"source": "pumps.md", "start": "0", "end": 5, "quote": "x"}


def rate(**changes: Any) -> Feedback:
    values: dict[str, Any] = {
        "question": "When was the Orion-5 released?",
        "answer": answer(),
        "rating": "down",
    }
    return Feedback(**{**values, **changes})


def test_a_rating_keeps_the_cited_documents_fingerprints_and_never_the_key() -> None:
    record = check(rate(correction="  March   2019 "), lookup, 1000, key="secret-key")
    assert record.documents == {"pumps.md": hashlib.sha256(DOC.text.encode()).hexdigest()}
    assert record.correction == "March 2019"  # whitespace as typed is not meaning
    assert record.key_fingerprint == key_fingerprint("secret-key") != ""
    assert "secret-key" not in str(record.to_json())
    picked = Picked("pumps.md", START, START + len(QUOTE), QUOTE)
    assert check(rate(picked=picked), lookup, 1000).picked == picked


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rating": "meh"}, "rating must be 'up' or 'down'"),
        ({"question": "   "}, "question is empty"),
        ({"question": "x" * 1001}, "question is too long"),
        ({"answer": {"citations": []}}, "answer JSON exactly"),
        ({"answer": answer(citations=[])}, "cites nothing"),
        ({"answer": answer(citations=["not an object"])}, "not an object"),
        ({"answer": answer(citations=[BAD_OFFSETS])}, "integer start and end"),
        ({"correction": "y" * 2001}, "correction is too long"),
        ({"history": tuple(["q"] * 51)}, "at most 50"),
    ],
)
def test_malformed_ratings_say_what_is_wrong(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(FeedbackError, match=message):
        check(rate(**changes), lookup, 1000)


def test_forged_or_stale_citations_are_refused() -> None:
    forged = answer()
    forged["citations"][0]["quote"] = "The Orion-5 pump was released in 1999."
    with pytest.raises(FeedbackError, match=r"not the text of 'pumps\.md'"):
        check(rate(answer=forged), lookup, 1000)
    shifted = answer()
    shifted["citations"][0]["start"] += 1
    with pytest.raises(FeedbackError, match="changed"):
        check(rate(answer=shifted), lookup, 1000)
    elsewhere = answer()
    elsewhere["citations"][0]["source"] = "removed.md"
    with pytest.raises(FeedbackError, match="not in the index"):
        check(rate(answer=elsewhere), lookup, 1000)
    with pytest.raises(FeedbackError, match="picked sentence"):
        check(rate(picked=Picked("pumps.md", 0, 5, "Orion")), lookup, 1000)
    # A refusal cites nothing, and that is no forgery.
    refusal = answer(refused=True, citations=[], answer="The documents don't say.")
    assert check(rate(answer=refusal, rating="up"), lookup, 1000).refused


def test_the_store_lists_shows_and_purges(tmp_path: Path) -> None:
    store = SqliteFeedbackStore(tmp_path / FILE, max_bytes=1_000_000)
    first = check(rate(), lookup, 1000)
    second = check(rate(rating="up"), lookup, 1000)
    store.add(first)
    store.add(second)
    assert {r.id for r in store.records()} == {first.id, second.id}
    assert store.get(first.id) == first and store.get("nope") is None
    assert store.records(since="2999-01-01") == []
    assert store.purge(before="1999-01-01") == 0
    assert store.purge() == 2 and store.records() == []
    store.close()


def test_a_full_store_refuses_with_how_to_make_room(tmp_path: Path) -> None:
    store = SqliteFeedbackStore(tmp_path / FILE, max_bytes=3000)
    store.add(check(rate(), lookup, 1000))
    with pytest.raises(FeedbackFullError, match="rag feedback purge"):
        for _ in range(10):
            store.add(check(rate(), lookup, 1000))
    assert 1 <= len(store.records()) < 10
    store.close()


def test_ratings_live_outside_the_index_generations(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=tmp_path)
    store = open_feedback_store(settings)
    store.add(check(rate(), lookup, 1000))
    store.close()
    # The data directory itself, beside index.json and the index-* generations that a
    # rebuild replaces.
    assert (settings.data_dir / FILE).is_file()


def test_an_unwritable_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(FeedbackStoreError, match="cannot be opened"):
        SqliteFeedbackStore(blocker / "sub" / FILE, max_bytes=1000)
