"""The web chat's behaviour as plain functions, testable without a browser.

``ChatService`` holds the shared pipeline; everything per user lives in a
``Session`` (kept in ``gr.State``, so two browser sessions never share history).
Handlers return plain data (Markdown, HTML, tuples); ``ui.app`` wires them into
Gradio and turns ``RagError`` into visible warnings. Nothing here imports gradio.
"""

from __future__ import annotations

import html
import re
import shutil
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rag import generators
from rag.documents.loading import SUPPORTED_SUFFIXES, is_supported, load_file
from rag.documents.scans import IMAGE_SUFFIXES
from rag.errors import InputError, RagError
from rag.pipeline import Conversation, Pipeline
from rag.settings import Settings, bundled_corpus
from rag.types import Answer, Citation, Document

# Images are accepted whatever the ocr setting: without ocr=all the ingest says how
# to read them, file by file.
UPLOAD_SUFFIXES = sorted(set(SUPPORTED_SUFFIXES) | IMAGE_SUFFIXES)
PROGRESS_LABELS = {"ocr": "OCR: reading scanned page", "embed": "Embedding", "load": "Reading"}
# Questions about the bundled article (corpus/trainium-article.md): offered only while
# the index holds exactly that corpus, since they mean nothing over other documents.
BUNDLED_EXAMPLES = [
    "What are Amazon's AI chips called?",
    "How much cheaper could Trainium 3 make AI models?",
    "Where is Annapurna Labs based?",
    "Does Amazon sell its chips?",
    "How much does a Trainium 3 chip cost?",
]
# A "no entry" sign drawn as inline SVG: an emoji (🚫) is an empty box on a machine
# without an emoji font, and the page uses the system's fonts. Plain pixel geometry,
# because the chat's HTML sanitiser drops viewBox (and aria attributes); the words
# that follow the mark say the same thing for screen readers.
REFUSED_MARK = (
    '<svg class="rag-refused-mark" width="16" height="16">'
    '<circle cx="8" cy="8" r="6.5" fill="none" stroke="#c0392b" stroke-width="2"/>'
    '<line x1="3.5" y1="12.5" x2="12.5" y2="3.5" stroke="#c0392b" stroke-width="2"/></svg>'
)
Progress = Callable[[float, str], None]


@dataclass
class Session:
    """One browser session's state: its conversation and its last answer's citations."""

    conversation: Conversation = field(default_factory=Conversation)
    citations: list[Citation] = field(default_factory=list)
    last: Answer | None = None
    # Chat message index -> the conversation turn that message shows: what a thumbs up or
    # down on it rates. Recorded, not counted, because an error message takes a place in
    # the chat without a turn.
    shown: dict[int, int] = field(default_factory=dict)
    # Message -> (id, "up" | "down") of the last rating saved for it: the thumbs the chat
    # keeps showing (Gradio forgets them each time the chat's messages are replaced).
    ratings: dict[int, tuple[str, str]] = field(default_factory=dict)


def short_quote(quote: str, limit: int) -> str:
    """A quote on one line, cut to ``limit`` characters with "..." (for labels)."""
    quote = " ".join(quote.split())
    return quote if len(quote) <= limit else quote[: limit - 3] + "..."


def citation_label(citation: Citation) -> str:
    page = f", p. {citation.page}" if citation.page else ""
    ocr = " (OCR)" if citation.ocr else ""
    return f"[{citation.id}] {citation.source}{page}{ocr}: “{short_quote(citation.quote, 90)}”"


def render_answer(answer: Answer, upto: int | None = None) -> str:
    """Chat Markdown for an answer; ``upto`` sentences only (for streaming)."""
    if answer.refused:
        return (
            f"{REFUSED_MARK} **{answer.answer}**\n\n"
            "_No passage in the indexed documents states this. Try rephrasing, or add a "
            "document that covers it._"
        )
    sentences = answer.sentences if upto is None else answer.sentences[:upto]
    text = " ".join(
        html.escape(s.text, quote=False) + "".join(f" **[{c}]**" for c in s.citations)
        for s in sentences
    )
    if answer.fallback:
        text = (
            f"_The {html.escape(answer.generator)} answer had no sentence the documents "
            f"support; showing the quoted evidence instead._\n\n{text}"
        )
    return text


