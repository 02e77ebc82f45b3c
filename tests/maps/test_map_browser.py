"""Every map in a real browser (Debian's headless Chromium, network off): it loads with no SEVERE
console message, fetches nothing from outside the service, and Leaflet has drawn the grids and the
markers. A screenshot of each goes to test-artifacts/maps/ (or $MANGROVE_TEST_ARTIFACTS)."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import shapely
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from sqlalchemy import select
from utils.browser import ARTIFACTS, chromium, serving, severe, sign_in, wait_for_render
from utils.mapdata import incident_rows, layer

from maps.assets import to_html
from maps.base import basemap
from maps.station import station_map
from patrol.accounts import Principal
from patrol.map_data import StationMapQuery, station_map_data
from patrol.models import Patrol, User

COUNT = """
const map = window.mangroveMap; let polygons = 0, lines = 0, markers = 0;
map.eachLayer(l => {
  if (l instanceof L.Polygon) polygons++; else if (l instanceof L.Polyline) lines++;
  else if (l instanceof L.Marker) markers++;
});
return {
  polygons, lines, markers,
  svgPaths: document.querySelectorAll('.leaflet-overlay-pane svg path').length,
  canvases: document.querySelectorAll('.leaflet-overlay-pane canvas').length,
  canvasPolygons: (() => { let n = 0; map.eachLayer(l => { if (l instanceof L.Polygon && l._renderer instanceof L.Canvas) n++; }); return n; })(),
  clusters: document.querySelectorAll('.marker-cluster').length,
  incidentIcons: document.querySelectorAll('.mp-inc').length,
  caseIcons: document.querySelectorAll('.mp-case').length,
  resources: performance.getEntriesByType('resource').map(e => e.name),
};
"""


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1366, 900)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def phone():
    driver = chromium(390, 844)
    # Chromium keeps a window at least 500 px wide; a phone's viewport is emulated instead.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    yield driver
    driver.quit()


@pytest.fixture
def site(demo):
    from api.app import create_app

    with serving(create_app(settings=demo.settings, engine=demo.engine)) as url:
        yield url


def screenshot(driver, name: str) -> None:
    folder = ARTIFACTS / "maps"
    folder.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(folder / f"{name}.png"))


def load(driver, url: str) -> dict:
    driver.get(url)
    wait_for_render(driver)
    counts = driver.execute_script(COUNT)
    assert severe(driver) == []
    return counts


def test_the_station_map_draws_grids_tracks_and_incident_clusters(browser, site, demo):
    sign_in(browser, site, "admin")
    counts = load(browser, site + "/maps/station")
    origin_only = [r for r in counts["resources"] if not r.startswith(site + "/")]
    assert origin_only == []
    html = browser.page_source
    grids = len(layer(html, "polygons")["features"])
    assert counts["polygons"] == grids > 20
    assert counts["canvasPolygons"] == grids  # drawn in the tracks' canvas, beneath them
    assert counts["lines"] == len(layer(html, "tracks")["rows"]) > 0 and counts["canvases"] >= 1
    assert counts["clusters"] + counts["incidentIcons"] > 0
    screenshot(browser, f"station-{demo.name}")


def test_the_joint_map_draws_both_sides_the_border_and_joint_cases(browser, site, demo):
    sign_in(browser, site, "hp-officer")
    counts = load(browser, site + "/maps/joint")
    assert all(r.startswith(site + "/") for r in counts["resources"])
    assert counts["polygons"] > 30 and counts["lines"] >= 1  # grids and zones + the border band; the border
    assert counts["clusters"] + counts["incidentIcons"] > 0 and counts["caseIcons"] >= 1
    # Unclustered, each incident is filled by its status and ringed by its side.
    first = incident_rows(browser.page_source)[0]
    browser.execute_script(
        "window.mangroveMap.setView([arguments[0], arguments[1]], 17, {animate: false})", *first[:2]
    )
    time.sleep(0.4)
    icons = browser.execute_script(
        "return [...document.querySelectorAll('.leaflet-marker-pane .mp-inc')].map(e => "
        "[getComputedStyle(e).backgroundColor, getComputedStyle(e).borderTopColor])"
    )
    lookups = json.loads(
        re.search(r"MangroveMaps\.incidentMarker\((\{.*\})\);", browser.page_source).group(1)
    )
    rgb = lambda c: "rgb({}, {}, {})".format(*(int(c[i : i + 2], 16) for i in (1, 3, 5)))  # noqa: E731
    fills = {rgb(s["color"]) for s in lookups["statuses"]}
    rings = {rgb(s["color"]) for s in lookups["sides"]}
    assert icons and all(fill in fills and ring in rings for fill, ring in icons), icons
    screenshot(browser, f"joint-{demo.name}")


def test_the_replay_moves_along_the_track_and_lights_up_the_grid_it_is_in(browser, site, demo):
    with demo.sessions() as session:
        pid = session.scalar(select(Patrol.id).where(Patrol.team == "LJ-T-GQ").order_by(Patrol.id).limit(1))
    sign_in(browser, site, "gq-manager")
    counts = load(browser, f"{site}/maps/replay/patrol/{pid}")
    assert counts["polygons"] >= 1 and counts["svgPaths"] >= counts["polygons"]
    replay = browser.execute_script(
        "const r = window.mangroveReplay; return {duration: r.duration, visits: r.visits};"
    )
    visits, duration = replay["visits"], replay["duration"]
    assert duration > 60 and visits
    # Grid visits are in the same seconds as the track (they were 1,000× too small once).
    assert all(-1 <= enter <= exit <= duration + 1 for _, _, enter, exit in visits), visits[:3]
    state = """
        const s = arguments[0]; if (s !== null) window.mangroveReplay.show(s);
        let trail = 0; const lit = [], passed = [];
        window.mangroveMap.eachLayer(l => {
          if (l instanceof L.Polyline && !(l instanceof L.Polygon) && l.options.opacity === 0.9) trail = l.getLatLngs().length;
          if (l instanceof L.Polygon && l.options.color === '#c0392b') lit.push(l.feature.properties.code);
          if (l instanceof L.Polygon && l.options.color === '#d35400') passed.push(l.feature.properties.code);
        });
        return {trail, lit, passed, grid: document.querySelector('.mp-now-grid').textContent,
                clock: document.querySelector('.mp-clock').textContent,
                slider: Number(document.querySelector('.mp-slider').value)};
    """
    # At the start only the grid the patrol starts in is lit; the others it crosses come later.
    start = browser.execute_script(state, 0)
    later = {grid for _, grid, enter, _ in visits if enter > 0} - {
        grid for _, grid, enter, _ in visits if enter <= 0
    }
    assert later and not later & set(start["lit"] + start["passed"]), (later, start)
    # Halfway through its longest visit, the patrol is in that grid: lit, and named in the readout.
    _, grid, enter, exit = max(visits, key=lambda v: v[3] - v[2])
    middle = browser.execute_script(state, (enter + exit) / 2)
    assert grid in middle["lit"] and grid in middle["grid"] and middle["trail"] > 1
    assert middle["clock"].endswith("(UTC+8)")
    # Pressing Play moves it on by itself.
    browser.execute_script("window.mangroveReplay.show(0); document.querySelector('.mp-slider').value = 0;")
    browser.find_element(By.CSS_SELECTOR, ".mp-play").click()
    time.sleep(1.5)
    played = browser.execute_script(state, None)
    assert played["slider"] > 30 and played["trail"] > 1  # 120× for 1.5 s
    screenshot(browser, f"replay-{demo.name}")
    assert severe(browser) == []


def test_an_exported_map_opens_from_a_file_with_the_network_off(browser, demo, tmp_path):
    with demo.sessions() as session:
        admin = Principal.of(session.scalar(select(User).where(User.username == "admin")))
        data = station_map_data(session, admin, StationMapQuery(station="LJ-S-GQ"), demo.settings)
    path = tmp_path / "station.html"
    path.write_text(to_html(station_map(data, basemap("none")), self_contained=True), encoding="utf-8")
    counts = load(browser, path.as_uri())
    assert [r for r in counts["resources"] if not r.startswith("data:")] == []
    assert counts["polygons"] == counts["canvasPolygons"] == len(data.grids)  # drawn beneath the tracks
    screenshot(browser, f"station-export-{demo.name}")


def test_on_a_phone_the_legend_filters_and_layer_list_start_folded(phone, demo, site):
    sign_in(phone, site, "lj-officer")
    load(phone, site + "/maps/joint")
    states = phone.execute_script(
        "return [...document.querySelectorAll('.mp-control details')].map(d => d.open)"
    )
    assert states and not any(states)
    assert phone.execute_script(
        "return !!document.querySelector('.leaflet-control-layers:not(.leaflet-control-layers-expanded)')"
    )
    screenshot(phone, f"joint-phone-{demo.name}")


def test_an_online_basemap_is_allowed_by_the_pages_content_policy(browser, site, demo):
    """Offline here, so the Amap tiles fail to load; what must not happen is the page's own policy
    refusing them (an invalid or too narrow img-src)."""
    sign_in(browser, site, "admin")
    browser.get(site + "/maps/station?basemap=amap")
    wait_for_render(browser)
    messages = [e["message"] for e in browser.get_log("browser")]
    assert any("autonavi.com" in m for m in messages)  # it did try to fetch tiles
    assert not [m for m in messages if "Content Security Policy" in m or "Content-Security-Policy" in m]
    tiles = browser.execute_script("return document.querySelectorAll('.leaflet-tile-pane img').length")
    assert tiles > 0


def _decode(deltas: list[int]) -> np.ndarray:
    return np.cumsum(np.asarray(deltas, dtype=float).reshape(-1, 2), axis=0) / 1e5


def click_map_at(driver, lon: float, lat: float) -> str:
    """Centre the map on a point at zoom 16, click it as a user would, return the popup's text."""
    driver.execute_script(
        "window.mangroveMap.closePopup(); window.mangroveMap.setView([arguments[1], arguments[0]], 16, {animate: false});",
        lon,
        lat,
    )
    time.sleep(0.3)
    ActionChains(driver).move_to_element(
        driver.find_element(By.CSS_SELECTOR, ".folium-map")
    ).click().perform()
    time.sleep(0.3)
    return driver.execute_script(
        "const p = document.querySelector('.leaflet-popup-content'); return p ? p.innerText : '';"
    )


