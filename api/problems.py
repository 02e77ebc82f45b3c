"""Every error leaves the service as RFC 9457 problem+json, mapped here and nowhere else."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geodata.errors import InputError
from patrol.errors import AuthenticationFailed, DomainError

log = logging.getLogger("mangrove.api")
PROBLEM_JSON = "application/problem+json"


def _slug(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:mangrove-patrol:problem:{kind}" if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _domain_error(request: Request, exc: DomainError | InputError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationFailed) else None
    retry_after = getattr(exc, "retry_after", None)  # e.g. login throttling: seconds to wait
    if retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(retry_after)}
    problems = [p.as_dict() for p in exc.problems] or None
    return problem_response(
        exc.status,
        exc.title,
        exc.message,
        kind=_slug(type(exc).__name__),
        instance=request.url.path,
        headers=headers,
        problems=problems,
        retry_after=retry_after,
    )


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
        for err in exc.errors()
    ]
    detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors) or "invalid request"
    return problem_response(
        422, "Invalid request", detail, kind="invalid-request", instance=request.url.path, errors=errors
    )


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    from http import HTTPStatus

    title = (
        HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "Error"
    )
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(exc.status_code, title, detail, instance=request.url.path, headers=exc.headers)


def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
    log.error("database error on %s: %s", request.url.path, exc.orig)
    return problem_response(
        503,
        "Database unavailable",
        "the database could not be reached; try again shortly",
        kind="database-unavailable",
        instance=request.url.path,
    )


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path)
    return problem_response(
        500,
        "Internal error",
        "an unexpected error occurred; it has been logged",
        kind="internal-error",
        instance=request.url.path,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(InputError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
