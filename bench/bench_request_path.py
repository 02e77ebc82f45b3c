"""The request path: what a request costs above its SQL, on SpatiaLite and PostGIS, in one run.

    .venv/bin/python bench/bench_request_path.py [--backend spatialite|postgis|both] [--rows 100000]
                                                 [--noop 2000] [--pages 600] [--warmup 100]
                                                 [--baseline DIR]

Per backend (a SpatiaLite file in a temporary directory; a throw-away PostGIS database dropped at
the end), with the reference geodata, the users and ``--rows`` incidents bulk-loaded as
bench_incidents.py loads them (its helpers are reused):

1. An authenticated no-op, ``GET /api/v1/auth/me`` with an enforcement officer's bearer token: the
   caller resolved from the server-side session (one query), a tiny JSON body.
2. The first page of incidents, ``GET /api/v1/incidents`` (the default page: newest observed
   first, 100, everything the officer may see), beside its bare SQL: the one statement the service
   emits for it (captured with an engine event, so it carries the officer's visibility filter) run
   with the same parameters on a raw DB-API connection of the same backend and fetched whole.
   API and bare SQL alternate, request by request, so that a shared machine's noise hits both.

Each is measured three ways: in process through the ASGI app (httpx's ASGITransport; no HTTP),
and over a real loopback socket to uvicorn running the same app in a server process of its own
(a keep-alive httpx client in this one), once with uvicorn's pure-Python stack (asyncio loop, h11)
and once with its fast extras (uvloop, httptools) when they are importable. With ``--baseline DIR``
(a checkout of the code before a change, e.g. ``git worktree add DIR COMMIT``) a server runs that
code beside this tree's on the same database, and the two take turns request by request: before
and after in one run, under the same load.
Targets (issue 13): no-op p50 <= 1 ms; first page p95 <= bare SQL p95 + 3 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
# A server process for the baseline runs this file with the baseline's code first on the path.
TREE = Path(os.environ.get("MANGROVE_BENCH_TREE") or BENCH.parent)
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(TREE))

NOOP = "/api/v1/auth/me"
PAGE = "/api/v1/incidents"


def pct(times_s: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.asarray(times_s) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def fmt(times_s: list[float]) -> str:
    p50, p95, p99 = pct(times_s)
    return f"p50 {p50:7.3f}  p95 {p95:7.3f}  p99 {p99:7.3f} ms"


def fast_extras() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools"))


# --- the server process ------------------------------------------------------------------------------


def serve(url: str, folder: str, port: int, loop: str, http: str) -> None:
    """Runs in the server process: the app on ``port`` with the given uvicorn loop and HTTP parser."""
    import uvicorn

    from api.app import create_app
    from patrol.db import create_db_engine

    settings = bench_settings(url, folder)
    app = create_app(settings=settings, engine=create_db_engine(url, settings=settings))
    uvicorn.run(app, host="127.0.0.1", port=port, loop=loop, http=http, log_level="warning", access_log=False)


def bench_settings(url: str, folder: str):
    from patrol.settings import AuthSettings, Settings, StorageSettings

    settings = Settings()
    settings.auth = AuthSettings(secret_key="bench-secret-" + "x" * 40)  # as bench_incidents.py
    settings.storage = StorageSettings(data_dir=folder, database_url=url)
    return settings


class Server:
    """uvicorn with the app in a process of its own, on a free loopback port."""

    def __init__(self, url: str, folder: str, loop: str, http: str, tree: Path | None = None):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        command = [sys.executable, __file__, "--serve", url, folder, str(self.port), loop, http]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "MANGROVE_BENCH_TREE": str(tree or TREE),
        }
        self.process = subprocess.Popen(command, env=env)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError("the uvicorn server process did not start") from None
                time.sleep(0.05)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- measurements --------------------------------------------------------------------------------


class Bare:
    """The first page's statement, as the service emits it for the officer, run on a raw DB-API
    connection and fetched whole."""

    def __init__(self, backend, principal):
        from bench_incidents import Capture, bare_runner

        from patrol.db import make_session_factory
        from patrol.incidents import IncidentQuery, query_incidents

        with Capture(backend.engine) as cap, make_session_factory(backend.engine)() as session:
            self.items, _ = query_incidents(session, principal, IncidentQuery(), backend.settings.incidents)
        main = [st for st in cap.statements if "FROM incidents" in st[0]]
        assert len(main) == 1, cap.statements
        self.statement, self.params = main[0]
        self.run, self.end, self.close = bare_runner(backend)

    def __call__(self) -> float:
        start = time.perf_counter()
        rows = self.run(self.statement, self.params)
        elapsed = time.perf_counter() - start
        self.end()
        assert len(rows) == len(self.items) + 1 or len(rows) == len(self.items)
        return elapsed


def check_page(body: dict, bare: Bare) -> None:
    assert body["numberReturned"] == len(bare.items) == 100, body["numberReturned"]
    assert [f["id"] for f in body["features"]] == [i["id"] for i in bare.items]


def sync_measure(clients: dict, token: str, bare: Bare, args) -> dict[str, dict[str, list[float]]]:
    """Per client (a server): the no-op and the first page with its bare SQL. The servers take
    turns request by request, so that what else the machine does falls on all of them alike."""
    headers = {"Authorization": f"Bearer {token}"}
    out = {name: {"noop": [], "page": [], "sql": []} for name in clients}
    for client in clients.values():
        check_page(client.get(PAGE, headers=headers).json(), bare)
    for i in range(args.warmup + args.noop):
        for name, client in clients.items():
            start = time.perf_counter()
            response = client.get(NOOP, headers=headers)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.text
            if i >= args.warmup:
                out[name]["noop"].append(elapsed)
    for i in range(args.warmup + args.pages):
        for name, client in clients.items():
            start = time.perf_counter()
            response = client.get(PAGE, headers=headers)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.text
            sql = bare()
            if i >= args.warmup:
                out[name]["page"].append(elapsed)
                out[name]["sql"].append(sql)
    return out


async def asgi_measure(app, token: str, bare: Bare, args) -> dict[str, list[float]]:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    out: dict[str, list[float]] = {"noop": [], "page": [], "sql": []}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        check_page((await client.get(PAGE, headers=headers)).json(), bare)
        for i in range(args.warmup + args.noop):
            start = time.perf_counter()
            response = await client.get(NOOP, headers=headers)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.text
            if i >= args.warmup:
                out["noop"].append(elapsed)
        for i in range(args.warmup + args.pages):
            start = time.perf_counter()
            response = await client.get(PAGE, headers=headers)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.text
            sql = bare()
            if i >= args.warmup:
                out["page"].append(elapsed)
                out["sql"].append(sql)
    return out


async def sign_in(app, username: str, password: str) -> str:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        r = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]


def report(label: str, m: dict[str, list[float]]) -> dict:
    noop, page, sql = pct(m["noop"]), pct(m["page"]), pct(m["sql"])
    over50, over95 = page[0] - sql[0], page[1] - sql[1]
    print(f"  {label}")
    print(
        f"    no-op {NOOP:<22} {fmt(m['noop'])}   (target p50 <= 1 ms: {'met' if noop[0] <= 1 else 'NOT met'})"
    )
    print(f"    first page {PAGE:<17} {fmt(m['page'])}")
    print(f"    its bare SQL {'':<15} {fmt(m['sql'])}")
    print(f"    page above SQL: p50 +{over50:.2f} ms, p95 +{over95:.2f} ms; API/SQL p50 {page[0] / sql[0]:.2f}x, "
          f"p95 {page[1] / sql[1]:.2f}x   (target p95 <= SQL p95 + 3 ms: {'met' if over95 <= 3 else 'NOT met'})")  # fmt: skip
    return {"noop": noop, "page": page, "sql": sql, "over95": over95}


def run_backend(name: str, args) -> dict:
    import httpx
    from bench_incidents import (
        PASSWORD,
        backend_versions,
        incident_chunks,
        load_postgis,
        load_spatialite,
        open_backend,
        setup_world,
    )

    from api.app import create_app
    from patrol import migrate
    from patrol.accounts import principal_for_secret
    from patrol.db import make_session_factory

    backend = open_backend(name, keep=False)
    results = {}
    try:
        migrate.upgrade(backend.engine)
        print(f"\n== {name}: {backend.where}; {backend_versions(backend)}")
        world = setup_world(backend, args.seed)
        start = time.perf_counter()
        stats: dict[str, float] = {}
        (load_spatialite if name == "spatialite" else load_postgis)(
            backend, incident_chunks(world, args.rows, min(args.rows, 100_000), args.seed), stats
        )
        print(f"  loaded {args.rows:,} incidents in {time.perf_counter() - start:.1f} s")
        url = backend.engine.url.render_as_string(hide_password=False)

        app = create_app(settings=backend.settings, engine=backend.engine)
        token = asyncio.run(sign_in(app, "bench-officer", PASSWORD))
        with make_session_factory(backend.engine)() as session:
            principal = principal_for_secret(session, token, kind="token", channel="api", address=None)
        bare = Bare(backend, principal)
        try:
            results["in process (ASGI)"] = report(
                "in process, httpx ASGITransport (no HTTP)", asyncio.run(asgi_measure(app, token, bare, args))
            )
            stacks = [("asyncio", "h11")]
            if fast_extras():
                stacks.append(("uvloop", "httptools"))
            else:
                print("  (uvloop/httptools not importable: uvicorn's fast extras not measured)")
            trees = {"": None}
            if args.baseline:
                trees = {"baseline, ": Path(args.baseline).resolve(), "this tree, ": None}
            for loop, http in stacks:
                servers = {k: Server(url, str(backend.folder), loop, http, tree) for k, tree in trees.items()}
                clients = {
                    k: httpx.Client(base_url=v.base, trust_env=False, timeout=60) for k, v in servers.items()
                }
                try:
                    measured = sync_measure(clients, token, bare, args)
                finally:
                    for k in servers:
                        clients[k].close()
                        servers[k].close()
                for k, m in measured.items():
                    label = f"{k}uvicorn {loop}+{http}, separate process, keep-alive socket"
                    results[f"{k}uvicorn {loop}+{http}"] = report(label, m)
        finally:
            bare.close()
    finally:
        backend.engine.dispose()
        if backend.drop:
            backend.drop()
        shutil.rmtree(backend.folder, ignore_errors=True)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        url, folder, port, loop, http = sys.argv[2:7]
        serve(url, folder, int(port), loop, http)
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("spatialite", "postgis", "both"), default="both")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--noop", type=int, default=2000, help="measured no-op requests per way")
    parser.add_argument("--pages", type=int, default=600, help="measured first-page requests per way")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="a checkout of the code before (git worktree add DIR COMMIT): its server takes turns "
        "with this tree's, request by request, against the same database",
    )
    args = parser.parse_args()

    import fastapi
    import sqlalchemy
    import uvicorn
    from bench_incidents import cpu_model, mem_gib

    print(f"machine: {platform.machine()}, {cpu_model()}, {os.cpu_count()} vCPU, {mem_gib():.0f} GiB; "
          f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, FastAPI {fastapi.__version__}, "
          f"uvicorn {uvicorn.__version__}; fast extras importable: {fast_extras()}")  # fmt: skip
    print(f"incidents: {args.rows:,}; {args.noop} no-op and {args.pages} first-page requests per way after "
          f"{args.warmup} warm-up; caller: an enforcement officer of GD-LJ with a bearer token")  # fmt: skip
    backends = ("spatialite", "postgis") if args.backend == "both" else (args.backend,)
    results = {name: run_backend(name, args) for name in backends}
    print("\nsummary (ms)")
    for name, ways in results.items():
        for way, r in ways.items():
            print(f"  {name:<10} {way:<36} no-op p50 {r['noop'][0]:6.3f}; first page p95 {r['page'][1]:7.2f} "
                  f"vs SQL p95 {r['sql'][1]:6.2f}: +{r['over95']:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
