"""The field app as a patrol member meets it on a tidal flat, in a real Chromium: loaded once
online, then no network; it opens, records a walk fed by geolocation overrides, takes a report with
a photo, keeps both across a reload, and sends each exactly once when the network is back — also
when the service's answer is lost on the way and the app asks again. Screenshots of every step go
to test-artifacts/fieldapp/."""

from __future__ import annotations

import time

from PIL import Image
from sqlalchemy import select
from utils.browser import ARTIFACTS
from utils.fieldapp import inside

from patrol.models import Incident, Patrol
from patrol.models import IncidentPhoto as Photo


def camera_photo(path, width=3000, height=2000):
    """A camera-sized JPEG (noise, so it does not compress to nothing)."""
    import numpy as np

    pixels = np.random.default_rng(7).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=90)
    return path


def walk(phone, start, fixes: int = 24, every_s: float = 0.4, step_m: float = 0.6):
    """Feed ``fixes`` positions heading north-east at a walking pace (step_m per every_s)."""
    lon, lat = start
    for i in range(fixes):
        d = i * step_m / 111_320
        phone.position(lon + d * 0.7, lat + d * 0.7)
        time.sleep(every_s)


def report(phone, photo_path, note: str) -> None:
    from selenium.webdriver.support.ui import Select

    phone.tap('.tabs button[data-view="report"]')
    phone.wait(lambda: phone.visible("#view-report"), "the report form")
    Select(phone.find("#category")).select_by_value("cutting")
    phone.tap("#locate")
    phone.wait(lambda: "Grid" in (phone.text("#position") or ""), "the position and its grid")
    phone.type("#description", note)
    phone.find("#photos").send_keys(str(photo_path))
    phone.wait(
        lambda: (
            phone.driver.execute_script("return document.querySelectorAll('#photo-list img').length") == 1
        ),
        "the photo preview",
    )


def test_recorded_offline_sent_once_when_online(phone, tmp_path):
    gq02 = inside(phone.sessions, "LJ-GQ-02")
    phone.position(*gq02)
    phone.sign_in()
    phone.shot("1-online-signed-in")

    # No network at all from here on: the app reloads from the phone.
    phone.offline()
    phone.driver.refresh()
    phone.wait(lambda: phone.visible("#view-patrol"), "the app to open offline")
    assert "Offline" in phone.text("#net")
    phone.shot("2-offline-reloaded")

    phone.tap("#rec-start")
    walk(phone, gq02)
    phone.wait(lambda: int(phone.text("#fixcount").split()[0]) >= 20, "the recorded fixes")
    assert phone.text("#grid-now").startswith("LJ-GQ-02")
    recorded = phone.idb("MP.store.recordings().then(function (r) { return MP.store.fixes(r[0].id); })")
    assert len(recorded) >= 20  # written to IndexedDB as they arrived
    phone.shot("3-recording")

    photo = camera_photo(tmp_path / "IMG_0001.jpg")
    report(phone, photo, "offline report")
    # The position's grid is shown at once, from the grids kept on the phone.
    assert "LJ-GQ-02" in phone.text("#position")
    phone.shot("4-report-filled")
    phone.tap("#report button[type=submit]")
    phone.wait(lambda: phone.visible("#view-outbox"), "the outbox")
    phone.shot("5-report-queued")

    phone.tap('.tabs button[data-view="patrol"]')
    phone.tap("#rec-stop")
    phone.wait(lambda: phone.visible("#finish"), "the finish form")
    phone.type("#notes", "recorded in the field app")
    phone.tap("#finish button[type=submit]")
    phone.wait(lambda: phone.visible("#view-outbox"), "the outbox after stop")
    fixes = len(recorded) + 0  # at least these; the walk may have added a few more before stop

    # A reload while still offline: both are still queued, nothing has been sent.
    phone.driver.refresh()
    phone.wait(lambda: phone.visible("#view-patrol"), "the app after a second offline reload")
    items = phone.outbox()
    assert sorted(i["kind"] for i in items) == ["incident", "patrol"]
    assert all(i["state"] in ("waiting", "sending") for i in items), items
    assert phone.count(Patrol) == 0 and phone.count(Incident) == 0
    phone.tap('.tabs button[data-view="outbox"]')
    phone.shot("6-offline-queued-after-reload")

    phone.online()
    phone.wait(lambda: all(i["state"] == "sent" for i in phone.outbox()), "everything sent", timeout=60)
    phone.tap('.tabs button[data-view="outbox"]')
    phone.shot("7-online-sent")

    assert phone.count(Patrol) == 1
    assert phone.count(Incident) == 1
    with phone.sessions() as session:
        patrol = session.scalars(select(Patrol)).one()
        incident = session.scalars(select(Incident)).one()
        photos = session.scalars(select(Photo)).all()
    assert patrol.fix_count >= fixes and patrol.notes == "recorded in the field app"
    assert incident.description == "offline report" and incident.category == "cutting"
    # Found on the patrol being recorded: linked once the patrol was uploaded.
    phone.wait(
        lambda: phone.count(Incident, Incident.patrol_id == patrol.id) == 1,
        "the report linked to its patrol",
        timeout=10,
    )
    assert len(photos) == 1
    assert max(photos[0].width, photos[0].height) <= 1600  # resized on the phone
    assert photos[0].size_bytes < photo.stat().st_size / 4


