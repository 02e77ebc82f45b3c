"""Every error leaves the service as RFC 9457 problem+json, mapped here and nowhere else."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError, PendingRollbackError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles

from api import error_pages
from api.routing import all_routes, original
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
        parameter=getattr(exc, "field", None),  # the input the refusal is about, when it is one
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

    title = getattr(exc, "title", None) or (
        HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "Error"
    )
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
    return problem_response(
        exc.status_code,
        title,
        detail,
        kind=getattr(exc, "kind", None),
        instance=request.url.path,
        headers=headers or None,
        problems=getattr(exc, "problems", None),
    )


def allowed_methods(app, scope) -> list[str]:
    """Every method the request's path answers, over all the routes that match it (Starlette's
    own 405 names only the first route's)."""
    # The path as the application saw it, before a mount moved part of it into root_path.
    request_line = {
        "type": "http",
        "method": scope["method"],
        "path": scope["path"],
        "root_path": scope.get("app_root_path", ""),
    }
    methods: set[str] = set()
    for route in all_routes(app.routes):
        match, _ = route.matches(request_line)
        if match == Match.NONE:
            continue
        if getattr(route, "methods", None):
            methods |= set(route.methods)
        elif isinstance(original(route), Mount) and isinstance(original(route).app, StaticFiles):
            methods |= {"GET", "HEAD"}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After when the database cannot serve now (see :func:`database_unavailable`);
    any other database error is a bug, answered like every unexpected error."""
    cause = database_unavailable(exc)
    if cause is None:
        return _unexpected(request, exc)
    busy = _is_busy(cause)
    log.warning("database unavailable on %s: %s", request.url.path, _one_line(cause))
    if isinstance(cause, SQLAlchemyTimeoutError):
        detail = "every database connection is in use by other requests; try again shortly"
    elif busy:
        detail = "the database is busy with other writes; try again shortly"
    else:
        detail = "the database cannot be reached (it may be restarting); try again shortly"
    retry_after = RETRY_AFTER_BUSY_S if busy else RETRY_AFTER_S
    return problem_response(
        503,
        "Database unavailable",
        detail,
        kind="database-unavailable",
        instance=request.url.path,
        headers={"Retry-After": str(retry_after)},
        retry_after_s=retry_after,
    )


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # An error that merely wraps a database outage (an exception group, a re-raise) is still one.
    if database_unavailable(exc) is not None:
        return _database_unavailable(request, exc)
    # exc_info given explicitly: sync handlers run in a worker thread, where no exception is active.
    log.error("unexpected error on %s", request.url.path, exc_info=exc)
    return problem_response(
        500,
        "Internal error",
        "an unexpected error occurred; it has been logged",
        kind="internal-error",
        instance=request.url.path,
    )


# --- database outages -------------------------------------------------------------------------------

# Seconds a client should wait: a PostgreSQL restart takes a few seconds; SQLite's write lock is
# held for milliseconds, so a busy timeout means a burst of writers.
RETRY_AFTER_S = 5
RETRY_AFTER_BUSY_S = 2

# SQLite result codes (the primary code, the low byte) that say "not now" rather than "wrong SQL":
# BUSY, LOCKED, NOMEM, INTERRUPT, IOERR, FULL, CANTOPEN, PROTOCOL.
_SQLITE_TRANSIENT = {5, 6, 7, 9, 10, 13, 14, 15}
_SQLITE_BUSY = {5, 6}


def _driver_errors() -> tuple[type[BaseException], ...]:
    """The database drivers' own exception bases, for errors that reach us unwrapped."""
    from patrol.db import sqlite_driver

    kinds: list[type[BaseException]] = [sqlite_driver().Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency; PostGIS needs it
        pass
    else:
        kinds.append(psycopg.Error)
    return tuple(kinds)


DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, *_driver_errors())


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return exc.orig is not None and _is_transient(exc.orig)
    if isinstance(exc, SQLAlchemyTimeoutError):  # no pooled connection freed up in time
        return True
    if isinstance(exc, PendingRollbackError):  # a connection lost earlier in this transaction
        return "invalid transaction" in str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_TRANSIENT
    if type(exc).__module__.startswith("psycopg"):
        import psycopg

        # Connection lost or refused, the server starting up or shutting down, too many clients,
        # a cancelled statement, a deadlock: all pass when tried again.
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return False


def _is_busy(exc: BaseException) -> bool:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    return isinstance(exc, SQLAlchemyTimeoutError) or (code is not None and code & 0xFF in _SQLITE_BUSY)


def database_unavailable(exc: BaseException) -> BaseException | None:
    """The error in ``exc`` (itself, what it was raised from or during, or a member of an exception
    group) that says the database cannot serve now: PostgreSQL down, restarting or unreachable, a
    connection that broke, no free pooled connection, SQLite's lock past the busy timeout. None
    for every other error, which is a bug and answers 500."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if _is_transient(error):
            return error
        pending += [error.__cause__, error.__context__]
        if isinstance(error, BaseExceptionGroup):
            pending += list(error.exceptions)
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc)
    return f"{type(exc).__name__}: {' '.join(text.split())[:300]}"


def _for_browsers(handler):
    """The handler's problem+json, drawn as a page when a browser asks for a page (api.error_pages)."""

    def answer(request: Request, exc: Exception):
        problem = handler(request, exc)
        return error_pages.as_page(request, problem) if error_pages.wants_page(request) else problem

    return answer


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _for_browsers(_domain_error))
    app.add_exception_handler(InputError, _for_browsers(_domain_error))
    app.add_exception_handler(RequestValidationError, _for_browsers(_validation_error))
    app.add_exception_handler(StarletteHTTPException, _for_browsers(_http_error))
    app.add_exception_handler(OperationalError, _for_browsers(_database_unavailable))
    app.add_exception_handler(Exception, _for_browsers(_unexpected))
    # Every database error: 503 with Retry-After for an outage, 500 for the rest (a bug).
    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _for_browsers(_database_unavailable))
