"""The Gradio web chat: one builder that wires ``ui.handlers`` into components.

Thin on purpose: every behaviour is in ``ChatService`` (and ``ui.feedback`` for
ratings); this module only lays out components, keeps per-session state in
``gr.State``, and turns ``RagError`` into ``gr.Warning`` / ``gr.Error`` so users see a
sentence, never a traceback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import rag  # noqa: F401  (offline and no-analytics environment first)
from rag import generators
from rag.errors import InputError, RagError
from rag.settings import Settings
from ui import feedback
from ui.handlers import (
    UPLOAD_SUFFIXES,
    ChatService,
    Session,
    render_details,
)

CSS = """
.rag-source-text { white-space: pre-wrap; font-family: inherit; max-height: 420px;
  overflow-y: auto; margin: 0; padding: 0.5em; }
.rag-source-title { margin-bottom: 0.4em; }
#rag-highlight { background: #ffe066; color: #000; padding: 0 2px; border-radius: 3px; }
.rag-ocr-mark { margin-bottom: 0.4em; padding: 0.3em 0.5em; border-left: 3px solid #b26a00;
  background: #fff4e0; color: #000; }
#rag-chat .rag-refused-mark { display: inline-block; vertical-align: -2px; margin-right: 0.2em; }
"""
SCROLL_TO_HIGHLIGHT = (
    "() => { setTimeout(() => { const m = document.getElementById('rag-highlight');"
    " if (m) { m.scrollIntoView({block: 'center'}); } }, 50); }"
)


def build_app(service: ChatService) -> Any:
    import gradio as gr

    def chat(
        message: str,
        history: list[dict[str, str]],
        session: Session | None,
        top_k: int,
        generator: str,
    ) -> Iterator[tuple[Any, ...]]:
        session = session or Session()
        message = (message or "").strip()
        if not message:
            gr.Warning("Type a question first.")
            yield history, "", session, gr.update(), gr.update()
            return
        history = [*history, {"role": "user", "content": message}]

        def view(messages: list[dict[str, str]]) -> Any:
            # The saved thumbs, given again: Gradio forgets them when the messages change.
            return gr.update(value=messages, feedback_value=feedback.thumbs(session, messages))

        try:
            for markdown, _answer in service.respond(
                message, session, top_k=int(top_k), generator=generator, shown_at=len(history)
            ):
                shown = [*history, {"role": "assistant", "content": markdown}]
                yield view(shown), "", session, gr.update(), gr.update()
        except RagError as exc:
            gr.Warning(str(exc))
            shown = [*history, {"role": "assistant", "content": f"⚠️ {exc}"}]
            yield view(shown), "", session, gr.update(), gr.update()
            return
        choices = service.citation_choices(session)
        yield (
            view(shown),
            "",
            session,
            gr.update(choices=choices, value=None, visible=bool(choices)),
            render_details(session.last),
        )

    def open_citation(label: str | None, session: Session | None) -> str:
        session = session or Session()
        try:
            return service.open_citation(label, session)
        except RagError as exc:
            gr.Warning(str(exc))
            return ""

    def reset(session: Session | None) -> tuple[Any, ...]:
        session = session or Session()
        service.reset(session)
        hidden = gr.update(choices=[], value=None, visible=False)
        return [], session, hidden, "", "", gr.update(visible=False), None, ""

    def on_thumb(session: Session | None, data: Any) -> tuple[Any, ...]:
        """A thumb clicked on a chat message: a like is saved at once, a dislike opens
        the form for that message, a thumb clicked off closes it."""
        message = data.index if isinstance(data.index, int) else data.index[0]
        closed = (gr.update(visible=False), gr.update(), gr.update(), gr.update(), gr.update(),
                  None)  # fmt: skip
        if data.liked is True:
            return *closed, feedback.rate(service.pipeline, session, message, liked=True).status
        if data.liked is not False:  # "" when the thumb is clicked off again
            return *closed, feedback.withdrawn(session, message)
        try:
            form = feedback.dislike_form(session, message)
        except RagError as exc:
            return *closed, f"Not saved: {exc}"
        pick = gr.update(choices=form.choices, value=None, visible=bool(form.choices))
        return gr.update(visible=True), form.heading, pick, "", False, message, ""

    # Gradio passes LikeData by annotation, resolved in this module's globals, where
    # gradio is not imported (it loads in build_app); so the class itself goes here.
    on_thumb.__annotations__["data"] = gr.LikeData

    def save_dislike(
        session: Session | None, message: int | None, pick: int | None, text: str, none: bool
    ) -> tuple[Any, ...]:
        outcome = feedback.rate(service.pipeline, session, message, liked=False, pick=pick,
                                correction=text or "", not_in_documents=bool(none))  # fmt: skip
        # A rating that was not saved keeps its form, so the user can fix it and retry.
        if outcome.saved:
            return gr.update(visible=False), None, outcome.status
        return gr.update(), message, outcome.status

    def documents() -> tuple[Any, Any]:
        table = service.documents()
        return table, gr.update(choices=[str(row[1]) for row in table], value=None)

    # Gradio injects progress tracking through this default; it must be a call.
    def upload(files: list[Any] | None, progress: Any = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        paths = [getattr(f, "name", f) for f in (files or [])]
        try:
            status = service.upload(
                [str(p) for p in paths], progress=lambda f, d: progress(f, desc=d)
            )
        except RagError as exc:
            raise gr.Error(str(exc)) from None
        gr.Info(status)
        table, dropdown = documents()
        return status, table, dropdown, None

    def remove(source: str | None) -> tuple[Any, ...]:
        try:
            status = service.remove(source)
        except RagError as exc:
            raise gr.Error(str(exc)) from None
        table, dropdown = documents()
        return status, table, dropdown

    theme = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                           font_mono=["ui-monospace", "monospace"])  # fmt: skip
    with gr.Blocks(title="Ask the documents", analytics_enabled=False) as demo:
        # Each browser session gets its own Session, created on its first request.
        session = gr.State(None)
        gr.Markdown(
            "## Ask the documents\nEvery answer quotes the indexed documents word for word; "
            "click a source to see the quote in place. If the documents don't say, "
            "neither does this chat."
        )
        with gr.Row():
            with gr.Column(scale=3):
                # Gradio's own thumbs on every answer; ``on_thumb`` says what they do.
                chatbot = gr.Chatbot(label="Chat", height=420, elem_id="rag-chat",
                                     feedback_options=("Like", "Dislike"))  # fmt: skip
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Ask a question about the documents...",
                        show_label=False,
                        scale=5,
                        elem_id="rag-question",
                        max_lines=4,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="rag-ask")
                # The thumbs-down form, for one message at a time (rated_message).
                rated_message = gr.State(None)
                with gr.Column(variant="panel", visible=False, elem_id="rag-feedback") as form:
                    form_heading = gr.Markdown()
                    right_sentence = gr.Radio([], label="The right sentence, among those "
                                              "retrieved for that answer",
                                              elem_id="rag-feedback-pick")  # fmt: skip
                    right_answer = gr.Textbox(label="Or type the right answer", max_lines=3,
                                              elem_id="rag-feedback-text")  # fmt: skip
                    not_in_documents = gr.Checkbox(label="The documents don't say this",
                                                   elem_id="rag-feedback-none")  # fmt: skip
                    save = gr.Button("Save", size="sm", elem_id="rag-feedback-save")
                rating_status = gr.Markdown(elem_id="rag-feedback-status")
                examples = service.examples()
                if examples:
                    gr.Examples(examples, inputs=box, label="Try", elem_id="rag-examples")
                with gr.Row():
                    top_k = gr.Slider(1, 20, value=service.settings.top_k, step=1,
                                      label="Evidence sentences (top-k)")  # fmt: skip
                    generator = gr.Dropdown(list(generators.names()),
                                            value=service.settings.generator,
                                            label="Answer generator", interactive=True,
                                            elem_id="rag-generator")  # fmt: skip
                    reset_button = gr.Button("Reset conversation", elem_id="rag-reset")
                show_details = gr.Checkbox(label="Show timings and retrieved evidence")
                details = gr.Markdown(visible=False, elem_id="rag-details")
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                citations = gr.Radio(choices=[], label="Cited quotes (click to open)",
                                     visible=False, elem_id="rag-citations")  # fmt: skip
                viewer = gr.HTML(elem_id="rag-viewer")
                with gr.Accordion("Documents", open=False, elem_id="rag-documents"):
                    # Long titles wrap inside fixed shares of the width; unwrapped, the
                    # title alone filled the panel and hid source and chunks.
                    table = gr.Dataframe(headers=["title", "source", "chunks"],
                                         interactive=False, elem_id="rag-doc-table", wrap=True,
                                         column_widths=["50%", "35%", "15%"])  # fmt: skip
                    files = gr.File(file_count="multiple", file_types=UPLOAD_SUFFIXES,
                                    label="Upload .md / .txt / .pdf / .html / .docx",
                                    elem_id="rag-upload")  # fmt: skip
                    add = gr.Button("Add to index", elem_id="rag-add")
                    pick = gr.Dropdown([], label="Document", elem_id="rag-pick")
                    drop = gr.Button("Remove from index", variant="stop", elem_id="rag-remove")
                    status = gr.Markdown(elem_id="rag-status")
                    refresh = gr.Button("Refresh list", size="sm")

        outputs = [chatbot, box, session, citations, details]
        box.submit(chat, [box, chatbot, session, top_k, generator], outputs)
        send.click(chat, [box, chatbot, session, top_k, generator], outputs)
        citations.change(open_citation, [citations, session], viewer).then(
            None, js=SCROLL_TO_HIGHLIGHT
        )
        reset_button.click(reset, [session], [chatbot, session, citations, viewer, details,
                                              form, rated_message, rating_status])  # fmt: skip
        # A rating is a quick local write: no concurrency limit, so it never waits
        # behind answers being computed (or other ratings).
        chatbot.like(on_thumb, [session], [form, form_heading, right_sentence, right_answer,
                                         not_in_documents, rated_message, rating_status],
                     concurrency_limit=None, show_progress="hidden")  # fmt: skip
        save.click(save_dislike, [session, rated_message, right_sentence, right_answer,
                                  not_in_documents], [form, rated_message, rating_status],
                   concurrency_limit=None, show_progress="hidden")  # fmt: skip
        show_details.change(lambda on: gr.update(visible=on), show_details, details)
        add.click(upload, [files], [status, table, pick, files])
        drop.click(remove, [pick], [status, table, pick])
        refresh.click(documents, None, [table, pick])
        demo.load(documents, None, [table, pick])
    demo.queue(default_concurrency_limit=service.settings.ui_concurrency, max_size=64)
    demo.rag_theme = theme
    return demo


def check_exposure(host: str, auth: str | None, no_auth: bool) -> tuple[str, str] | None:
    """Auth is required off loopback unless explicitly waived; returns (user, password)."""
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise InputError("--auth / RAG_UI_AUTH must look like user:password")
        return user, password
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not no_auth:
        raise InputError(
            f"Binding to {host} exposes the chat to the network. Set a password with "
            "--auth user:password (or RAG_UI_AUTH), or pass --no-auth to allow anyone."
        )
    return None


def launch(
    settings: Settings, host: str, port: int, auth: str | None, no_auth: bool,
    block: bool = True,
) -> Any:  # fmt: skip
    """Build the pipeline and serve the chat (no share links, analytics off)."""
    from rag.pipeline import build_pipeline

    credentials = check_exposure(host, auth, no_auth)
    pipeline = build_pipeline(settings)
    pipeline.ask("warm up")  # load the vector index and ONNX kernels before the first user
    demo = build_app(ChatService(settings, pipeline))
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            auth=credentials,
            share=False,
            max_file_size=f"{int(settings.ui_max_upload_mb)}mb",
            show_error=False,
            prevent_thread_lock=not block,
            quiet=True,
            theme=demo.rag_theme,
            css=CSS,
            footer_links=[],
        )
    except OSError as exc:
        raise RagError(
            f"Cannot serve on {host}:{port} ({exc}). Choose another port with --port "
            "or RAG_UI_PORT."
        ) from exc
    return demo
