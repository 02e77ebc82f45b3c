"""A real HTTP server (uvicorn) for the app under test, in a thread of the test process.

The test client calls the app directly and reads every request body whole before the app sees it;
streaming bodies, concurrent requests and clients that go away need a real server.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from contextlib import contextmanager

import httpx
import uvicorn

from utils.factories import PASSWORD


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app):
    """Serve ``app`` on a free local port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class CountingApp:
    """Wraps an ASGI app and counts the request body bytes the server hands it: what the service
    really read from the network."""

    def __init__(self, app):
        self.app = app
        self.body_bytes = 0

    async def __call__(self, scope, receive, send):
        async def counted():
            message = await receive()
            if message["type"] == "http.request":
                self.body_bytes += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


def page_session(base: str, username: str) -> str:
    """Sign in through the login page of a served app; the Cookie header of that browser session."""
    with httpx.Client(base_url=base) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text).group(1)
        signed_in = browser.post(
            "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
        )
        assert signed_in.status_code in (200, 303), signed_in.text
        return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
