"""What protects the server from its callers: API keys, a per-key rate limit and a
cap on request bodies. Plain classes, testable without a server.

Does not decide what a request means (``server.app``) or who may bind where
(``server.cli``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def key_matches(token: str, keys: list[str]) -> bool:
    """Whether ``token`` is one of ``keys``, compared in constant time (no timing oracle)."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(token.encode(), key.encode())
    return found


def identity_of(token: str | None, address: str) -> str:
    """Who a request counts against: its key (hashed: keys never sit in memory maps
    or logs as themselves), else its client address."""
    if token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return "addr:" + address


class RateLimiter:
    """A token bucket per identity: ``per_minute`` requests, refilled continuously, with
    a burst of the same size. ``per_minute == 0`` disables it. Per process: with
    several workers each one counts its own requests."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # identity -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, identity: str) -> float:
        """Take one request; returns 0 when allowed, else the seconds until one is."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(identity, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[identity] = (tokens - 1.0, now)
                return 0.0
            self._buckets[identity] = (tokens, now)
            return (1.0 - tokens) / rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """The ``Retry-After`` header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(wait_s)))


class BodyLimit:
    """ASGI middleware: bodies of requests under ``prefixes`` larger than ``limit_for``
    bytes are answered 413 without reaching the app. The body is read here (up to the
    limit, then replayed), so a chunked upload without a length is capped as well."""

    def __init__(
        self, app: ASGIApp, prefixes: tuple[str, ...], limit_for: Callable[[str, str], int]
    ) -> None:
        self.app = app
        self.prefixes = prefixes
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("method", "GET"), path)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # disconnect, when it comes

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(send: Send, limit: int) -> None:
        import json

        payload = json.dumps(
            {
                "error": {
                    "message": f"The request body is larger than {limit // 1024} KB "
                    "(RAG_API_MAX_BODY_KB; uploads: RAG_UI_MAX_UPLOAD_MB).",
                    "type": "invalid_request_error",
                    "code": "body_too_large",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
