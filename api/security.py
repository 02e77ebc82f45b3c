"""What every request and response passes through once, at the edge of the service.

* Security headers on every response: a Content-Security-Policy (the service's own pages load
  scripts and styles only from the service; a route that sets its own policy, like the maps with
  their basemap's tile host, keeps it and only gains the directives it left out), ``nosniff``, no
  framing by other sites, and a same-origin referrer. The session cookie is marked ``Secure`` when
  the request came over HTTPS (directly, or through a proxy and uvicorn's ``--proxy-headers``), so
  a plain-http station laptop on localhost keeps working.
* Control characters: text holding a NUL byte cannot be stored by PostgreSQL (it answered 500),
  and no name, code or parameter has a use for the other C0 controls. They are refused here, for
  both backends, with a 422 naming the parameter or field: in the path, the query string, header
  values, JSON bodies and the text fields of forms (url-encoded and multipart; file contents are
  the readers' business, and file names are repaired, not refused: see ``geodata.filenames``). Free text (descriptions, notes…) may hold tab, line feed and carriage
  return. ``patrol.db`` keeps a backstop for text that reaches the database another way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response

# --- headers -------------------------------------------------------------------------------------

# Every directive a page's policy must have; a route's own policy gains the ones it lacks.
BASELINE = {
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# The service's own pages: scripts and styles are files under /static (no inline code); photos
# chosen on the report page are previewed from blob: URLs.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; " + "; ".join(f"{k} {v}" for k, v in BASELINE.items())
)
# Everything else that is not an image (JSON, CSV, scripts…) is never a document: should a
# browser ever render one, it may load and run nothing.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
FIXED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def complete_policy(policy: str) -> str:
    """``policy`` with the baseline directives it does not set itself appended."""
    present = {part.split()[0].lower() for part in policy.split(";") if part.strip()}
    missing = [f"{k} {v}" for k, v in BASELINE.items() if k not in present]
    return "; ".join([policy.strip().rstrip(";")] + missing) if missing else policy


def inline_script_policy(html: str, *, style_inline: bool = False) -> str:
    """A page policy for HTML we do not write ourselves (Swagger UI): its inline scripts are
    allowed by their SHA-256 hash, and nothing else inline runs."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
        for code in re.findall(r"<script>(.*?)</script>", html, re.S)
    )
    styles = "'self' 'unsafe-inline'" if style_inline else "'self'"
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src {styles}; img-src 'self' data:; "
        "connect-src 'self'; " + "; ".join(f"{k} {v}" for k, v in BASELINE.items())
    )


def _secure_cookie(value: bytes) -> bytes:
    attributes = {a.strip().split(b"=", 1)[0].lower() for a in value.split(b";")[1:]}
    return value if b"secure" in attributes else value + b"; Secure"