def render_details(answer: Answer | None) -> str:
    """Timings and the retrieved evidence, for the curious."""
    if answer is None:
        return "_Ask a question to see its timings and evidence._"
    t = answer.timings_ms
    first = f"first sentence {t['first_sentence']:.1f} ms · " if "first_sentence" in t else ""
    lines = [
        f"**Timings:** retrieve {t['retrieve']:.1f} ms · answer {t['answer']:.1f} ms · "
        f"{first}total {t['total']:.1f} ms",
        "",
        "| score | source | evidence |",
        "|---:|---|---|",
    ]
    for item in answer.evidence:
        quote = " ".join(str(item["quote"]).split()).replace("|", "\\|")
        lines.append(f"| {float(str(item['score'])):.4f} | {item['source']} | {quote} |")
    for dropped in answer.dropped:
        lines.append(f"\n*Dropped:* {dropped.text} ({dropped.reason})")
    return "\n".join(lines)


def example_questions(
    configured: list[str] | None, indexed: Mapping[str, str], bundled: Mapping[str, str]
) -> list[str]:
    """The example questions to offer: the configured ones (``ui_examples``) if any are
    configured, else the bundled article's when the index (source -> content hash) holds
    exactly the bundled corpus, else none."""
    if configured is not None:
        return [q for q in (" ".join(q.split()) for q in configured) if q]
    return list(BUNDLED_EXAMPLES) if indexed and dict(indexed) == dict(bundled) else []


def bundled_hashes() -> dict[str, str]:
    """source -> content hash of each file of the bundled corpus, named as ingest names them."""
    folder = bundled_corpus()
    return {
        (source := path.relative_to(folder).as_posix()): load_file(path, source).content_hash
        for path in sorted(folder.rglob("*"))
        if path.is_file() and is_supported(path)
    }