def test_a_track_inside_a_grid_is_drawn_above_it_and_its_click_opens_the_tracks_popup(browser, site, demo):
    sign_in(browser, site, "admin")
    load(browser, site + "/maps/station?basemap=none")
    html = browser.page_source
    grids = [shapely.geometry.shape(f["geometry"]) for f in layer(html, "polygons")["features"]]
    cover = shapely.union_all(grids)
    tracks = layer(html, "tracks")["rows"]
    incidents = shapely.points([[r[1], r[0]] for r in incident_rows(html)])
    busy = shapely.union_all(shapely.buffer(incidents, 0.0012))  # ≈ 120 m around every incident marker
    inner = shapely.difference(shapely.buffer(cover, -0.0004), busy)
    # A vertex of a track well inside a grid, away from incident markers.
    target = None
    for row in tracks:
        for part in row[6]:
            xy = _decode(part)
            inside = shapely.contains_xy(inner, xy[:, 0], xy[:, 1])
            if inside.any():
                target = (row[1], xy[np.flatnonzero(inside)[len(np.flatnonzero(inside)) // 2]])
                break
        if target:
            break
    assert target, "the demo has tracks inside grids"
    patrol, (lon, lat) = target
    text = click_map_at(browser, lon, lat)
    assert "巡护 Patrol #" in text and "回放 Replay" in text, text
    # Elsewhere in a grid (away from tracks and markers) a click still opens the grid's popup.
    lines = shapely.union_all([shapely.multilinestrings([_decode(p) for p in r[6]]) for r in tracks])
    free = shapely.difference(inner, shapely.union_all([shapely.buffer(lines, 0.0015), busy]))
    assert not free.is_empty
    point = shapely.get_coordinates(free.representative_point())[0]
    text = click_map_at(browser, *point)
    assert "面积 Area" in text and "巡护 Patrol #" not in text, text
    assert severe(browser) == []


# The grids' extent on screen and every box drawn over the map, in the map's pixels.
EXTENTS = """
const map = window.mangroveMap, box = map.getContainer().getBoundingClientRect();
let b = null;
map.eachLayer(l => {
  if (l instanceof L.Polygon && l.feature && l.feature.properties.code) {
    b = b ? b.extend(l.getBounds()) : L.latLngBounds(l.getBounds().getSouthWest(), l.getBounds().getNorthEast());
  }
});
const sw = map.latLngToContainerPoint(b.getSouthWest()), ne = map.latLngToContainerPoint(b.getNorthEast());
const rel = r => ({left: r.left - box.left, right: r.right - box.left, top: r.top - box.top, bottom: r.bottom - box.top});
return {
  data: {left: sw.x, right: ne.x, top: ne.y, bottom: sw.y},
  boxes: [...document.querySelectorAll('.leaflet-control')].map(c => c.getBoundingClientRect())
    .filter(r => r.width && r.height).map(rel),
  size: [box.width, box.height],
};
"""


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    )


@pytest.mark.parametrize(("user", "path"), [("gq-manager", "/maps/station"), ("hp-officer", "/maps/joint")])
def test_the_first_view_fits_the_grids_into_the_part_of_the_map_the_boxes_leave_free(
    browser, site, demo, user, path
):
    sign_in(browser, site, user)
    load(browser, site + path + "?basemap=none")
    view = browser.execute_script(EXTENTS)
    data, (width, height) = view["data"], view["size"]
    assert 0 <= data["left"] < data["right"] <= width and 0 <= data["top"] < data["bottom"] <= height, view
    covered = [b for b in view["boxes"] if overlaps(data, b)]
    assert covered == [], view
    # Not shrunk to a speck: at whole zooms the grids span at least half the free part one way.
    assert max((data["right"] - data["left"]) / width, (data["bottom"] - data["top"]) / height) > 1 / 5, view
    screenshot(browser, f"{path.rsplit('/', 1)[1]}-{user}-1366-{demo.name}")


POPUP_AT_TOP = """
const map = window.mangroveMap; let top = null;
map.eachLayer(l => {
  if (l instanceof L.Polygon && l.feature && l.feature.properties.code
      && (!top || l.getBounds().getNorth() > top.getBounds().getNorth())) top = l;
});
// The northernmost grid, its centre moved just below the top edge (under the title box), tapped.
const centre = top.getBounds().getCenter(), p = map.latLngToContainerPoint(centre);
map.panBy([0, p.y - 40], {animate: false});
top.openPopup(centre);
"""

POPUP_STATE = """
const at = (r) => document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
const popup = document.querySelector('.leaflet-popup').getBoundingClientRect();
const close = document.querySelector('.leaflet-popup-close-button').getBoundingClientRect();
const heading = document.querySelector('.leaflet-popup-content b').getBoundingClientRect();
const rect = r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom});
return {
  popup: rect(popup), size: [window.innerWidth, window.innerHeight],
  closeOnTop: !!(at(close) && at(close).closest('.leaflet-popup-close-button')),
  headingOnTop: !!(at(heading) && at(heading).closest('.leaflet-popup-content')),
  boxes: [...document.querySelectorAll('.leaflet-control')].map(c => c.getBoundingClientRect())
    .filter(r => r.width && r.height).map(rect),
};
"""


def test_on_a_phone_a_grids_popup_opens_in_full_below_the_title_and_zoom_buttons(phone, site, demo):
    sign_in(phone, site, "gq-manager")
    load(phone, site + "/maps/station?basemap=none")
    phone.execute_script(POPUP_AT_TOP)
    time.sleep(0.8)  # the pan animation
    state = phone.execute_script(POPUP_STATE)
    screenshot(phone, f"station-phone-popup-{demo.name}")
    popup, (width, height) = state["popup"], state["size"]
    assert state["closeOnTop"] and state["headingOnTop"], state
    assert 0 <= popup["left"] and popup["right"] <= width and 0 <= popup["top"] and popup["bottom"] <= height
    assert [b for b in state["boxes"] if overlaps(popup, b)] == [], state
    assert severe(phone) == []


LABELS = """
const map = window.mangroveMap;
const shown = [...document.querySelectorAll('.mp-label')].filter(l => l.offsetParent !== null && l.parentElement.style.visibility !== 'hidden');
const rect = l => { const r = l.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
const centres = [];
map.eachLayer(l => {
  if (l instanceof L.Marker && l.getElement() && l.getElement().classList.contains('mp-label-anchor')
      && l.getElement().style.visibility !== 'hidden') {
    const p = map.latLngToContainerPoint(l.getLatLng()), r = l.getElement().firstChild.getBoundingClientRect();
    const box = map.getContainer().getBoundingClientRect();
    const size = map.getSize();
    if (p.x > 0 && p.y > 0 && p.x < size.x && p.y < size.y) {  // on screen
      centres.push([p.x + box.left - (r.left + r.right) / 2, p.y + box.top - (r.top + r.bottom) / 2]);
    }
  }
});
return {zoom: map.getZoom(), all: document.querySelectorAll('.mp-label').length, shown: shown.map(rect), centres};
"""


def labels_at(driver, zoom: int | None) -> dict:
    if zoom is not None:
        driver.execute_script(
            "const m = window.mangroveMap; m.setView(m.getCenter(), arguments[0], {animate: false});", zoom
        )
        time.sleep(0.4)
    return driver.execute_script(LABELS)


def test_grid_labels_sit_on_their_point_and_are_thinned_so_none_overlap(browser, site, demo):
    sign_in(browser, site, "admin")
    load(browser, site + "/maps/station?basemap=none")
    for zoom in (None, 11, 12, 13):
        state = labels_at(browser, zoom)
        boxes = state["shown"]
        assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if overlaps(a, b)], state
        assert all(abs(dx) <= 1.5 and abs(dy) <= 1.5 for dx, dy in state["centres"]), state
    assert 0 < len(labels_at(browser, 13)["shown"])
    assert labels_at(browser, 10)["shown"] == []  # a county or more on screen: no codes at all
    browser.execute_script(  # close in on one grid: its code shows, on its point
        "const m = window.mangroveMap; let at = null;"
        "m.eachLayer(l => { if (!at && l instanceof L.Marker && l.getElement()?.classList.contains('mp-label-anchor')) at = l.getLatLng(); });"
        "m.setView(at, 15, {animate: false});"
    )
    time.sleep(0.4)
    state = labels_at(browser, None)
    assert state["shown"] and state["centres"], state
    screenshot(browser, f"station-labels-z15-{demo.name}")


TAP_TARGETS = """
document.querySelectorAll('.mp-control details').forEach(d => d.open = true);
const sel = '.leaflet-control-zoom a, .leaflet-control-layers-toggle, .mp-control summary, '
  + '.mp-filter select, .mp-filter input:not([type=hidden]), .mp-filter button';
return [...document.querySelectorAll(sel)].map(e => {
  const r = e.getBoundingClientRect();
  return [e.tagName + '.' + e.className + ':' + (e.name || e.textContent.slice(0, 12)), r.width, r.height];
});
"""


def test_on_a_phone_every_control_and_form_field_is_a_44_px_tap_target(phone, site, demo):
    sign_in(phone, site, "gq-manager")
    load(phone, site + "/maps/station?basemap=none")
    targets = phone.execute_script(TAP_TARGETS)
    assert len(targets) >= 10, targets
    small = [
        t for t in targets if t[2] < 44 or (not t[0].startswith(("SELECT", "INPUT", "SUMMARY")) and t[1] < 44)
    ]
    assert small == [], small
    screenshot(phone, f"station-phone-{demo.name}")


def test_switching_on_the_encounter_rates_recolours_the_grids_under_the_tracks(browser, site, demo):
    sign_in(browser, site, "gq-manager")
    load(browser, site + "/maps/station?basemap=none")
    html = browser.page_source
    grids = layer(html, "polygons")["features"]
    rates = {f["properties"]["code"]: f["properties"] for f in layer(html, "polygons", 1)["features"]}
    before = browser.execute_script(COUNT)["canvasPolygons"]
    toggle = browser.find_element(
        By.XPATH, "//label[contains(., '遇见率 Encounter rate')]//input[@type='checkbox']"
    )
    assert not toggle.is_selected()  # off at first: the map opens on effort
    toggle.click()
    time.sleep(0.5)
    assert browser.execute_script(COUNT)["canvasPolygons"] == before + len(rates) == 2 * len(grids)
    screenshot(browser, f"station-rates-{demo.name}")
    # A click inside a grid, away from its tracks, now opens the rate's popup: the layer lies over
    # the effort colours (not hidden beneath them) …
    tracks = layer(html, "tracks")["rows"]
    lines = shapely.union_all([shapely.multilinestrings([_decode(p) for p in r[6]]) for r in tracks])
    markers = [shapely.Point(r[1], r[0]).buffer(0.0012) for r in incident_rows(html)]
    busy = shapely.union_all([shapely.buffer(lines, 0.0015), *markers])
    for feature in grids:
        free = shapely.difference(shapely.buffer(shapely.geometry.shape(feature["geometry"]), -0.0004), busy)
        if not free.is_empty:
            break
    text = click_map_at(browser, *shapely.get_coordinates(free.representative_point())[0])
    assert "遇见率 Encounter rate" in text and feature["properties"]["code"] in text, text
    assert rates[feature["properties"]["code"]]["popup"].split("<br>")[-1].split(" (")[0] in text
    # … and beneath the tracks: a track's vertex still opens the track's popup.
    row = tracks[0]
    lon, lat = _decode(row[6][0])[len(_decode(row[6][0])) // 2]
    assert "巡护 Patrol #" in click_map_at(browser, lon, lat)
    assert severe(browser) == []
