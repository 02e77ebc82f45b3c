"""The field app on a cheap phone over a weak signal, beside today's upload and report pages, in
Debian's headless Chromium driven through the DevTools protocol.

    .venv/bin/python bench/bench_fieldapp.py [--fixes 14400] [--runs 3]

Figures, all measured in this run:

* transferred size of what a first visit loads (the browser's own Resource Timing
  ``transferSize``: compressed bodies plus headers; map tiles excluded — the app has none until a
  station adds a tile file);
* time to interactive on a throttled profile — CPU slowed 4× and Chrome DevTools' "Slow 3G" preset
  (2,000 ms request latency, 50,000 B/s down and up) — for a first visit with an empty cache, and,
  for the app, a visit with no network at all served by its service worker. Interactive: the
  app's first view is drawn with its handlers attached (``window.mangroveAppReady``); for the
  server-rendered pages, their load event (they have nothing to wait for after it);
* a 4-hour recording at 1 Hz (``--fixes``) written to IndexedDB one fix per transaction, exactly
  as the recorder does (median, p95 and total, unthrottled and with the CPU slowed 4×);
* that recording's GPX sent as one upload request (status, size, time, fixes stored), and the same
  file through today's upload page's form.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import geodata.reference  # noqa: E402,F401  (before any connection loads mod_spatialite)

# Chrome DevTools' "Slow 3G" preset (its latency is per request, 5 × a 400 ms round trip).
SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 50_000, "uploadThroughput": 50_000}
# Lighthouse's slow 3G: a 400 ms round trip, 400 kbit/s.
RTT_400 = {"offline": False, "latency": 400, "downloadThroughput": 50_000, "uploadThroughput": 50_000}
PROFILES = {"DevTools Slow 3G": SLOW_3G, "Lighthouse slow 3G": RTT_400}
FAST = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
OFFLINE = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
PASSWORD = "correct horse battery"


def world(tmp: Path):
    from utils.factories import add_users

    from api.app import create_app
    from patrol import migrate
    from patrol.db import create_db_engine, make_session_factory
    from patrol.reference import load_reference
    from patrol.settings import AuthSettings, Settings, StorageSettings

    settings = Settings()
    settings.auth = AuthSettings(secret_key="bench-secret-" + "x" * 40)
    settings.storage = StorageSettings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'bench.sqlite'}")
    engine = create_db_engine(settings=settings)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        load_reference(session)
        session.commit()
    add_users(sessions, "member")
    return create_app(settings=settings, engine=engine), sessions


def browser():
    from utils.browser import chromium

    driver = chromium(390, 844)
    driver.set_script_timeout(600)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
    return driver


def throttle(driver, network: dict, cpu: float) -> None:
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", network)
    driver.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": cpu})


def transferred(driver) -> int:
    return int(
        driver.execute_script(
            "var nav = performance.getEntriesByType('navigation')[0];"
            "return (nav ? nav.transferSize : 0) + performance.getEntriesByType('resource')"
            ".reduce(function (n, r) { return n + r.transferSize; }, 0);"
        )
    )


def wait_for(driver, script: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out: {script}")


def app_ready(driver) -> float:
    return float(wait_for(driver, "return window.mangroveAppReady || null"))


def page_loaded(driver) -> float:
    # performance.now() at the end of the load event, relative to navigation start.
    return float(
        wait_for(
            driver,
            "var n = performance.getEntriesByType('navigation')[0]; return n && n.loadEventEnd > 0 ? n.loadEventEnd : null",
        )
    )


def cookie_sign_in(driver, base: str) -> None:
    from utils.browser import sign_in

    sign_in(driver, base, "member", PASSWORD)


def app_sign_in(driver, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/app/")
    wait_for(driver, "return document.getElementById('view-signin').offsetParent !== null")
    driver.find_element(By.ID, "username").send_keys("member")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#signin button[type=submit]").click()
    wait_for(
        driver,
        "return !!navigator.serviceWorker.controller && document.getElementById('view-patrol').offsetParent !== null",
    )
    wait_for(driver, "return document.querySelectorAll('#category option').length > 1")


def first_visits(base: str, runs: int, network: dict) -> dict:
    """Cold first visits (a new browser each: no cache, no worker), CPU 4× slower and ``network``."""
    out = {}
    for name, path, signed_in in (
        ("field app /app/", "/app/", False),
        ("upload page /patrols/upload", "/patrols/upload", True),
        ("report page /incidents/report", "/incidents/report", True),
    ):
        times, sizes = [], []
        for _ in range(runs):
            driver = browser()
            try:
                if signed_in:
                    cookie_sign_in(driver, base)  # unthrottled; then the page itself, cold
                    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
                throttle(driver, network, 4)
                driver.get(base + path)
                times.append(app_ready(driver) if path == "/app/" else page_loaded(driver))
                time.sleep(0.5)
                sizes.append(transferred(driver))
            finally:
                driver.quit()
        out[name] = {"tti_ms": statistics.median(times), "bytes": statistics.median(sizes), "runs": times}
    return out


def app_repeat_visits(base: str, runs: int) -> dict:
    """Signed in once online; then opened again, CPU 4× slower, on each profile and offline."""
    driver = browser()
    try:
        app_sign_in(driver, base)
        shell = driver.execute_script(
            "return caches.keys().then(function (k) { return Promise.all(k.filter(function (n) { return n.indexOf('mp-shell-') === 0; })"
            ".map(function (n) { return caches.open(n).then(function (c) { return c.keys(); }); })); })"
            ".then(function (lists) { return [].concat.apply([], lists).map(function (r) { return r.url; }); })"
        )
        result = {"cached_shell_files": len(shell)}
        for label, network in [*PROFILES.items(), ("offline", OFFLINE)]:
            times = []
            for _ in range(runs):
                throttle(driver, network, 4)
                driver.get(base + "/app/")
                times.append(app_ready(driver))
                throttle(driver, FAST, 1)
            result[label] = {"tti_ms": statistics.median(times), "runs": times}
        return result
    finally:
        driver.quit()


RECORD = """
var done = arguments[arguments.length - 1], n = arguments[0];
var rec = MP.newId(), times = new Float64Array(n), t0 = Date.now() - n * 1000;
// A 4-hour walk at 1.2 m/s, to and fro along a grid's shore, one fix a second.
var lon0 = 109.772, lat0 = 21.566, step = 1.2 / 111320;
(async function () {
  var start = performance.now();
  for (var i = 0; i < n; i++) {
    var leg = Math.floor(i / 600), k = i % 600, dir = leg % 2 ? -1 : 1;
    var along = (leg % 2 ? 600 - k : k) * step;
    var fix = { rec: rec, seq: i + 1, segment: 0, t: t0 + i * 1000, lon: lon0 + along * 0.8, lat: lat0 + along * 0.6 + (leg % 7) * 2e-5, acc: 5, alt: 1.5, speed: 1.2 };
    var a = performance.now();
    await MP.store.addFix(fix);
    times[i] = performance.now() - a;
  }
  var total = performance.now() - start;
  var sorted = Array.from(times).sort(function (a, b) { return a - b; });
  var fixes = await MP.store.fixes(rec);
  var gpx = MP.geo.gpx("bench", fixes);
  done({ rec: rec, median: sorted[Math.floor(n / 2)], p95: sorted[Math.floor(n * 0.95)], max: sorted[n - 1], total: total, stored: fixes.length, gpx: gpx });
})().catch(function (e) { done({ error: String(e) }); });
"""

UPLOAD = """
var done = arguments[arguments.length - 1], gpx = arguments[0];
MP.store.get("session").then(async function (s) {
  var form = new FormData();
  form.append("file", new Blob([gpx], { type: "application/gpx+xml" }), "four-hours.gpx");
  form.append("transport", "foot");
  var a = performance.now();
  var r = await fetch("/api/v1/patrols", { method: "POST", body: form, headers: { Authorization: "Bearer " + s.token, "Idempotency-Key": MP.newId() } });
  var body = await r.json();
  done({ status: r.status, ms: performance.now() - a, fixes: body.fixes, id: body.id, requests: 1 });
}).catch(function (e) { done({ error: String(e) }); });
"""


def shell_size(base: str) -> tuple[int, int, int]:
    """(files, bytes as sent gzip-compressed, bytes uncompressed) of everything the worker keeps."""
    import httpx

    from api.fieldapp import shell_urls

    sent = raw = 0
    with httpx.Client(base_url=base, headers={"Accept-Encoding": "gzip"}) as client:
        for url in shell_urls():
            with client.stream("GET", url) as response:
                body = response.read()
                sent += response.num_bytes_downloaded
                raw += len(body)
    return len(shell_urls()), sent, raw


def recording(base: str, fixes: int) -> dict:
    driver = browser()
    try:
        app_sign_in(driver, base)
        out = {}
        for cpu in (1, 4):
            throttle(driver, FAST, cpu)
            result = driver.execute_async_script(RECORD, fixes)
            if "error" in result:
                raise RuntimeError(result["error"])
            out[f"cpu {cpu}x"] = {k: result[k] for k in ("median", "p95", "max", "total", "stored")}
            gpx = result["gpx"]
        throttle(driver, FAST, 1)
        upload = driver.execute_async_script(UPLOAD, gpx)
        if "error" in upload:
            raise RuntimeError(upload["error"])
        out["upload"] = upload | {"gpx_bytes": len(gpx.encode())}
        return out, gpx
    finally:
        driver.quit()


def page_upload(base: str, gpx: str) -> dict:
    """The same file through today's upload page (its form, a real browser)."""
    from selenium.webdriver.common.by import By

    driver = browser()
    try:
        cookie_sign_in(driver, base)
        driver.get(base + "/patrols/upload")
        with tempfile.NamedTemporaryFile("w", suffix=".gpx", delete=False) as f:
            f.write(
                gpx.replace("<name>bench</name>", "<name>bench via page</name>").replace(
                    ":00.000Z", ":00.500Z"
                )
            )
        driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(f.name)
        driver.execute_script("window.benchOldPage = true")
        a = time.monotonic()
        driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        wait_for(driver, "return !window.benchOldPage && document.readyState === 'complete'")
        return {
            "ms": (time.monotonic() - a) * 1000,
            "requests": 1,
            "answer": driver.find_element(By.TAG_NAME, "main").text[:120],
        }
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixes", type=int, default=14_400)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from utils.browser import serving

    with tempfile.TemporaryDirectory() as tmp:
        app, sessions = world(Path(tmp))
        with serving(app) as base:
            shell = shell_size(base)
            first = {label: first_visits(base, args.runs, network) for label, network in PROFILES.items()}
            repeat = app_repeat_visits(base, args.runs)
            record, gpx = recording(base, args.fixes)
            page = page_upload(base, gpx)
    print(
        f"\nThe whole shell the service worker keeps: {shell[0]} files, {shell[1] / 1024:.1f} KB sent gzip-compressed ({shell[2] / 1024:.1f} KB uncompressed); no tiles"
    )
    for label, results in first.items():
        net = PROFILES[label]
        print(
            f"\nFirst visit, empty cache, CPU 4x slower + {label} ({net['latency']} ms latency, {net['downloadThroughput']:,} B/s):"
        )
        for name, r in results.items():
            print(
                f"  {name:32s} transferred {r['bytes'] / 1024:7.1f} KB   interactive {r['tti_ms'] / 1000:5.2f} s   runs {[round(t) for t in r['runs']]}"
            )
    print("\nField app opened again after one visit (the service worker's cache), CPU 4x slower:")
    for name, r in repeat.items():
        if isinstance(r, dict):
            print(
                f"  {name:24s} interactive {r['tti_ms'] / 1000:5.2f} s   runs {[round(t) for t in r['runs']]}"
            )
    print(f"  ({repeat['cached_shell_files']} files kept by the service worker)")
    print(f"\nA {args.fixes:,}-fix recording written to IndexedDB, one committed transaction per fix:")
    for cpu in ("cpu 1x", "cpu 4x"):
        r = record[cpu]
        print(
            f"  {cpu}: median {r['median']:.2f} ms   p95 {r['p95']:.2f} ms   max {r['max']:.1f} ms   total {r['total'] / 1000:.1f} s   stored {r['stored']:,}"
        )
    u = record["upload"]
    print(
        f"\nIts upload from the app: {u['requests']} request, HTTP {u['status']}, GPX {u['gpx_bytes'] / 1e6:.2f} MB, {u['ms'] / 1000:.2f} s, {u['fixes']:,} fixes stored (patrol {u['id']})"
    )
    print(
        f"Today's upload page, the same file through its form: {page['ms'] / 1000:.2f} s — {page['answer']!r}"
    )


if __name__ == "__main__":
    main()