def render_source(doc: Document, citation: Citation) -> str:
    """The document as HTML with the cited span highlighted (offsets, not search).

    A quote OCR read shows its page's OCR text only, under a mark saying so: the words
    are the engine's reading of a scan, to be checked against the page."""
    text, lo, hi = doc.text, 0, len(doc.text)
    page = doc.page_of(citation.start)
    mark = ""
    if citation.ocr and page is not None:
        lo, hi = page.start, page.end
        mark = (
            f'<div class="rag-ocr-mark"><b>OCR</b> · the text of page {page.number} as OCR '
            "read it from the scan: check figures and names against the page.</div>"
        )
    before = html.escape(text[lo : citation.start])
    quote = html.escape(text[citation.start : citation.end])
    after = html.escape(text[citation.end : hi])
    where = f" · page {citation.page}" if citation.page else ""
    return (
        f'<div class="rag-source"><div class="rag-source-title"><b>{html.escape(doc.title)}</b>'
        f" · {html.escape(citation.source)}{where} · characters {citation.start}–{citation.end}"
        f'</div>{mark}<pre class="rag-source-text">{before}<mark id="rag-highlight">{quote}'
        f"</mark>{after}</pre></div>"
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_upload_name(name: str) -> str:
    """A file name that cannot escape the uploads folder or hide as a dotfile."""
    base = unicodedata.normalize("NFKC", Path(name.replace("\\", "/")).name)
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = _UNSAFE.sub("_", stem).strip(" ._-")[:80] or "upload"
    if suffix not in UPLOAD_SUFFIXES:
        raise InputError(
            f"{name}: unsupported file type; upload one of {', '.join(UPLOAD_SUFFIXES)}"
        )
    return f"{stem}{suffix}"


class ChatService:
    """What the web chat does, over one shared pipeline."""

    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline

    # -- chat ---------------------------------------------------------------------------

    def respond(
        self,
        message: str,
        session: Session,
        top_k: int | None = None,
        generator: str | None = None,
        shown_at: int | None = None,
    ) -> Iterator[tuple[str, Answer]]:
        """Answer ``message`` in ``session``, yielding the growing Markdown as the
        verifier releases sentences (LLM generators), or sentence by sentence over the
        complete extractive answer (so both stream the same way). ``shown_at``, the chat
        message index the answer is shown as, is where a rating of it comes from."""
        answer: Answer | None = None
        for answer in self.pipeline.stream_chat(
            message, session.conversation, top_k=top_k, generator=generator
        ):
            if answer.generator != generators.EXTRACTIVE and not answer.refused:
                yield render_answer(answer), answer
        if answer is None:
            return
        if shown_at is not None:
            # The pipeline has recorded the turn: the answer is complete, so ratable.
            session.shown[shown_at] = len(session.conversation.turns) - 1
        session.last = answer
        session.citations = list(answer.citations)
        if answer.generator == generators.EXTRACTIVE and not answer.refused:
            for n in range(1, len(answer.sentences)):
                yield render_answer(answer, upto=n), answer
        yield render_answer(answer), answer

    def reset(self, session: Session) -> None:
        session.conversation.reset()
        session.citations = []
        session.last = None
        session.shown.clear()
        session.ratings.clear()

    def citation_choices(self, session: Session) -> list[str]:
        return [citation_label(c) for c in session.citations]

    def open_citation(self, label: str | None, session: Session) -> str:
        if not label:
            return ""
        match = re.match(r"\[(\d+)\]", label)
        citation = next(
            (c for c in session.citations if match and c.id == int(match.group(1))), None
        )
        if citation is None:
            return ""
        doc = self.pipeline.live.document(citation.source)
        if doc is None:
            raise RagError(f"{citation.source} is no longer in the index.")
        return render_source(doc, citation)

    # -- documents ----------------------------------------------------------------------

    def documents(self) -> list[list[object]]:
        return [[d.title, d.source, d.chunks] for d in self.pipeline.live.documents()]

    def sources(self) -> list[str]:
        return [str(row[1]) for row in self.documents()]

    def examples(self) -> list[str]:
        """Example questions for the chat, decided when it starts (see ``example_questions``)."""
        if self.settings.ui_examples is not None:
            return example_questions(self.settings.ui_examples, {}, {})
        indexed = {d.source: d.content_hash for d in self.pipeline.live.documents()}
        return example_questions(None, indexed, bundled_hashes())

    def upload(self, paths: list[str], progress: Progress | None = None) -> str:
        """Copy uploaded files into the data directory and ingest them incrementally."""
        if not paths:
            raise InputError("Choose one or more files to upload first.")
        target_dir = self.settings.uploads_dir
        target_dir.mkdir(parents=True, exist_ok=True)
        saved: list[Path] = []
        # One bad file gets its message; the rest of the batch is still indexed.
        problems: list[str] = []
        for raw in paths:
            try:
                saved.append(self._save_upload(Path(raw), target_dir))
            except InputError as exc:
                problems.append(str(exc))
        if not saved:
            raise InputError("Nothing was indexed: " + " ".join(problems))

        def report(stage: str, done: int, total: int) -> None:
            if progress is not None and total:
                label = PROGRESS_LABELS.get(stage, stage)
                progress(done / total, f"{label} {done}/{total}")

        result = self.pipeline.live.ingest(saved, progress=report)
        problems += [f"{s['source']}: {s['reason']}" for s in result.skipped]
        summary = (
            f"Indexed {result.documents_added} new and {result.documents_updated} updated "
            f"document(s), {result.documents_unchanged} unchanged; "
            f"{result.chunks_added} sentences added."
        )
        if result.ocr_pages:
            summary += f" OCR read {result.ocr_pages} scanned page(s)."
        if problems:
            summary += " Skipped: " + "; ".join(problems)
        if result.warnings:
            summary += " Note: " + " ".join(result.warnings)
        return summary

    def _save_upload(self, path: Path, target_dir: Path) -> Path:
        name = safe_upload_name(path.name)
        if path.stat().st_size > self.settings.ui_max_upload_mb * 1_000_000:
            raise InputError(
                f"{path.name} is larger than the {self.settings.ui_max_upload_mb:g} MB "
                "upload limit (RAG_UI_MAX_UPLOAD_MB)."
            )
        target = (target_dir / name).resolve()
        if target.parent != target_dir.resolve():
            raise InputError(f"{path.name}: invalid file name")
        shutil.copyfile(path, target)
        return target

    def remove(self, source: str | None) -> str:
        if not source:
            raise InputError("Choose a document to remove.")
        doc, removed = self.pipeline.live.remove(source)
        # An uploaded file goes with its document; files elsewhere are the user's own.
        uploads = self.settings.uploads_dir.resolve()
        if doc is not None and doc.path and Path(doc.path).parent == uploads:
            Path(doc.path).unlink(missing_ok=True)
        return f"Removed {source} ({removed} sentences)."