class SecurityHeaders:
    """Adds the security headers to every response (ASGI middleware)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if https:
                    message["headers"] = [
                        (k, _secure_cookie(v) if k.lower() == b"set-cookie" else v)
                        for k, v in message.get("headers", [])
                    ]
                headers = MutableHeaders(scope=message)
                content_type = headers.get("content-type", "").lower()
                own = headers.get("content-security-policy")
                if own is not None:
                    headers["Content-Security-Policy"] = complete_policy(own)
                elif content_type.startswith("text/html"):
                    headers["Content-Security-Policy"] = PAGE_POLICY
                elif not content_type.startswith("image/"):
                    headers["Content-Security-Policy"] = DATA_POLICY
                for name, value in FIXED_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- control characters --------------------------------------------------------------------------

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, LF and CR allowed
CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")
CONTROL_BYTES_IN_TEXT = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Fields of JSON bodies and forms that hold free text written by people; every other field (names,
# codes, usernames, choices, tokens) may hold no control character at all.
FREE_TEXT_FIELDS = frozenset(
    {"description", "note", "notes", "title", "label_zh", "label_en", "display_name", "password", "reason"}
)
JSON_TYPES = re.compile(r"^application/([\w.+-]+\+)?json$")


@dataclass(frozen=True)
class Finding:
    location: str  # path, query, header, body, form
    name: str  # the parameter, header or field
    char: str

    @property
    def message(self) -> str:
        where = {
            "path": "the path",
            "query": f"the query parameter {self.name!r}",
            "header": f"the header {self.name!r}",
            "body": f"the field {self.name!r}",
            "form": f"the form field {self.name!r}",
        }[self.location]
        return (
            f"{where} holds the control character U+{ord(self.char):04X}; "
            "text may hold no control characters (free text: only tab and line breaks)"
        )

    def problem(self) -> dict[str, str]:
        return {
            "kind": "control-character",
            "message": self.message,
            "location": self.location,
            "name": self.name,
            "character": f"U+{ord(self.char):04X}",
        }


class ControlCharacters(HTTPException):
    """Raised from a request body stream (multipart forms): mapped by ``api.problems``."""

    kind = "control-character"

    def __init__(self, finding: Finding):
        super().__init__(422, finding.message)
        self.title = "Control character"
        self.problems = [finding.problem()]


def _first(pattern: re.Pattern, text: str) -> str | None:
    match = pattern.search(text)
    return match.group() if match else None


def _text_pattern(field: str) -> re.Pattern:
    return CONTROL_IN_TEXT if field in FREE_TEXT_FIELDS else CONTROL


def request_line_findings(scope: Scope) -> Iterator[Finding]:
    """Control characters in the path, the query string's names and values, and header values
    (HTTP allows a tab inside a header value)."""
    if char := _first(CONTROL, scope.get("path", "")):
        yield Finding("path", "path", char)
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace"):
        if char := _first(CONTROL, name + value):
            yield Finding("query", name, char)
    for raw_name, raw_value in scope.get("headers", []):
        if match := CONTROL_BYTES.search(raw_value.replace(b"\t", b" ")):
            yield Finding("header", raw_name.decode("latin-1"), chr(match.group()[0]))


def json_findings(value, field: str = "") -> Iterator[Finding]:
    """Control characters in the strings (keys and values) of a parsed JSON document; a string's
    field is the nearest enclosing object key."""
    if isinstance(value, str):
        if char := _first(_text_pattern(field), value):
            yield Finding("body", field or "(body)", char)
    elif isinstance(value, dict):
        for key, item in value.items():
            if char := _first(CONTROL, key):
                yield Finding("body", key, char)
            yield from json_findings(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from json_findings(item, field)


def form_findings(body: bytes) -> Iterator[Finding]:
    for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8"):
        if char := _first(CONTROL, name) or _first(_text_pattern(name), value):
            yield Finding("form", name, char)


class _MultipartWatch:
    """Reads a multipart body as it streams to the application and raises
    :class:`ControlCharacters` at the first control character in a part's name or a text
    (non-file) part. File contents pass unread; nothing is buffered."""

    def __init__(self, receive: Receive, boundary: bytes):
        self.receive = receive
        self.finding: Finding | None = None
        self._header_name = b""
        self._header_value = b""
        self._name = ""
        self._is_file = False
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value_part,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
            },
        )
        self.broken = False  # the application's own parser reports a malformed body

    def _part_begin(self) -> None:
        self._headers, self._name, self._is_file = {}, "", False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._name = name
        self._is_file = b"filename" in options
        # A file's name is not checked: it comes from the uploader's device, and the service
        # stores a printable version of it (geodata.filenames) rather than refuse the file.
        if char := _first(CONTROL, name):
            self._found(Finding("form", name, char))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file or self.finding:
            return
        pattern = CONTROL_BYTES_IN_TEXT if self._name in FREE_TEXT_FIELDS else CONTROL_BYTES
        if match := pattern.search(data, start, end):
            self._found(Finding("form", self._name, chr(match.group()[0])))

    def _found(self, finding: Finding) -> None:
        if self.finding is None:
            self.finding = finding

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request" and not self.broken:
            try:
                self.parser.write(message.get("body", b""))
            except Exception:  # noqa: BLE001 - malformed multipart: the application answers it
                self.broken = True
            if self.finding:
                raise ControlCharacters(self.finding)
        return message


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _body_findings(content_type: str, body: bytes) -> Iterator[Finding]:
    if JSON_TYPES.match(content_type):
        try:
            document = json.loads(body)
        except ValueError:  # not JSON (or not UTF-8): the application answers 422 itself
            return
        yield from json_findings(document)
    else:
        yield from form_findings(body)


class ControlCharacterGuard:
    """Refuses control characters at the edge (ASGI middleware, see the module's docstring)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        finding = next(request_line_findings(scope), None)
        if finding is None:
            raw_type = dict(scope.get("headers", [])).get(b"content-type", b"")
            content_type, options = parse_options_header(raw_type)
            content_type = content_type.decode("latin-1").lower()
            if JSON_TYPES.match(content_type) or content_type == "application/x-www-form-urlencoded":
                # Small bodies the application reads whole anyway: read, check, hand on.
                body = await _read_body(receive)
                finding = next(_body_findings(content_type, body), None)
                receive = _replay(body, receive)
            elif content_type == "multipart/form-data" and options.get(b"boundary"):
                receive = _MultipartWatch(receive, options[b"boundary"])
        if finding is not None:
            response = problem_response(
                422,
                "Control character",
                finding.message,
                kind="control-character",
                instance=scope.get("path") if finding.location != "path" else None,
                problems=[finding.problem()],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app) -> None:
    """Wrap the whole application, error pages included, in the guard and the headers."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: SecurityHeaders(ControlCharacterGuard(build()))
