"""A weak signal, made on purpose, for the field app's browser tests.

* :class:`SwitchableProxy` stands between the browser and the service: ``up`` forwards, ``down``
  cuts every open connection and refuses new ones — to the browser (page and service worker
  alike) the network is gone, which the DevTools offline emulation alone does not guarantee for
  a service worker's own requests.
* :class:`LoseAnswers` wraps the app: the chosen requests are carried out in full (committed), but
  their answer breaks off after its first byte, as when the signal drops while the answer is on
  its way back.
"""

from __future__ import annotations

import fnmatch
import socket
import threading
from collections import Counter


class SwitchableProxy:
    def __init__(self, target_port: int):
        self.target_port = target_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.is_up = True
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        self.is_up = True

    def down(self) -> None:
        self.is_up = False
        with self._lock:
            live, self._live = list(self._live), set()
        for s in live:
            _close(s)

    def close(self) -> None:
        self._closed = True
        self.down()
        _close(self.sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if not self.is_up:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _close(client)
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._live |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while self.is_up and (data := source.recv(65536)):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                _close(s)
                with self._lock:
                    self._live.discard(s)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


class LoseAnswers:
    """ASGI middleware: the next ``times`` requests matching (method, path pattern) run to the end,
    then their answer is cut after one byte of the body (the connection closes mid-answer)."""

    def __init__(self, app):
        self.app = app
        self.times: Counter[tuple[str, str]] = Counter()
        self.lost: list[tuple[str, str, int]] = []

    def lose_next(self, method: str, path: str, times: int = 1) -> None:
        self.times[(method, path)] += times

    async def __call__(self, scope, receive, send):
        key = next(
            (
                k
                for k, n in self.times.items()
                if n > 0
                and scope["type"] == "http"
                and scope["method"] == k[0]
                and fnmatch.fnmatch(scope["path"], k[1])
            ),
            None,
        )
        if key is None:
            await self.app(scope, receive, send)
            return
        self.times[key] -= 1
        held: list[dict] = []

        async def hold(message):
            held.append(message)

        await self.app(scope, receive, hold)  # the request is carried out and committed
        start = next(m for m in held if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        self.lost.append((scope["method"], scope["path"], start["status"]))
        await send(start)
        await send({"type": "http.response.body", "body": body[:1], "more_body": True})
        raise ConnectionAbortedError("the test cut this answer off")  # uvicorn drops the connection
