"""The ASGI app of ``rag serve``: the API beside the web chat, over one pipeline.

Endpoints (all JSON; errors are ``{"error": {"message", "type", "code"}}`` with a 4xx):

- ``POST /v1/chat/completions``, ``GET /v1/models``: OpenAI-compatible. The ``model``
  names a generator; the conversation is the ``messages`` list (stateless: follow-ups
  resolve from it). The verified answer, citations included, travels in the ``rag``
  extension field (the ``/api/ask`` object); when streaming, in the final chunk only.
- ``POST /v1/retrieve``: the evidence only.
- ``POST /api/ask`` (the CLI's ``--json`` contract), ``GET/POST /api/documents``,
  ``DELETE /api/documents/{source}``.
- ``GET /healthz``, ``GET /readyz`` (open without a key), ``/docs`` (OpenAPI).

Answering is ``rag.pipeline``'s and the index is ``rag.index.live_index``'s; this module
translates HTTP to their calls and their errors to status codes. Request bodies and
the error shape are ``server.schemas``; the chat-completions shape and its events
``server.completions``; keys, rate limit and body caps ``server.limits``; binding and
exposure rules ``server.cli``.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

import rag  # noqa: F401  (offline and no-telemetry environment before any library)
from rag import __version__, generators
from rag.answering.conversation import resolved_history
from rag.errors import (
    RagError,
)
from rag.feedback.record import Feedback
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.types import Answer
from server.completions import conversation_of, last, rendered, sse
from server.limits import BodyLimit, RateLimiter, identity_of, key_matches
from server.schemas import (
    EXTENSION,
    ApiError,
    AskRequest,
    ChatRequest,
    FeedbackCreated,
    FeedbackRequest,
    RetrieveRequest,
    error_body,
    status_of,
)


class Server:
    """What every request needs: the settings, the pipeline and the limits."""

    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.keys = settings.api_key_list
        self.limiter = RateLimiter(settings.api_rate_limit)

    def answer_stream(
        self,
        question: str,
        history: list[str],
        turns: list[tuple[str, str]],
        top_k: int | None,
        generator: str | None,
        documents: list[str] | None,
    ) -> Iterator[Answer]:
        # An unknown generator is an InputError (a 400) at the first answer, which the
        # endpoints take before they respond (Pipeline.stream checks it first).
        return self.pipeline.stream(
            question, resolved_history(history), top_k, generator, turns, documents
        )


bearer = HTTPBearer(auto_error=False, description="One of RAG_API_KEYS.")


async def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """The key check and the rate limit, for every endpoint but the probes and docs.

    ``async`` because it never blocks: a plain function would cost every request an
    extra hop through the thread pool."""
    server: Server = request.app.state.server
    token = credentials.credentials if credentials is not None else None
    if server.keys and (token is None or not key_matches(token, server.keys)):
        raise ApiError(
            401,
            "Missing or unknown API key: send 'Authorization: Bearer KEY' with a key "
            "from RAG_API_KEYS.",
            "invalid_api_key",
            {"WWW-Authenticate": "Bearer"},
        )
    address = request.client.host if request.client else "unknown"
    wait = server.limiter.acquire(identity_of(token if server.keys else None, address))
    if wait > 0:
        raise ApiError(
            429,
            f"Rate limit of {server.settings.api_rate_limit} requests per minute reached "
            f"(RAG_API_RATE_LIMIT); retry in {RateLimiter.retry_after(wait)} s.",
            "rate_limited",
            {"Retry-After": RateLimiter.retry_after(wait)},
        )


Authorized = [Depends(authorize)]


def create_app(settings: Settings, pipeline: Pipeline, chat: bool = True) -> FastAPI:
    """The API (and, with ``chat``, the web chat at ``/``) over ``pipeline``."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Answers run in worker threads but take the index lock and the GIL in turn:
        # more threads than cores only add switching (measured: 20 clients). The
        # probes are async and never wait for this pool.
        threads = settings.api_answer_threads or max(1, (os.cpu_count() or 2) // 2)
        to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="rag",
        version=__version__,
        description="Answers only from your documents, with verified citations. "
        "OpenAI-compatible chat completions carry the citations in the `rag` field.",
    )
    server = Server(settings, pipeline)
    app.state.server = server
    probe_limiter = CapacityLimiter(1)
    _add_error_handlers(app)

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], responses={503: {"description": "Not ready"}})
    async def readyz() -> JSONResponse:
        """The index is open and the embedder loaded: questions can be answered."""

        def check() -> JSONResponse:
            try:
                documents = len(pipeline.live.documents())
                pipeline.live.check_store()  # a Chroma server that is down: not ready
                embedder = pipeline.live.embedder.name
            except RagError as exc:
                return JSONResponse(error_body(str(exc), "not_ready", 503), status_code=503)
            return JSONResponse({"status": "ready", "documents": documents, "embedder": embedder})

        # Its own thread, not one of the answering pool: a probe never queues behind answers.
        return await to_thread.run_sync(check, limiter=probe_limiter)

    # Answers are returned as JSONResponse: a plain dict would go through FastAPI's
    # jsonable_encoder and response validation, which cost more than a warm answer.
    @app.post("/api/ask", tags=["api"], dependencies=Authorized)
    def ask(body: AskRequest) -> JSONResponse:
        """Answer a question: the JSON contract of `rag ask --json`."""
        answers = server.answer_stream(
            body.question, body.history, [], body.top_k, body.generator, body.documents
        )
        return JSONResponse(last(answers).to_json())

    @app.post(
        "/api/feedback",
        tags=["api"],
        dependencies=Authorized,
        status_code=201,
        responses={400: {"description": "A forged, stale or malformed rating"}},
    )
    def feedback(
        body: FeedbackRequest,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> FeedbackCreated:
        """Rate an answer: stored for review and export as eval cases (rag feedback)."""
        key = credentials.credentials if server.keys and credentials is not None else None
        record = pipeline.rate(
            Feedback(
                question=body.question,
                answer=body.answer,
                rating=body.rating,
                history=tuple(body.history),
                correction=body.correction or "",
                should_refuse=body.should_refuse,
            ),
            key=key,
        )
        return FeedbackCreated(id=record.id)

    @app.post("/v1/retrieve", tags=["api"], dependencies=Authorized)
    def retrieve(body: RetrieveRequest) -> JSONResponse:
        """The evidence only: quotes with offsets and scores, best first."""
        history = resolved_history(body.history)
        query, evidence = pipeline.retrieve(body.query, body.top_k, body.documents, history)
        return JSONResponse({
            "query": query,
            "evidence": [
                {
                    "source": e.source,
                    "title": e.title,
                    "page": e.page,
                    "quote": e.quote,
                    "start": e.start,
                    "end": e.end,
                    "score": round(e.score, 6),
                    "dense": round(e.dense, 6),
                    "lexical": round(e.lexical, 6),
                } | ({"ocr": True} if e.ocr else {})
                for e in evidence
            ],
        })  # fmt: skip

    @app.get("/v1/models", tags=["openai"], dependencies=Authorized)
    def models() -> dict[str, object]:
        """The generators, as OpenAI models."""
        return {
            "object": "list",
            "data": [
                {"id": g.name, "object": "model", "created": 0, "owned_by": "rag",
                 "description": g.description}
                for g in (generators.get(n) for n in generators.names())
            ],
        }  # fmt: skip

    @app.post("/v1/chat/completions", tags=["openai"], dependencies=Authorized)
    def chat_completions(body: ChatRequest) -> Any:
        """OpenAI-compatible chat; the answer with its citations is in `rag`."""
        question, history, turns = conversation_of(body.messages)
        answers = server.answer_stream(
            question, history, turns, body.top_k, body.model, body.documents
        )
        completion = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not body.stream:
            answer = last(answers)
            return JSONResponse({
                "id": completion,
                "object": "chat.completion",
                "created": created,
                "model": answer.generator,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": rendered(answer)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                EXTENSION: answer.to_json(),
            })  # fmt: skip
        # The first snapshot is taken here, so a bad question is a 4xx, not a broken stream.
        first = next(answers)
        return StreamingResponse(
            sse(first, answers, completion, created), media_type="text/event-stream"
        )

    @app.get("/api/documents", tags=["documents"], dependencies=Authorized)
    def list_documents() -> list[dict[str, Any]]:
        """The indexed documents."""
        return [record.to_json() for record in pipeline.live.documents()]

    @app.post("/api/documents", tags=["documents"], dependencies=Authorized)
    def upload_documents(
        files: Annotated[list[UploadFile], File(description="Files to index.")],
    ) -> dict[str, Any]:
        """Upload files and index them (incrementally); returns the ingest report."""
        from ui.handlers import safe_upload_name

        target_dir = settings.uploads_dir
        target_dir.mkdir(parents=True, exist_ok=True)
        saved: list[Path] = []
        for upload in files:
            name = safe_upload_name(upload.filename or "upload")
            target = target_dir / name
            with open(target, "wb") as out:
                while chunk := upload.file.read(1 << 20):
                    out.write(chunk)
            saved.append(target)
        report = pipeline.live.ingest(saved)
        return dataclasses.asdict(report)

    @app.delete(
        "/api/documents/{source:path}",
        tags=["documents"],
        dependencies=Authorized,
        responses={404: {"description": "No such document"}},
    )
    def delete_document(source: str) -> dict[str, Any]:
        """Remove a document from the index (and its file, if it was uploaded here)."""
        if pipeline.live.document(source) is None:
            raise ApiError(
                404, f"No indexed document is called {source!r} (see GET /api/documents).",
                "not_found",
            )  # fmt: skip
        doc, removed = pipeline.live.remove(source)
        # An uploaded file goes with its document; files elsewhere are the user's own.
        if doc is not None and doc.path and Path(doc.path).parent == settings.uploads_dir.resolve():
            Path(doc.path).unlink(missing_ok=True)
        return {"source": source, "chunks_removed": removed}

    app.add_middleware(
        BodyLimit,
        prefixes=("/api/", "/v1/"),
        limit_for=lambda method, path: (
            int(settings.ui_max_upload_mb * 1_000_000)
            if method == "POST" and path == "/api/documents"
            else settings.api_max_body_kb * 1024
        ),
    )
    if chat:
        _mount_chat(app, settings, pipeline)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.message, exc.code, exc.status), exc.status, headers=exc.headers
        )

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        status, code = status_of(exc)
        return JSONResponse(error_body(str(exc), code, status), status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The message names each bad field; the input itself is not echoed back (it
        # may be megabytes, or bytes that are not text).
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ())) or 'body'}: {err.get('msg', '')}"
            for err in exc.errors()[:10]
        )
        return JSONResponse(error_body(f"Invalid request: {problems}", "invalid_body", 422), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in message:
            message = "The request body is not valid JSON (or not UTF-8)."
        return JSONResponse(
            error_body(message, "http_error", exc.status_code),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )


def _mount_chat(app: FastAPI, settings: Settings, pipeline: Pipeline) -> None:
    """The web chat at ``/``, over the same pipeline (one index open per process)."""
    import gradio as gr

    from ui.app import CSS, build_app, check_exposure
    from ui.handlers import ChatService

    credentials = check_exposure(settings.api_host, settings.ui_auth, no_auth=True)
    demo = build_app(ChatService(settings, pipeline))
    gr.mount_gradio_app(
        app,
        demo,
        path="",
        auth=credentials,
        show_error=False,
        max_file_size=f"{int(settings.ui_max_upload_mb)}mb",
        theme=demo.rag_theme,
        css=CSS,
        footer_links=[],
    )


def app_from_environment() -> FastAPI:
    """The app a uvicorn worker builds (``--workers`` > 1): settings from ``RAG_*``."""
    from rag.pipeline import build_pipeline
    from rag.settings import load_settings

    settings = load_settings()
    pipeline = build_pipeline(settings)
    pipeline.ask("warm up")  # load the vector index and ONNX kernels before the first user
    return create_app(settings, pipeline, chat=settings.api_chat)
