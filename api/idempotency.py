"""Safe retries over HTTP: the ``Idempotency-Key`` request header on every create.

Follows the IETF httpapi draft "The Idempotency-Key HTTP Header Field". Here the header is
optional; when a create carries one:

- The value is an RFC 8941 string, ``Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"``;
  the same characters without the quotes are accepted too. A key is 1–255 printable ASCII
  characters (a UUID is a good one); anything else is refused with 400, as is a second header.
- A repeat by the same user with the same key and the same request answers with the first response
  (same status, body and Location) plus ``Idempotent-Replayed: true``, and creates nothing.
- The same key with a different request (other content, or another endpoint) answers 422.
- A repeat that arrives while the first is still being processed waits for its result; 409 if
  that takes longer than a few seconds (PostgreSQL; on SQLite writers simply take turns).
- Refused requests store nothing; keys are remembered for MANGROVE_IDEMPOTENCY_RETENTION_DAYS.

The request's fingerprint is a SHA-256 over its method, path, query and content: the JSON body
canonicalised (keys sorted, no spacing), or the form fields and each uploaded file's bytes. The
storage and the rules live in :mod:`patrol.idempotency`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from patrol.accounts import Principal
from patrol.idempotency import InvalidIdempotencyKey, KeyedRequest, StoredResponse, check_key, run_once

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# The hidden field of the service's own forms that carries the key made when the page was drawn.
FORM_FIELD = "idempotency_key"
HEADER_DESCRIPTION = (
    "Optional key chosen by the client (1–255 printable ASCII characters, e.g. a UUID, best sent "
    'quoted: `"8e03978e-40d5-43e8-bc93-6894a57f9324"`) that makes retries safe: a repeat by the '
    "same user with the same key and request gets the first response again (same status, body and "
    "Location, with `Idempotent-Replayed: true`) and creates nothing. The same key with a different "
    "request answers 422; a repeat while the first is still being processed waits for it (409 if "
    "that takes too long). Keys are per user and remembered for 30 days (a setting)."
)
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Idempotency:
    """A create request's key (None: sent without one) and fingerprint, ready to run once."""

    key: str | None
    method: str
    path: str
    fingerprint: str | None
    retention: timedelta

    def run(
        self,
        session: Session,
        principal: Principal,
        create: Callable[[], StoredResponse],
        *,
        undo: Callable[[], None] | None = None,
    ) -> tuple[StoredResponse, bool]:
        """Run ``create`` (which must not commit) and commit, or return the stored response of an
        earlier request with this key; (response, replayed)."""
        keyed = None
        if self.key is not None:
            keyed = KeyedRequest(principal.user_id, self.key, self.method, self.path, self.fingerprint or "")
        return run_once(session, keyed, create, retention=self.retention, undo=undo)

    def respond(
        self,
        session: Session,
        principal: Principal,
        create: Callable[[], StoredResponse],
        *,
        undo: Callable[[], None] | None = None,
    ) -> JSONResponse:
        """:meth:`run` as the JSON response to send (the stored one, when it is a repeat)."""

        def create_json() -> StoredResponse:
            made = create()
            return StoredResponse(made.status, jsonable_encoder(made.body), made.location)

        stored, replayed = self.run(session, principal, create_json, undo=undo)
        headers = {"Location": stored.location} if stored.location else {}
        if replayed:
            headers[REPLAYED_HEADER] = "true"
        return JSONResponse(stored.body, status_code=stored.status, headers=headers)


def parse_header(value: str) -> str:
    """The key an ``Idempotency-Key`` header value carries: an RFC 8941 sf-string, or the same
    characters unquoted. InvalidIdempotencyKey names what is wrong."""
    value = value.strip(" \t")
    if not value.startswith('"'):
        if any(ch in ' ",\\' for ch in value):
            raise InvalidIdempotencyKey(
                "an unquoted Idempotency-Key cannot hold spaces, quotes, commas or backslashes; "
                'send it as a quoted string, e.g. Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"'
            )
        return check_key(value)
    chars: list[str] = []
    i = 1
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in '"\\':
                raise InvalidIdempotencyKey(
                    'a backslash in a quoted Idempotency-Key may only escape " or \\ (RFC 8941 string)'
                )
            chars.append(value[i + 1])
            i += 2
            continue
        if ch == '"':
            if i != len(value) - 1:
                raise InvalidIdempotencyKey(
                    "the Idempotency-Key has text after its closing quote; send exactly one quoted key"
                )
            return check_key("".join(chars))
        chars.append(ch)
        i += 1
    raise InvalidIdempotencyKey("the Idempotency-Key's quoted string has no closing quote")


async def request_fingerprint(request: Request, skip: Iterable[str] = ()) -> str:
    """SHA-256 (hex) of what ``request`` asks for: method, path, query and content (canonical JSON,
    or form fields with each file's name and bytes). Fields in ``skip`` (CSRF token, the key
    itself) do not count. Reads the body FastAPI has already read (Starlette caches it)."""
    skip = frozenset(skip)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    content: dict[str, Any]
    if media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form()
        fields = []
        for name, value in form.multi_items():
            if name in skip:
                continue
            if isinstance(value, UploadFile):
                fields.append([name, {"filename": value.filename, "sha256": await _file_sha256(value)}])
            else:
                fields.append([name, value])
        # Order of fields carries no meaning (members may come in any order).
        content = {"form": sorted(fields, key=_canonical)}
    else:
        raw = await request.body()
        try:
            content = {"json": json.loads(raw)} if raw.strip() else {}
        except (ValueError, RecursionError):  # refused by validation anyway; still a fingerprint
            content = {"bytes": hashlib.sha256(raw).hexdigest()}
    document = {
        "method": request.method,
        "path": request.url.path,
        "query": sorted(request.query_params.multi_items()),
        **content,
    }
    return hashlib.sha256(_canonical(document).encode()).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


async def _file_sha256(upload: UploadFile) -> str:
    digest = hashlib.sha256()
    await upload.seek(0)
    while chunk := await upload.read(CHUNK):
        digest.update(chunk)
    await upload.seek(0)  # the route reads it again
    return digest.hexdigest()


def _retention(request: Request) -> timedelta:
    return timedelta(days=request.app.state.settings.idempotency.retention_days)


async def idempotency(
    request: Request,
    # Declared for the OpenAPI document; read below with every copy of the header.
    idempotency_key: Annotated[str | None, Header(alias=HEADER, description=HEADER_DESCRIPTION)] = None,
) -> Idempotency:
    values = request.headers.getlist(HEADER)
    if len(values) > 1:
        raise InvalidIdempotencyKey(f"send one Idempotency-Key header, not {len(values)}")
    key = parse_header(values[0]) if values else None
    fingerprint = await request_fingerprint(request) if key is not None else None
    return Idempotency(key, request.method, request.url.path, fingerprint, _retention(request))


# For the JSON API's create routes: ``idempotency.respond(session, principal, create)``.
IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]


async def from_form(request: Request, skip: Iterable[str] = ("csrf_token",)) -> Idempotency:
    """The key of one of the service's own forms (its hidden field; none: an old page without one)."""
    value = (await request.form()).get(FORM_FIELD)
    key = check_key(value) if isinstance(value, str) and value else None
    fingerprint = await request_fingerprint(request, skip=(FORM_FIELD, *skip)) if key else None
    return Idempotency(key, request.method, request.url.path, fingerprint, _retention(request))


def new_form_key() -> str:
    """A fresh key for a form being drawn: one per page, so a double tap or a resubmit is one."""
    return secrets.token_urlsafe(24)
