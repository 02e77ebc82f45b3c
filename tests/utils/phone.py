"""Clients that upload patrol tracks the way the field app does: a file is sent again and again
until the service acknowledges it (2xx), after a 503 (waiting as Retry-After says, capped to keep
tests short) and after a connection error. The same file sent again answers with the first
patrol, so retrying never makes a second one. Every answer is recorded for the test to check."""

from __future__ import annotations

import functools
import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from utils.factories import PASSWORD
from utils.tracks import crossing, gpx

GRIDS = ("LJ-GQ-03", "LJ-GQ-01", "LJ-GQ-02")


@functools.cache
def _walks(interval: float):
    return [crossing(code, interval=interval) for code in GRIDS]


def track_file(i: int, *, interval: float = 2.0, prefix: str = "walk") -> tuple[str, bytes]:
    """The ``i``-th of endless distinct GPX files (name, bytes): walks across Lianjiang grids,
    each starting at another hour, so each has its own content and makes its own patrol."""
    walks = _walks(interval)
    lon, lat, times, _ = walks[i % len(walks)]
    shifted = [t + timedelta(hours=i) for t in times]
    return f"{prefix}-{i:04d}.gpx", gpx(lon, lat, shifted, name=f"{prefix} {i}")


class TrackFiles:
    """Hands out distinct track files to phones in threads, until told to stop (or ``limit``)."""

    def __init__(self, prefix: str = "walk", limit: int | None = None):
        self.prefix, self.limit = prefix, limit
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self.stopped = threading.Event()

    def next(self) -> tuple[str, bytes] | None:
        if self.stopped.is_set():
            return None
        with self._lock:
            i = next(self._numbers)
        if self.limit is not None and i >= self.limit:
            return None
        return track_file(i, prefix=self.prefix)


def upload_track(client, headers: dict[str, str], i: int = 0):
    """POST the ``i``-th track file (a TestClient or httpx client)."""
    name, data = track_file(i)
    return client.post("/api/v1/patrols", files={"file": (name, data)}, headers=headers)


@dataclass
class Answer:
    at: float  # time.monotonic()
    status: int | None  # None: no answer (connection refused, reset, timed out)
    retry_after: str | None = None
    content_type: str | None = None
    body: str = ""


@dataclass
class Outcome:
    name: str
    patrol_id: int | None = None
    created: bool | None = None
    answers: list[Answer] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.patrol_id is not None


class Phone:
    """One field app: its own HTTP connection and token; its answers go to a log shared by all."""

    def __init__(self, base_url: str, token: str, log: list[Answer], *, max_pause_s: float = 0.5):
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self.log, self.max_pause_s = log, max_pause_s

    def upload(self, name: str, data: bytes, *, give_up_at: float) -> Outcome:
        outcome = Outcome(name)
        # One key per file, the same on every retry (the IETF Idempotency-Key header; a service
        # without it ignores the header and recognises the file by its content instead).
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        while time.monotonic() < give_up_at:
            try:
                response = self.client.post(
                    "/api/v1/patrols", files={"file": (name, data, "application/gpx+xml")}, headers=headers
                )
            except httpx.TransportError as exc:
                self._note(outcome, Answer(time.monotonic(), None, body=type(exc).__name__))
                time.sleep(self.max_pause_s)
                continue
            answer = Answer(
                time.monotonic(),
                response.status_code,
                response.headers.get("retry-after"),
                response.headers.get("content-type"),
                response.text[:500],
            )
            self._note(outcome, answer)
            if response.status_code in (200, 201):
                body = response.json()
                outcome.patrol_id, outcome.created = body["id"], body["created"]
                return outcome
            if response.status_code != 503:
                return outcome  # a refusal: retrying the same request would not help
            wait = float(answer.retry_after) if (answer.retry_after or "").isdigit() else 1.0
            time.sleep(min(wait, self.max_pause_s))
        return outcome

    def _note(self, outcome: Outcome, answer: Answer) -> None:
        outcome.answers.append(answer)
        self.log.append(answer)  # list.append is atomic: phones in threads share one log

    def close(self) -> None:
        self.client.close()


def sign_in(base_url: str, username: str, password: str = PASSWORD) -> str:
    response = httpx.post(
        base_url + "/api/v1/auth/token", data={"username": username, "password": password}, timeout=30
    )
    response.raise_for_status()
    return response.json()["access_token"]


class Crowd:
    """``phones`` phones in threads, each uploading the next file from ``files`` until it is
    acknowledged, then the next, until ``files`` is stopped (see :meth:`finish`)."""

    def __init__(self, base_url: str, token: str, phones: int, files: TrackFiles, **phone_options):
        self.log: list[Answer] = []
        self.outcomes: list[Outcome] = []
        self.files = files
        self._phones = [Phone(base_url, token, self.log, **phone_options) for _ in range(phones)]
        self._threads = [threading.Thread(target=self._run, args=(p,), daemon=True) for p in self._phones]

    def start(self) -> Crowd:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self, phone: Phone, give_up_s: float = 60) -> None:
        while (file := self.files.next()) is not None:
            self.outcomes.append(phone.upload(*file, give_up_at=time.monotonic() + give_up_s))

    def finish(self, timeout_s: float = 90) -> None:
        """No new files; wait for the uploads under way to be acknowledged (or given up)."""
        self.files.stopped.set()
        self.join(timeout_s)

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def join(self, timeout_s: float = 90) -> None:
        """Wait until the files run out (or :meth:`finish` was called)."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for phone in self._phones:
            phone.close()

    def acknowledged(self) -> dict[str, int]:
        return {o.name: o.patrol_id for o in self.outcomes if o.acknowledged}

    def unacknowledged(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.acknowledged]


class HealthProbe:
    """Asks GET /api/v1/health every ``interval_s`` in a thread and logs every answer, to see when
    the service stopped and started serving."""

    def __init__(self, base_url: str, interval_s: float = 0.1):
        self.url, self.interval_s = base_url + "/api/v1/health", interval_s
        self.log: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> HealthProbe:
        self._thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    r = client.get(self.url)
                    answer = Answer(
                        time.monotonic(), r.status_code, r.headers.get("retry-after"),
                        r.headers.get("content-type"), r.text[:500],
                    )  # fmt: skip
                except httpx.TransportError as exc:
                    answer = Answer(time.monotonic(), None, body=type(exc).__name__)
                self.log.append(answer)
                self._stop.wait(self.interval_s)

    def serving_again_after(self, since: float, timeout_s: float = 60) -> float:
        """Seconds from ``since`` to the first 200 answered after it (waits for it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ok = [a.at for a in list(self.log) if a.at >= since and a.status == 200]
            if ok:
                return ok[0] - since
            time.sleep(0.02)
        raise AssertionError(f"the service did not serve again within {timeout_s} s")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
