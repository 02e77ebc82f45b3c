"""Request bodies capped while they stream in, and memory given back after large ones.

Starlette parses a multipart body (spooling files to disk) before any route runs, so a size check
in the route comes after the whole body has been written: 300 MB reached the disk before the
413. This middleware refuses a declared ``Content-Length`` above the limit before reading a byte,
and counts the bytes of a body as they arrive (chunked bodies declare no length), answering 413
as soon as they go over — the parser never sees more than the limit. A body that stops arriving
is abandoned after ``MANGROVE_SERVER_BODY_IDLE_TIMEOUT_S`` (408), so a stalled client cannot
hold a request, and what it holds, for ever.

Limits by kind of route: uploads (tracks, grid files) and photos get their own limit plus room
for the multipart framing and form fields; every other body (JSON, forms) a small one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus

import anyio
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import memory
from api.problems import problem_response
from api.uploads import human_size
from patrol.settings import Settings

# Multipart framing and the small form fields that travel beside a file.
MULTIPART_OVERHEAD = 64 * 1024

UPLOAD_ROUTES = frozenset({"/api/v1/patrols", "/api/v1/grids/import", "/patrols/upload"})
PHOTO_ROUTES = re.compile(r"^(/api/v1/incidents/[^/]+/photos|/incidents/report)$")


@dataclass(frozen=True)
class BodyLimit:
    max_bytes: int  # what the body may hold in all
    shown_bytes: int  # the limit as the user knows it (the file, without the framing)
    what: str
    setting: str

    def message(self) -> str:
        return f"{self.what} is larger than the limit of {human_size(self.shown_bytes)} ({self.setting})"


def body_limit(settings: Settings, method: str, path: str) -> BodyLimit:
    """The body limit of a request, by the kind of route it goes to."""
    if method == "POST" and path in UPLOAD_ROUTES:
        size = settings.imports.max_upload_bytes
        return BodyLimit(size + MULTIPART_OVERHEAD, size, "the upload", "MANGROVE_IMPORT_MAX_UPLOAD_BYTES")
    if method == "POST" and PHOTO_ROUTES.match(path):
        size = settings.incidents.photo_max_bytes
        return BodyLimit(size + MULTIPART_OVERHEAD, size, "the photo", "MANGROVE_INCIDENT_PHOTO_MAX_BYTES")
    size = settings.server.max_body_bytes
    return BodyLimit(size, size, "the request body", "MANGROVE_SERVER_MAX_BODY_BYTES")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body goes over its limit. An HTTPException, so that FastAPI's
    body parsing passes it on (it turns other errors into 400) and it is answered as problem+json."""

    def __init__(self, limit: BodyLimit):
        super().__init__(413, limit.message())


class BodyTimeout(HTTPException):
    def __init__(self, seconds: float):
        super().__init__(408, f"the request body stopped arriving for {seconds:g} s; send it again")


class BodyCutShort(HTTPException):
    """The client went away before its body was complete (a phone losing its link): answered 400
    (to no one) rather than logged as a server error."""

    def __init__(self):
        super().__init__(400, "the connection closed before the request body was complete; send it again")


def _refusal(exc: HTTPException, path: str):
    # The client may still be sending: close the connection rather than read what is left.
    return problem_response(
        exc.status_code, HTTPStatus(exc.status_code).phrase, exc.detail, instance=path,
        headers={"Connection": "close"},
    )  # fmt: skip


def _declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # the server refuses a malformed length itself


class RequestLimits:
    """ASGI middleware: body caps while streaming, an idle timeout while the body arrives, and
    unused heap handed back after large bodies."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(self.settings, scope["method"], scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit.max_bytes:
            await _refusal(BodyTooLarge(limit), scope["path"])(scope, receive, send)
            return

        idle_timeout = self.settings.server.body_idle_timeout_s
        received = 0
        chunked = "chunked" in Headers(scope=scope).get("transfer-encoding", "").lower()
        body_done = not (declared or chunked)  # no body coming: nothing to count or wait for
        started = False

        async def capped_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # after the body, receive only waits for a disconnect: no timeout
                return await receive()
            with anyio.move_on_after(idle_timeout) as waited:
                message = await receive()
            if waited.cancelled_caught:
                raise BodyTimeout(idle_timeout)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise BodyTooLarge(limit)
                body_done = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                raise BodyCutShort()
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, watched_send)
        except (BodyTooLarge, BodyTimeout, BodyCutShort) as exc:  # where no handler answered it
            if started:
                raise
            await _refusal(exc, scope["path"])(scope, receive, send)
        finally:
            if self.settings.server.trim_memory_after_bytes and (
                received >= self.settings.server.trim_memory_after_bytes
            ):
                await anyio.to_thread.run_sync(memory.give_back)
