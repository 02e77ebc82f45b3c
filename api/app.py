"""The FastAPI application: routers, error mapping, browser sessions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware

from api import desk, fieldapp, map_pages, ogc, openapi, problems, security, web
from api.deps import Public
from api.limits import RequestLimits
from api.routes import (
    analysis,
    assessment,
    audit,
    auth,
    briefing,
    evidence,
    exports,
    grids,
    incidents,
    meta,
    patrols,
    tiles,
    users,
)
from maps.assets import STATIC_DIR
from patrol.db import create_db_engine, make_session_factory
from patrol.settings import Settings, get_settings

PAGES_STATIC_DIR = Path(__file__).parent / "static"
SWAGGER_UI_DIR = Path(fastapi_offline.__file__).parent / "static"
DESCRIPTION = """
Grid patrol, incidents and joint enforcement for the Lianjiang (Guangdong) – Hepu (Guangxi)
mangroves. Geometry is GeoJSON (RFC 7946, WGS84 lon/lat); errors are problem+json (RFC 9457).
Sign in with the OAuth2 password flow at `/api/v1/auth/token` and send `Authorization: Bearer …`.
"""


class SlowLinkCompression:
    """gzip for the map pages and their libraries: megabytes of very compressible JSON and script
    (a year's station map: 1.5 MB → 0.4 MB) over a field station's slow link; and for the field
    app's shell, which a phone fetches over a weak signal. The API's responses are left as they
    are."""

    PREFIXES = ("/maps/", "/static/maps/", "/app/")

    def __init__(self, app):
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(self.PREFIXES):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or create_db_engine(settings=settings)
    # /docs is served with Swagger UI from the package, not a CDN: field stations may be offline.
    app = FastAPI(
        title="Mangrove Patrol", version="0.1.0", description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_session_factory(engine)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key(),
        session_cookie="mangrove_session",
        max_age=int(timedelta(minutes=settings.auth.session_ttl_minutes).total_seconds()),
        same_site="lax",
        https_only=settings.auth.secure_cookies,
    )
    app.add_middleware(SlowLinkCompression)
    # Outermost: bodies are capped before anything else reads them.
    app.add_middleware(RequestLimits, settings=settings)
    problems.install(app)
    security.install(app)
    openapi.install(app)
    for router in (
        meta.router,
        auth.router,
        grids.router,
        patrols.router,
        incidents.router,
        users.router,
        audit.router,
        analysis.router,
        assessment.router,
        tiles.router,
        briefing.router,
        exports.router,
        evidence.router,
        web.router,
        map_pages.router,
        desk.router,
        fieldapp.router,
        ogc.router,
    ):
        app.include_router(router)
    _offline_docs(app)
    # Leaflet and the map builders, for maps served by the service (exports inline them).
    app.mount("/static/maps", StaticFiles(directory=STATIC_DIR), name="maps")
    # The pages' stylesheet and scripts: files, so that their CSP needs no 'unsafe-inline'.
    app.mount("/static/app", StaticFiles(directory=PAGES_STATIC_DIR), name="pages")
    return app


def _offline_docs(app: FastAPI) -> None:
    # Swagger UI 5 (fastapi-offline's copy): swagger-ui-bundle's 4.x cannot read OpenAPI 3.1.
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_UI_DIR), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request, _: Public):
        return _inline_scripts_allowed(get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Mangrove Patrol API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon.png",
        ), style_inline=True)  # fmt: skip

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect(_: Public):
        return _inline_scripts_allowed(get_swagger_ui_oauth2_redirect_html())


def _inline_scripts_allowed(page: HTMLResponse, *, style_inline: bool = False) -> HTMLResponse:
    """Swagger UI's pages start it with inline scripts (allowed by hash); its React views set
    inline styles."""
    page.headers["Content-Security-Policy"] = security.inline_script_policy(
        page.body.decode(), style_inline=style_inline
    )
    return page
