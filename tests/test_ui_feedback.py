"""Rating answers in the web chat without a browser: ``ui.feedback`` over a real
pipeline on the bundled article, each rating read back from the real store."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rag.feedback.record import FeedbackRecord
from rag.feedback.store import open_feedback_store
from rag.index.ingest import ingest
from rag.pipeline import build_pipeline
from rag.settings import Settings
from ui import feedback
from ui.handlers import ChatService, Session

pytestmark = pytest.mark.slow

# Answered today with the Annapurna sentence; the right one is among the retrieved.
WRONG = "Who leads the market for graphics processors?"
RIGHT = "Nvidia and AMD dominate this space."


@pytest.fixture
def chat(make_settings: Callable[..., Settings], embedder: Any) -> Iterator[ChatService]:
    settings = make_settings()
    ingest(settings, embedder=embedder)
    pipeline = build_pipeline(settings)
    yield ChatService(settings, pipeline)
    pipeline.close()


def ask(chat: ChatService, session: Session, question: str, shown_at: int) -> None:
    """Answer ``question`` as the chat does, shown as chat message ``shown_at``."""
    list(chat.respond(question, session, shown_at=shown_at))


def saved(chat: ChatService, outcome: feedback.Outcome) -> FeedbackRecord:
    match = re.fullmatch(r"Saved: thank you — rating ([0-9a-f]+)", outcome.status)
    assert outcome.saved and match, outcome
    store = open_feedback_store(chat.settings)
    try:
        record = store.get(match.group(1))
    finally:
        store.close()
    assert record is not None
    return record


def test_a_like_saves_the_answer_as_shown(chat: ChatService) -> None:
    session = Session()
    ask(chat, session, "Where is Annapurna Labs based?", shown_at=1)
    record = saved(chat, feedback.rate(chat.pipeline, session, 1, liked=True))
    assert record.rating == "up" and record.question == "Where is Annapurna Labs based?"
    assert record.answer == session.conversation.turns[0].answer.to_json()
    assert "Austin" in record.answer["answer"] and record.history == ()
    assert (record.picked, record.correction, record.should_refuse) == (None, "", None)


def test_a_dislike_with_the_right_sentence_picked(chat: ChatService) -> None:
    session = Session()
    ask(chat, session, WRONG, shown_at=1)
    assert RIGHT not in session.conversation.turns[0].answer.answer, "still answered wrongly"
    form = feedback.dislike_form(session, 1)
    assert form.heading.startswith(f"**What was wrong with the answer to “{WRONG}”?**")
    label, position = next(c for c in form.choices if RIGHT in c[0])
    assert label == f"trainium-article.md: “{RIGHT}”"
    record = saved(chat, feedback.rate(chat.pipeline, session, 1, liked=False, pick=position))
    assert record.rating == "down" and record.picked is not None
    assert record.picked.quote == RIGHT and record.picked.source == "trainium-article.md"
    document = chat.pipeline.live.document("trainium-article.md")
    assert document is not None
    assert document.text[record.picked.start : record.picked.end] == RIGHT


def test_a_dislike_with_the_answer_typed(chat: ChatService) -> None:
    session = Session()
    ask(chat, session, WRONG, shown_at=1)
    outcome = feedback.rate(chat.pipeline, session, 1, liked=False, correction=" Nvidia and AMD ")
    record = saved(chat, outcome)
    assert (record.rating, record.correction, record.picked) == ("down", "Nvidia and AMD", None)
    assert record.should_refuse is None


def test_a_dislike_saying_the_documents_do_not_say(chat: ChatService) -> None:
    session = Session()
    ask(chat, session, "In which year did the second Trainium version come out?", shown_at=1)
    record = saved(chat, feedback.rate(chat.pipeline, session, 1, liked=False,
                                       not_in_documents=True))  # fmt: skip
    assert record.rating == "down" and record.should_refuse is True
    assert not record.refused, "the answer rated is the wrong one that was given"


def test_a_rating_lands_on_its_own_answer_after_more_turns(chat: ChatService) -> None:
    session = Session()
    ask(chat, session, "Which subsidiary develops Amazon's AI chips?", shown_at=1)
    ask(chat, session, "Where is it based?", shown_at=3)
    # Messages 4 and 5: a question and the error shown for it, which records no turn.
    ask(chat, session, WRONG, shown_at=7)
    record = saved(chat, feedback.rate(chat.pipeline, session, 3, liked=True))
    assert record.question == "Where is it based?"
    assert record.history == ("Which subsidiary develops Amazon's AI chips?",)
    assert "Austin" in record.answer["answer"]
    later = saved(chat, feedback.rate(chat.pipeline, session, 7, liked=False))
    assert later.question == WRONG and len(later.history) == 2
    for message in (0, 2, 5, 9, None):
        outcome = feedback.rate(chat.pipeline, session, message, liked=True)
        assert outcome == (False, f"Not saved: {feedback.NOT_AN_ANSWER}"), message
    assert feedback.withdrawn(session, 3) == f"Rating {record.id} stays saved " \
        "(clearing the thumb does not remove it)."  # fmt: skip
    assert feedback.withdrawn(session, 1) == ""
    # The thumbs the chat shows again on each assistant message (Gradio's feedback_value).
    messages = [{"role": "user" if n % 2 == 0 else "assistant"} for n in range(8)]
    assert feedback.thumbs(session, messages) == [None, "Like", None, "Dislike"]


def test_a_picked_sentence_and_no_answer_in_the_documents_contradict(chat: ChatService) -> None:
    session = Session()
    ask(chat, session, WRONG, shown_at=1)
    both = feedback.rate(chat.pipeline, session, 1, liked=False, pick=0, not_in_documents=True)
    assert not both.saved and both.status.startswith("Not saved: Pick the right sentence, or")
    gone = feedback.rate(chat.pipeline, session, 1, liked=False, pick=99)
    assert not gone.saved and gone.status.startswith("Not saved: That sentence is not among")


def test_a_rating_that_cannot_be_saved_says_why_and_the_chat_goes_on(
    make_settings: Callable[..., Settings], embedder: Any
) -> None:
    settings = make_settings(feedback_max_mb=0.0001)  # 100 bytes: no answer fits
    ingest(settings, embedder=embedder)
    pipeline = build_pipeline(settings)
    try:
        chat, session = ChatService(settings, pipeline), Session()
        ask(chat, session, WRONG, shown_at=1)
        full = feedback.rate(pipeline, session, 1, liked=False, correction="Nvidia and AMD")
        assert not full.saved and full.status.startswith("Not saved: The feedback storage is full")
        assert "RAG_FEEDBACK_MAX_MB" in full.status
        *_, (markdown, _answer) = chat.respond(
            "Where is Annapurna Labs based?", session, shown_at=3
        )
        assert "Austin" in markdown and len(session.conversation.turns) == 2
        assert feedback.dislike_form(session, 3).choices, "the next answer can be rated"
    finally:
        pipeline.close()


def test_ratings_are_wired_to_every_answer_and_never_wait_behind_the_chat(
    chat: ChatService,
) -> None:
    from ui.app import build_app

    demo = build_app(chat)
    fns = {fn.name: fn for fn in demo.fns.values()}
    for name in ("on_thumb", "save_dislike"):
        assert fns[name].concurrency_limit is None, name
        assert fns[name].concurrency_id != fns["chat"].concurrency_id, name
    assert fns["on_thumb"].collects_event_data, "Gradio passes it the LikeData"
    chatbot = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "rag-chat")
    assert (fns["on_thumb"].targets[0][0], fns["on_thumb"].targets[0][1]) == (chatbot._id, "like")
    assert list(chatbot.feedback_options) == ["Like", "Dislike"]
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"rag-feedback", "rag-feedback-pick", "rag-feedback-text", "rag-feedback-none",
            "rag-feedback-save", "rag-feedback-status"} <= ids  # fmt: skip
