"""The field app: an installable, offline-first web app for patrol members, served at ``/app/``.

Everything it needs is in ``static/`` (no build step, no CDN): the page, its scripts, the service
worker and the icons, plus Leaflet from the maps' vendored copy. The service worker's cache name is
the hash of every file it keeps, so a new release replaces the old shell in one step and a phone
never runs half of each. The app talks to the service only through the JSON API (bearer token,
``Idempotency-Key`` on every create); this module only serves files.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.deps import Public
from api.security import BASELINE
from patrol.errors import NotFound

STATIC = Path(__file__).parent / "static"
PREFIX = "/app"
LEAFLET = "/static/maps/vendor/leaflet"
# What the service worker keeps for the app to open with no network. Leaflet's marker images are
# not needed: the app draws its markers as circles.
SHELL_FILES = (
    "index.html",
    "app.css",
    "store.js",
    "geo.js",
    "outbox.js",
    "recorder.js",
    "app.js",
    "icons/icon.svg",
    "icons/icon-192.png",
    "icons/icon-512.png",
    "manifest.webmanifest",
)
LEAFLET_FILES = ("leaflet.js", "leaflet.css")

# The app's page: scripts, styles and connections to the service only; photos previewed from
# blob: URLs; map tiles from the service's own /tiles (a station's tile file).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    + "; ".join(f"{k} {v}" for k, v in BASELINE.items())
)
# A worker takes its policy from its own script's response: it fetches from the service only.
WORKER_POLICY = "default-src 'self'; connect-src 'self'; script-src 'self'"
NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@cache
def shell_urls() -> tuple[str, ...]:
    return (
        f"{PREFIX}/",
        *(f"{PREFIX}/{name}" for name in SHELL_FILES if name != "index.html"),
        *(f"{LEAFLET}/{name}" for name in LEAFLET_FILES),
    )


@cache
def shell_version() -> str:
    """A hash of every file in the shell: it names the service worker's cache."""
    digest = hashlib.sha256()
    leaflet_dir = Path(__file__).parents[2] / "maps" / "static" / "vendor" / "leaflet"
    for path in [STATIC / name for name in SHELL_FILES] + [leaflet_dir / n for n in LEAFLET_FILES]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update((STATIC / "sw.js").read_bytes())
    return digest.hexdigest()[:16]


@router.get(PREFIX)
def app_root(_: Public):
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.get(f"{PREFIX}/")
def app_page(_: Public):
    # no-cache: the browser revalidates when online; offline, the service worker answers.
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**NO_CACHE, "Content-Security-Policy": PAGE_POLICY},
    )


@router.get(f"{PREFIX}/sw.js")
def service_worker(_: Public):
    """The worker with its cache name and shell list written in: a changed file changes the
    worker's bytes, which is how a browser learns that there is a new release."""
    source = (STATIC / "sw.js").read_text(encoding="utf-8")
    head = f"const VERSION = {json.dumps(shell_version())};\nconst SHELL = {json.dumps(shell_urls())};\n"
    return Response(
        head + source,
        media_type="text/javascript; charset=utf-8",
        headers={**NO_CACHE, "Content-Security-Policy": WORKER_POLICY},
    )


@router.get(f"{PREFIX}/manifest.webmanifest")
def manifest(_: Public):
    return FileResponse(
        STATIC / "manifest.webmanifest", media_type="application/manifest+json", headers=NO_CACHE
    )


@router.get(PREFIX + "/{name:path}")
def app_file(name: str, _: Public):
    """The shell's other files (scripts, stylesheet, icons); nothing outside the list."""
    if name not in SHELL_FILES or name in ("index.html", "manifest.webmanifest"):
        raise NotFound(f"no such file in the app: {name}")
    media = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".png": "image/png",
        ".svg": "image/svg+xml",
    }[Path(name).suffix]
    return FileResponse(STATIC / name, media_type=media, headers=NO_CACHE)
