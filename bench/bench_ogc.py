"""OGC API – Features paging at 1,000,000 incidents: our service beside developmentseed's tipg, GDAL
reading everything through the paging, and a GeoPackage export of all incidents (issue 15, bench).

    .venv/bin/python bench/bench_ogc.py [--incidents 1000000] [--pages 50] [--warmup 5]
                                        [--tipg-python /tmp/tipg-venv/bin/python] [--profile] [--record]

A throw-away PostGIS database ``mangrove_bench_<random>`` on postgres@127.0.0.1:5432 (dropped at the
end) is migrated and loaded with bench_incidents' own loader (its users include ``bench-admin`` and
``bench-officer``, an enforcement officer of GD-LJ, Lianjiang, whose visibility rule is not trivial).
Then, one after the other (2 cores: never at once):

1. our service (``python -m api.cli serve`` in a child process, tests/utils/service.Service) and tipg
   (``uvicorn tipg.main:app`` from its own virtualenv, created with pip at ``--tipg-python``'s place if
   missing; never in the project's venv) serve the same ``incidents`` table. After ``--warmup`` pages,
   the first ``--pages`` pages of 1,000 ordered by id are read by ``offset`` and again by following
   ``next`` links: features/s and p50/p95 per page, for ours as the admin, ours as the officer, tipg.
2. GDAL's OAPIF driver (pyogrio, in this process) reads all incidents from our service as the admin
   (PAGE_SIZE 1000): total time, and the service's peak RSS (VmHWM reset before, children included).
3. ``GET /api/v1/exports/gpkg?layers=incidents`` as the admin, streamed to a file: time, size, peak RSS.

``--profile`` runs cProfile on a direct ``read_items`` call (the officer's page at offset 0 and at the
last measured offset) and times the page's two statements (count, rows) apart.
``--record`` appends the printed figures to bench/RESULTS.md with the date and the command.
Goal: at least tipg's features/s with our visibility rules applied; GDAL's read with the service's
peak RSS ≤ 500 MB.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import text

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))  # this checkout's code, not the venv's editable install
import bench_incidents as loader  # noqa: E402  (its loader, users and helpers; imports pyogrio first)
from utils.service import Service, free_port  # noqa: E402

PAGE = 1000
RSS_GOAL_MB = 500
GEOJSON = "application/geo+json"


def say(lines: list[str], line: str = "") -> None:
    print(line, flush=True)
    lines.append(line)


# --- the two servers -------------------------------------------------------------------------------


def ensure_tipg(python: Path) -> None:
    """tipg lives in its own virtualenv, never in the project's."""
    if python.exists():
        return
    venv = python.parent.parent
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "tipg", "uvicorn"], check=True)


