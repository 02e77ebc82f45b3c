"""Hostile text (an admin's category label ``<!--<script>``, a description and grid names holding
``</script><script>…``) is shown as text on every map and page: it never appears raw in the HTML
served, and in a real browser each map still draws its layers with no SEVERE console message and
each page's script runs under its Content-Security-Policy."""

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import update
from utils.browser import chromium, serving, severe, sign_in, wait_for_render
from utils.factories import PASSWORD, add_users, auth
from utils.places import inside
from utils.tracks import crossing, gpx

from patrol.models import Grid

LABEL = "<!--<script>"
SCRIPT = "</script><script>alert(1)</script>"
GRID = "LJ-GQ-03"
GQ03 = inside(GRID)

COUNT = """
let polygons = 0, markers = 0;
window.mangroveMap.eachLayer(l => { if (l instanceof L.Polygon) polygons++; else if (l instanceof L.Marker) markers++; });
return {polygons, markers, clusters: document.querySelectorAll('.marker-cluster, .mp-inc').length,
        text: document.body.innerText};
"""


@pytest.fixture
def hostile(client, sessions):
    """A category, an incident and a grid named with hostile text, and a patrol through the grid;
    returns the paths of the maps and pages that show them."""
    add_users(sessions, "admin", "member")
    admin, member = auth(client, "admin"), auth(client, "member")
    category = {"code": "hostile", "label_zh": LABEL, "label_en": SCRIPT}
    assert client.post("/api/v1/incident-categories", json=category, headers=admin).status_code == 201
    body = {"category": "hostile", "lon": GQ03[0], "lat": GQ03[1], "description": SCRIPT}
    incident = client.post("/api/v1/incidents", json=body, headers=member).json()
    with sessions() as session:  # as a grid file's names would arrive through an import
        session.execute(update(Grid).where(Grid.code == GRID).values(name_zh=LABEL, name_en=SCRIPT))
        session.commit()
    lon, lat, times, _ = crossing(GRID)
    patrol = client.post(
        "/api/v1/patrols", files={"file": ("walk.gpx", gpx(lon, lat, times))}, headers=member
    )
    assert patrol.status_code == 201, patrol.text
    return {
        "maps": [
            "/maps/station?basemap=none",
            "/maps/joint?basemap=none",
            f"/maps/replay/patrol/{patrol.json()['id']}?basemap=none",
        ],
        "pages": [
            f"/incidents/{incident['id']}",
            "/incidents/mine",
            f"/incidents/report?reported={incident['id']}",
        ],
    }


def test_hostile_text_never_appears_raw_in_a_map(client, hostile):
    from utils.factories import sign_in as sign_in_page

    sign_in_page(client, "admin")
    for path in hostile["maps"]:
        html = client.get(path).text
        assert LABEL not in html and SCRIPT not in html, path
        # There, escaped: as JSON (\u003c…) or as HTML inside JSON (\u0026lt;…).
        as_json, as_html_in_json = "\\u003c!--\\u003cscript\\u003e", "\\u0026lt;!--\\u0026lt;script\\u0026gt;"
        assert as_json in html or as_html_in_json in html, path


def test_maps_and_pages_with_hostile_text_work_in_a_browser(app, hostile):
    driver = chromium()
    try:
        with serving(app) as site:
            sign_in(driver, site, "admin", PASSWORD)
            for path in hostile["maps"]:
                driver.get(site + path)
                wait_for_render(driver)
                drawn = driver.execute_script(COUNT)
                assert severe(driver) == [], path
                # The grids, the hostile one among them (a replay draws those near the walk).
                assert drawn["polygons"] > (0 if "replay" in path else 20), path
                assert LABEL in drawn["text"] or "replay" in path, path  # the legend shows it as text
                if "replay" not in path:
                    assert drawn["clusters"] > 0, path
            sign_in(driver, site, "member", PASSWORD)
            for path in hostile["pages"]:
                driver.get(site + path)
                assert severe(driver) == [], path
                assert LABEL in driver.find_element(By.TAG_NAME, "main").text, path
            # The report page's script (a file now) runs under the page's policy: a tap sets the point.
            driver.get(site + "/incidents/report")
            driver.find_element(By.ID, "map").click()
            assert driver.find_element(By.ID, "lon").get_attribute("value")
            assert "hidden" not in driver.find_element(By.ID, "marker").get_attribute("class")
            assert severe(driver) == []
            # Swagger UI renders offline under its own policy.
            driver.get(site + "/docs")
            driver.implicitly_wait(10)
            assert len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) > 20
            assert severe(driver) == []
    finally:
        driver.quit()
