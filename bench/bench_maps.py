"""Station map for a year of demo data: HTML size, generation time and time to Leaflet's first full
render in headless Chromium, against naive folium on the same data in the same run.

    .venv/bin/python bench/bench_maps.py [--keep] [--runs 3]

Data (SpatiaLite, built once into bench/out/maps-year.sqlite and reused with --keep): a year of
synthetic patrols of the six teams through the real upload pipeline (5 per team-week ≥ 1,500) and
10,000 incidents bulk-loaded as in bench_incidents.py. The map is the whole service (all grids) for
the last 365 days, as an admin sees it.

* ours: ``patrol.map_data.station_map_data`` + ``maps.station.station_map`` + ``to_html``.
* naive folium: the same grids as folium.GeoJson, each patrol's full stored line (every good fix)
  as folium.GeoJson, one folium.Marker (with a tooltip) per incident, folium.plugins.HeatMap.
  Its assets point at the same vendored files (it could not load at all offline otherwise).

Both pages are served by a plain static HTTP server on loopback and opened in Debian's headless
Chromium with the network off; "first full render" is performance.now() two animation frames after
the page's script has added every layer (the hook both pages carry).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import os
import shutil
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import geodata.reference  # noqa: E402,F401  (before any connection loads mod_spatialite)

OUT = ROOT / "bench" / "out"
DB = OUT / "maps-year.sqlite"
INCIDENTS = 10_000
READY_HOOK = (
    "<script>window.addEventListener('load', function () {{ window.mangroveMap = {map};"
    " requestAnimationFrame(function () {{ requestAnimationFrame(function () {{"
    " window.mangroveRenderedAt = performance.now(); }}); }}); }});</script>"
)


def settings_for(db: Path):
    from patrol.settings import AuthSettings, Settings, StorageSettings

    settings = Settings()
    settings.auth = AuthSettings(secret_key="bench-secret-" + "x" * 40)
    settings.storage = StorageSettings(data_dir=db.parent, database_url=f"sqlite:///{db}")
    return settings


def build_year(settings) -> dict:
    """The year of data; seconds taken per step."""
    import bench_incidents as bi

    from patrol import migrate
    from patrol.db import create_db_engine, make_session_factory
    from patrol.demo import load_demo, load_demo_patrols

    if DB.exists():
        DB.unlink()
    engine = create_db_engine(settings=settings)
    migrate.upgrade(engine)
    backend = bi.Backend("spatialite", settings, engine, str(DB), DB.parent)
    timings = {}
    start = time.perf_counter()
    world = bi.setup_world(backend, seed=7)
    world.start_us = world.now_us - 365 * bi.DAY  # the incidents fall in the mapped year
    bi.load_spatialite(backend, bi.incident_chunks(world, INCIDENTS, 5_000, seed=7), {})
    timings["incidents_s"] = time.perf_counter() - start
    start = time.perf_counter()
    with make_session_factory(engine)() as session:
        load_demo(session)
        load_demo_patrols(
            session,
            settings.patrols,
            days=365,
            patrols_per_team_week=5.0,
            incident_settings=settings.incidents,
        )
        session.commit()
    timings["patrols_s"] = time.perf_counter() - start
    engine.dispose()
    return timings


def ours(session, principal, settings, start, end):
    from maps.assets import to_html
    from maps.base import basemap
    from maps.station import station_map
    from patrol.map_data import StationMapQuery, station_map_data

    t0 = time.perf_counter()
    data = station_map_data(session, principal, StationMapQuery(start=start, end=end), settings)
    t1 = time.perf_counter()
    html = to_html(station_map(data, basemap("none"), link="/api/v1/incidents/"), self_contained=False)
    t2 = time.perf_counter()
    return html, t1 - t0, t2 - t1, data


def naive(session, data):
    """Naive folium from the same rows: raw lines, a Marker per incident (timed from the query)."""
    import folium
    import shapely
    from branca.element import Element
    from folium.plugins import HeatMap
    from sqlalchemy import func, select

    from maps.assets import to_html
    from patrol.models import Patrol

    t0 = time.perf_counter()
    ids = [int(i) for i in data.tracks.id]
    rows = session.execute(
        select(Patrol.id, Patrol.team, func.ST_AsBinary(Patrol.geom)).where(Patrol.id.in_(ids))
    ).all()
    minx, miny, maxx, maxy = data.grids.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=11, tiles=None, max_zoom=18)
    m.options.update(max_zoom=18)
    folium.GeoJson(data.grids[["code", "geometry"]].to_json(), name="grids").add_to(m)
    for pid, team, wkb in rows:
        line = shapely.from_wkb(bytes(wkb))
        folium.GeoJson(shapely.to_geojson(line), name=f"patrol {pid}", tooltip=f"{team} #{pid}").add_to(m)
    for r in data.incidents.itertuples():
        folium.Marker([r.lat, r.lon], tooltip=f"#{r.id} {r.category} {r.status}").add_to(m)
    HeatMap(data.incidents[["lat", "lon"]].to_numpy().tolist(), name="heat").add_to(m)
    m.get_root().html.add_child(Element(READY_HOOK.format(map=m.get_name())))
    html = to_html(m, self_contained=False)
    return (
        html,
        time.perf_counter() - t0,
        sum(len(shapely.get_coordinates(shapely.from_wkb(bytes(w)))) for *_, w in rows),
    )


def serve_folder(folder: Path):
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def render_times(url: str, runs: int, timeout_s: float) -> tuple[list[float], list[str]]:
    from utils.browser import chromium, severe, wait_for_render

    times, errors = [], []
    for _ in range(runs):
        driver = chromium()  # a fresh browser each run: nothing cached
        try:
            driver.set_page_load_timeout(timeout_s)
            driver.get(url)
            times.append(wait_for_render(driver, timeout_s) / 1000)
            errors += severe(driver)
            if not times[1:]:
                driver.save_screenshot(str(OUT / (Path(url).stem + "-year.png")))
        finally:
            driver.quit()
    return times, errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="reuse bench/out/maps-year.sqlite if present")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    settings = settings_for(DB)

    from sqlalchemy import func, select

    from patrol.accounts import Principal
    from patrol.db import create_db_engine, make_session_factory
    from patrol.models import Incident, Patrol, User

    if not (args.keep and DB.exists()):
        print("building a year of demo data (once; --keep reuses it) …", flush=True)
        timings = build_year(settings)
        print(f"  incidents {timings['incidents_s']:.1f} s, patrols {timings['patrols_s']:.1f} s")
    engine = create_db_engine(settings=settings)
    sessions = make_session_factory(engine)
    end = datetime.now(UTC)
    start = end - timedelta(days=365)
    with sessions() as session:
        n_patrols = session.scalar(select(func.count(Patrol.id)))
        n_incidents = session.scalar(select(func.count(Incident.id)))
        fixes = session.scalar(select(func.sum(Patrol.fix_count)))
        admin = Principal.of(session.scalar(select(User).where(User.username == "admin")))
        generation = []
        for _ in range(args.runs):
            html, data_s, render_s, data = ours(session, admin, settings, start, end)
            generation.append((data_s, render_s))
        naive_html, naive_s, naive_vertices = naive(session, data)

    site = OUT / "maps-site"
    shutil.rmtree(site, ignore_errors=True)
    (site / "static").mkdir(parents=True)
    shutil.copytree(ROOT / "maps" / "static", site / "static" / "maps")
    (site / "ours.html").write_text(html, encoding="utf-8")
    (site / "naive.html").write_text(naive_html, encoding="utf-8")
    server, base = serve_folder(site)
    ours_times, ours_errors = render_times(base + "/ours.html", args.runs, 60)
    naive_times, naive_errors = render_times(base + "/naive.html", args.runs, 300)
    server.shutdown()

    size, naive_size = len(html.encode()), len(naive_html.encode())
    ours_vertices = int(sum(len(shapely.get_coordinates(g)) for g in data.tracks.geometry))
    from maps.assets import to_html
    from maps.base import basemap
    from maps.station import station_map

    exported = len(to_html(station_map(data, basemap("none")), self_contained=True).encode())
    total = [d + r for d, r in generation]
    import bench_incidents as bi

    print(
        f"\nmachine: {bi.cpu_model()}, {os.cpu_count()} CPUs, {bi.mem_gib():.0f} GiB; {datetime.now(UTC):%Y-%m-%d}"
    )
    print(
        f"data: {n_patrols} patrols ({fixes:,} fixes), {n_incidents:,} incidents in the database; "
        f"on the map: {len(data.grids)} grids, {len(data.tracks)} tracks, {len(data.incidents):,} incidents"
    )
    print(f"{'':24}{'ours':>14}{'naive folium':>16}{'naive/ours':>12}")
    print(f"{'HTML size':24}{size / 1e6:>12.2f}MB{naive_size / 1e6:>14.2f}MB{naive_size / size:>11.1f}×")
    gen = statistics.median(total)
    print(f"{'generation (median)':24}{gen:>13.2f}s{naive_s:>15.2f}s{naive_s / gen:>11.1f}×")
    print(
        f"{'  of which query':24}{statistics.median(d for d, _ in generation):>13.2f}s"
        f"\n{'  of which render':24}{statistics.median(r for _, r in generation):>13.2f}s"
    )
    o, n = statistics.median(ours_times), statistics.median(naive_times)
    print(f"{'first full render (med)':24}{o:>13.2f}s{n:>15.2f}s{n / o:>11.1f}×")
    print(
        f"  ours runs: {', '.join(f'{t:.2f}' for t in ours_times)} s; naive runs: {', '.join(f'{t:.2f}' for t in naive_times)} s"
    )
    print(
        f"  track vertices: naive {naive_vertices:,}; ours {ours_vertices:,} (tolerance {data.track_tolerance_m:g} m)"
    )
    print(f"  exported (self-contained, libraries inlined): {exported / 1e6:.2f} MB")
    print(
        f"  served by the service, gzip (MapCompression): {len(gzip.compress(html.encode(), 6)) / 1e6:.2f} MB; "
        f"naive gzip {len(gzip.compress(naive_html.encode(), 6)) / 1e6:.2f} MB"
    )
    print(f"  SEVERE console messages: ours {len(ours_errors)}, naive {len(naive_errors)}")
    verdict = [
        ("HTML ≤ 5 MB", size <= 5e6),
        ("generated ≤ 3 s", gen <= 3),
        ("first full render ≤ 3 s", o <= 3),
        ("≥ 1,500 patrols and ≥ 10,000 incidents", n_patrols >= 1500 and n_incidents >= 10_000),
    ]
    for name, ok in verdict:
        print(f"  {name}: {'met' if ok else 'NOT met'}")
    engine.dispose()


if __name__ == "__main__":
    main()