def test_a_lost_answer_is_asked_again_and_makes_nothing_twice(phone, tmp_path):
    phone.position(*inside(phone.sessions, "LJ-GQ-03"))
    phone.sign_in()
    # The service commits the report and its photo, but neither answer reaches the phone.
    phone.faults.lose_next("POST", "/api/v1/incidents")
    phone.faults.lose_next("POST", "/api/v1/incidents/*/photos")
    report(phone, camera_photo(tmp_path / "IMG_0002.jpg", 1200, 900), "answer lost")
    phone.tap("#report button[type=submit]")
    phone.wait(lambda: len(phone.faults.lost) >= 1, "the first answer to be lost")
    phone.shot("1-answer-lost")
    phone.wait(lambda: [i["state"] for i in phone.outbox()] == ["sent"], "the retry to succeed", timeout=60)
    assert [p for _, p, _ in phone.faults.lost] == ["/api/v1/incidents", phone.faults.lost[1][1]]
    assert phone.faults.lost[1][1].endswith("/photos")
    phone.tap('.tabs button[data-view="outbox"]')
    phone.shot("2-sent-once")
    assert phone.count(Incident) == 1
    assert phone.count(Photo) == 1
    (item,) = phone.outbox()
    with phone.sessions() as session:
        assert item["result"]["id"] == session.scalar(select(Incident.id))


def test_a_refused_item_stays_with_the_reason_until_deleted(phone, tmp_path):
    phone.sign_in()
    phone.offline()
    bad = tmp_path / "track.gpx"
    bad.write_text("<gpx><trk><trkseg></trkseg></trk></gpx>")
    phone.find("#import-file").send_keys(str(bad))
    phone.tap("#import button[type=submit]")
    phone.wait(lambda: len(phone.outbox()) == 1, "the file queued")
    phone.online()
    phone.wait(lambda: phone.outbox()[0]["state"] == "refused", "the service's refusal")
    (item,) = phone.outbox()
    assert item["error"]["status"] == 422 and item["error"]["detail"]
    phone.tap('.tabs button[data-view="outbox"]')
    phone.wait(lambda: "Refused" in phone.text("#outbox"), "the refusal shown")
    assert item["error"]["detail"][:30] in phone.text("#outbox")
    phone.shot("1-refused")
    # Deleting asks first; saying no keeps it.
    phone.tap("#outbox li .danger-button")
    phone.driver.switch_to.alert.dismiss()
    assert len(phone.outbox()) == 1
    phone.tap("#outbox li .danger-button")
    phone.driver.switch_to.alert.accept()
    phone.wait(lambda: phone.outbox() == [], "the item deleted")
    assert phone.count(Patrol) == 0