class Tipg:
    def __init__(self, python: Path, database_url: str, log: Path):
        self.python, self.database_url, self.log_path = python, database_url, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Tipg:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TIPG_", "MANGROVE_"))}
        env |= {
            "DATABASE_URL": self.database_url,
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_DB_TABLES": '["public.incidents"]',  # tipg matches schema.table
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.python), "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tempfile.gettempdir(),
            )  # fmt: skip
        import httpx

        began = time.monotonic()
        while time.monotonic() - began < 120:
            if self.process.poll() is not None:
                raise RuntimeError(f"tipg exited: {self.log_path.read_text(errors='replace')}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("tipg did not serve within 120 s")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


def tipg_version(python: Path) -> str:
    out = subprocess.run([str(python), "-c", "import tipg; print(tipg.__version__)"],
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip() or "?"


# --- memory of a process and its children ----------------------------------------------------------


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found + [g for c in found for g in children(c)]


class PeakRss:
    """The service's peak RSS over a block: its own VmHWM (reset at the start) or, if larger, the
    largest sum of its and its children's VmRSS seen by polling every 50 ms."""

    def __init__(self, pid: int):
        self.pid, self.polled_kb, self._stop = pid, 0, threading.Event()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                total = sum(status_kb(p, "VmRSS") for p in [self.pid, *children(self.pid)])
            except OSError:
                total = 0
            self.polled_kb = max(self.polled_kb, total)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM back to the current RSS
        self.start_mb = status_kb(self.pid, "VmRSS") / 1024
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(status_kb(self.pid, "VmHWM"), self.polled_kb) / 1024


# --- paging ----------------------------------------------------------------------------------------


class Pages:
    """Page times and feature counts of one way of paging through one server as one caller."""

    def __init__(self, label: str):
        self.label, self.times, self.counts = label, [], []

    def line(self) -> str:
        ms = np.asarray(self.times) * 1000
        rate = sum(self.counts) / sum(self.times)
        return (f"  {self.label:<34} {len(self.times):>4} pages {sum(self.counts):>9,} features "
                f"{rate:>9,.0f} features/s  p50 {np.percentile(ms, 50):7.1f}  p95 {np.percentile(ms, 95):7.1f} ms")  # fmt: skip

    @property
    def rate(self) -> float:
        return sum(self.counts) / sum(self.times)


def get_page(client, url: str, params=None) -> tuple[float, dict]:
    start = time.perf_counter()
    r = client.get(url, params=params)
    body = r.json()  # parsing is part of a client's cost, on both servers alike
    elapsed = time.perf_counter() - start
    assert r.status_code == 200, (url, r.status_code, r.text[:500])
    return elapsed, body


def next_link(body: dict) -> str | None:
    return next((link["href"] for link in body.get("links", []) if link.get("rel") == "next"), None)


def page_through(client, items: str, extra: dict, label: str, pages: int, warmup: int) -> list[Pages]:
    for k in range(warmup):
        get_page(client, items, {"limit": PAGE, "offset": k * PAGE, **extra})
    by_offset, by_next = Pages(f"{label}, by offset"), Pages(f"{label}, by next")
    first_ids = []
    for k in range(pages):
        elapsed, body = get_page(client, items, {"limit": PAGE, "offset": k * PAGE, **extra})
        features = body["features"]
        if k == 0:
            first_ids = [f["id"] for f in features[:3]]
        by_offset.times.append(elapsed)
        by_offset.counts.append(len(features))
        if len(features) < PAGE:
            break
    elapsed, body = get_page(client, items, {"limit": PAGE, **extra})
    by_next.times.append(elapsed)
    by_next.counts.append(len(body["features"]))
    while len(by_next.times) < pages and (href := next_link(body)):
        elapsed, body = get_page(client, href)
        by_next.times.append(elapsed)
        by_next.counts.append(len(body["features"]))
    ids = [int(i) for i in first_ids]
    assert ids == sorted(ids), f"{label}: not in id order: {ids}"
    return [by_offset, by_next]


# --- the parts -------------------------------------------------------------------------------------


def tokens_for(service: Service) -> dict[str, str]:
    import httpx

    tokens = {}
    for who in ("admin", "officer"):
        r = httpx.post(service.url + "/api/v1/auth/token",
                       data={"username": f"bench-{who}", "password": loader.PASSWORD}, timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        tokens[who] = r.json()["access_token"]
    return tokens


def bench_paging(service: Service, tokens: dict, tipg_python: Path, database_url: str, args, out) -> dict:
    import httpx

    figures: dict[str, Pages] = {}
    for who in ("admin", "officer"):
        headers = {"Authorization": f"Bearer {tokens[who]}", "Accept": GEOJSON}
        with httpx.Client(base_url=service.url, headers=headers, timeout=300, trust_env=False) as client:
            for p in page_through(client, "/ogc/collections/incidents/items", {}, f"ours as {who}",
                                  args.pages, args.warmup):  # fmt: skip
                figures[p.label] = p
                say(out, p.line())
    with Tipg(tipg_python, database_url, service.data_dir / "tipg.log") as tipg:
        with httpx.Client(
            base_url=tipg.url, headers={"Accept": GEOJSON}, timeout=300, trust_env=False
        ) as client:
            for p in page_through(client, "/collections/public.incidents/items", {"sortby": "id"}, "tipg",
                                  args.pages, args.warmup):  # fmt: skip
                figures[p.label] = p
                say(out, p.line())
    return figures


def bench_gdal(service: Service, token: str, expected: int, out) -> tuple[float, float, int]:
    import pyogrio

    # GDAL_HTTP_HEADERS is not sent: the OAPIF driver passes its own HEADERS (Accept), which replace
    # it (GDAL 3.12.4). Bearer auth (GDAL >= 3.9) or GDAL_HTTP_HEADER_FILE do reach the server.
    options = {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token, "GDAL_HTTP_TIMEOUT": "600"}
    pyogrio.set_gdal_config_options(options)
    try:
        with PeakRss(service.process.pid) as rss:
            start = time.perf_counter()
            # As strings: pyogrio 0.13 turning GDAL's datetimes into Python ones fails on some of
            # ours ("microsecond must be in 0..999999").
            _, _, geometry, _ = pyogrio.raw.read(f"OAPIF:{service.url}/ogc", layer="incidents",
                                                 datetime_as_string=True, PAGE_SIZE=str(PAGE))  # fmt: skip
            elapsed = time.perf_counter() - start
    finally:
        pyogrio.set_gdal_config_options(dict.fromkeys(options))
    n = len(geometry)
    say(out, f"  GDAL OAPIF (pyogrio.raw.read, PAGE_SIZE {PAGE}) as admin: {n:,} features in {elapsed:.1f} s "
        f"({n / elapsed:,.0f} features/s); service peak RSS {rss.peak_mb:,.0f} MB "
        f"(at start {rss.start_mb:,.0f} MB; goal <= {RSS_GOAL_MB}: {'met' if rss.peak_mb <= RSS_GOAL_MB else 'NOT met'})")  # fmt: skip
    if n != expected:
        say(out, f"  !! GDAL read {n:,} features, the table holds {expected:,}")
    return elapsed, rss.peak_mb, n


def bench_export(service: Service, token: str, out) -> None:
    import httpx

    folder = Path(tempfile.mkdtemp(prefix="bench-ogc-export-"))
    try:
        target = folder / "incidents.gpkg"
        with PeakRss(service.process.pid) as rss, httpx.Client(timeout=3600, trust_env=False) as client:
            start = time.perf_counter()
            with client.stream("GET", service.url + "/api/v1/exports/gpkg", params={"layers": "incidents"},
                               headers={"Authorization": f"Bearer {token}"}) as r:  # fmt: skip
                assert r.status_code == 200, r.read()[:500]
                first = None
                with target.open("wb") as f:
                    for chunk in r.iter_bytes(1 << 20):
                        first = first or time.perf_counter()
                        f.write(chunk)
            elapsed = time.perf_counter() - start
        import pyogrio

        n = pyogrio.read_info(target, layer="incidents")["features"]
        say(out, f"  GeoPackage export as admin: {n:,} incidents, {elapsed:.1f} s (first byte after "
            f"{first - start:.1f} s), {target.stat().st_size / 1e6:,.0f} MB; service peak RSS {rss.peak_mb:,.0f} MB "
            f"(at start {rss.start_mb:,.0f} MB)")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def profile_read_items(backend, tokens: dict, offsets: list[int], out) -> None:
    """Where a page's time goes, in process: cProfile of read_items, and its two statements timed."""
    from sqlalchemy import event

    from patrol.accounts import principal_for_secret
    from patrol.db import make_session_factory
    from patrol.features.collections import ItemsQuery, read_items

    factory = make_session_factory(backend.engine)
    statements: list[tuple[str, float]] = []

    def before(conn, cursor, statement, params, context, executemany):
        conn.info["t0"] = time.perf_counter()

    def after(conn, cursor, statement, params, context, executemany):
        kind = "count" if statement.lstrip().upper().startswith("SELECT COUNT") else "rows"
        statements.append((kind, time.perf_counter() - conn.info["t0"]))

    with factory() as session:
        principal = principal_for_secret(
            session, tokens["officer"], kind="token", channel="api", address=None
        )
        for offset in offsets:
            q = ItemsQuery(limit=PAGE, offset=offset)
            read_items(session, principal, "incidents", q, backend.settings)  # warm
            event.listen(backend.engine, "before_cursor_execute", before)
            event.listen(backend.engine, "after_cursor_execute", after)
            statements.clear()
            profiler = cProfile.Profile()
            start = time.perf_counter()
            profiler.enable()
            page = read_items(session, principal, "incidents", q, backend.settings)
            profiler.disable()
            total = time.perf_counter() - start
            event.remove(backend.engine, "before_cursor_execute", before)
            event.remove(backend.engine, "after_cursor_execute", after)
            sql = {k: sum(t for kk, t in statements if kk == k) for k in ("count", "rows")}
            say(out, f"  read_items as officer, offset {offset:,}: {total * 1000:.0f} ms for {len(page.ids)} "
                f"features (matched {page.number_matched:,}): count(*) {sql['count'] * 1000:.0f} ms, "
                f"page SQL {sql['rows'] * 1000:.0f} ms, Python {1000 * (total - sum(sql.values())):.0f} ms")  # fmt: skip
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(12)
            print("\n".join(buffer.getvalue().splitlines()[6:26]))


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=50, help="pages of 1,000 measured per figure")
    parser.add_argument("--warmup", type=int, default=5, help="pages read before each figure")
    parser.add_argument("--tipg-python", type=Path, default=Path("/tmp/tipg-venv/bin/python"))
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-gdal", action="store_true")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile read_items in this process")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    import fastapi
    import pyogrio

    from patrol import migrate

    ensure_tipg(args.tipg_python)
    out: list[str] = []
    say(out, f"machine: {loader.cpu_model()}, {os.cpu_count()} vCPU, {loader.mem_gib():.0f} GiB; Python "
        f"{sys.version.split()[0]}, FastAPI {fastapi.__version__}, GDAL {pyogrio.__gdal_version_string__} "
        f"(pyogrio {pyogrio.__version__}), tipg {tipg_version(args.tipg_python)}")  # fmt: skip
    say(out, f"incidents: {args.incidents:,}; page size {PAGE}; {args.pages} pages per figure after "
        f"{args.warmup} warm-up pages; one server at a time")  # fmt: skip
    backend = loader.open_backend("postgis", args.keep)
    try:
        migrate.upgrade(backend.engine)
        say(out, f"  {loader.backend_versions(backend)}")
        world = loader.setup_world(backend, args.seed)
        stats: dict[str, float] = {}
        start = time.perf_counter()
        loader.load_postgis(
            backend, loader.incident_chunks(world, args.incidents, args.chunk, args.seed), stats
        )
        with backend.engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM incidents")).scalar()
        assert n == args.incidents, n
        say(out, f"  loaded {n:,} incidents in {time.perf_counter() - start:.1f} s (bench_incidents' loader)")
        database_url = backend.engine.url.render_as_string(hide_password=False)
        with Service(database_url, backend.folder / "service") as service:
            tokens = tokens_for(service)
            figures = bench_paging(service, tokens, args.tipg_python,
                                   database_url.replace("postgresql+psycopg", "postgresql"), args, out)  # fmt: skip
            for way in ("by offset", "by next"):
                ours = figures[f"ours as officer, {way}"].rate
                tipg = figures[f"tipg, {way}"].rate
                say(out, f"  goal, {way}: ours as officer {ours:,.0f} vs tipg {tipg:,.0f} features/s = "
                    f"{ours / tipg:.2f}x ({'met' if ours >= tipg else 'NOT met'})")  # fmt: skip
            if not args.no_gdal:
                bench_gdal(service, tokens["admin"], n, out)
            if not args.no_export:
                bench_export(service, tokens["admin"], out)
        if args.profile:
            profile_read_items(backend, tokens, [0, (args.pages - 1) * PAGE], out)
    finally:
        backend.engine.dispose()
        if backend.drop:
            backend.drop()
        shutil.rmtree(backend.folder, ignore_errors=True)
    if args.record:
        command = "/work/main/.venv/bin/python bench/bench_ogc.py " + " ".join(sys.argv[1:])
        section = [f"\n## OGC API – Features beside tipg, {args.incidents:,} incidents (issue 15, bench)\n",
                   f"- Command: `{command}` (PostGIS, throw-away database)",
                   f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n", "```", *out, "```"]  # fmt: skip
        with (BENCH / "RESULTS.md").open("a") as f:
            f.write("\n".join(section) + "\n")


if __name__ == "__main__":
    main()