def test_an_expired_session_keeps_the_queue_and_sends_after_signing_in(phone, tmp_path):
    phone.position(*inside(phone.sessions, "LJ-GQ-01"))
    phone.sign_in()
    phone.offline()
    report(phone, camera_photo(tmp_path / "IMG_0003.jpg", 800, 600), "while signed out")
    phone.tap("#report button[type=submit]")
    phone.wait(lambda: len(phone.outbox()) == 1, "the report queued")
    # The session ends on the service meanwhile (expired, or revoked by signing out elsewhere).
    token = phone.idb("MP.store.get('session').then(function (s) { return s.token; })")
    import httpx

    phone.proxy.up()
    assert (
        httpx.post(
            phone.proxy.url + "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 204
    )
    phone.online()
    phone.wait(lambda: phone.visible("#notice button"), "the sign-in-again notice")
    assert phone.outbox()[0]["state"] == "waiting"
    assert phone.count(Incident) == 0
    phone.shot("1-session-ended")
    phone.tap("#notice button")
    phone.type("#password", "correct horse battery")
    phone.tap("#signin button[type=submit]")
    phone.wait(lambda: phone.outbox()[0]["state"] == "sent", "the report sent after signing in", timeout=45)
    assert phone.count(Incident) == 1


def test_over_plain_http_on_a_lan_name_the_page_says_what_to_do(engine, settings):
    """A phone reaching a station laptop at http://its-name gets no location, camera or offline
    use: the page says so, and how to fix it, instead of failing silently."""
    from utils.browser import chromium, serving

    from api.app import create_app

    with serving(create_app(settings=settings, engine=engine)) as base:
        driver = chromium(390, 844, alias="station.test")
        try:
            driver.get(base.replace("127.0.0.1", "station.test") + "/app/")
            time.sleep(0.5)
            assert driver.execute_script("return window.isSecureContext") is False
            banner = driver.execute_script(
                "var b = document.getElementById('insecure'); return b.offsetParent ? b.innerText : null"
            )
            assert banner and "https://" in banner and "station-cert" in banner
            assert (
                driver.execute_script(
                    "return 'serviceWorker' in navigator && !!navigator.serviceWorker.controller"
                )
                is False
            )
            driver.save_screenshot(str(ARTIFACTS / "fieldapp" / "insecure-context.png"))
            driver.get(base + "/app/")  # the same page on 127.0.0.1 (a secure context): no banner
            time.sleep(0.5)
            assert driver.execute_script("return document.getElementById('insecure').offsetParent") is None
        finally:
            driver.quit()


def test_the_stations_basemap_is_kept_on_the_phone_and_shown_offline(phone, settings):
    """A station's own tile file, offered by the service, is kept on the phone for the side's grids
    (with progress) and drawn under the grids on the report map with no network."""
    import math

    from utils.tiles import write_mbtiles

    def tiles_over(lon0, lat0, lon1, lat1, zooms):
        def xy(lon, lat, z):
            n = 1 << z
            r = math.radians(lat)
            return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(r)) / math.pi) / 2 * n)

        out = []
        for z in zooms:
            (x0, y0), (x1, y1) = xy(lon0, lat1, z), xy(lon1, lat0, z)
            out += [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
        return out

    tiles = tiles_over(109.5, 21.3, 110.0, 21.8, range(8, 12))
    folder = settings.tile_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = write_mbtiles(folder / "lianjiang.mbtiles", tiles, metadata={"bounds": "109.5,21.3,110.0,21.8"})
    try:
        phone.sign_in()
        phone.tap('.tabs button[data-view="mine"]')
        phone.wait(lambda: phone.visible("#tiles-cache"), "the offer to keep the basemap")
        phone.tap("#tiles-cache")
        kept = phone.wait(
            lambda: phone.idb("MP.store.get('tiles-kept')"), "the basemap kept on the phone", timeout=60
        )
        assert 0 < kept["count"] <= len(tiles)
        phone.shot("1-basemap-kept")
        assert "lianjiang" in phone.text("#tiles-status")
        phone.offline()
        phone.driver.refresh()
        phone.wait(lambda: phone.visible("#view-patrol"), "the app offline")
        phone.tap('.tabs button[data-view="report"]')
        phone.wait(
            lambda: (
                phone.driver.execute_script(
                    "return document.querySelectorAll('#map img.leaflet-tile-loaded').length"
                )
                > 0
            ),
            "basemap tiles drawn offline",
        )
        phone.shot("2-basemap-offline")
    finally:
        path.unlink(missing_ok=True)


def test_a_token_past_half_its_life_is_renewed_when_online(phone):
    import httpx

    phone.sign_in()
    old = phone.idb("MP.store.get('session').then(function (s) { return s.token; })")
    # Signed in long ago (as far as the phone knows): past half the token's life.
    phone.idb(
        "MP.store.get('session').then(function (s) { s.issued_at = new Date(Date.now() - 6 * 86400e3).toISOString();"
        " s.expires_at = new Date(Date.now() + 86400e3).toISOString(); return MP.store.put('session', s); })"
    )
    phone.driver.refresh()
    new = phone.wait(
        lambda: (
            (t := phone.idb("MP.store.get('session').then(function (s) { return s.token; })")) != old and t
        ),
        "the token renewed",
    )

    def me(token):
        return httpx.get(phone.proxy.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert me(new).status_code == 200 and me(old).status_code == 401
