"""The incident desk in a real browser (Debian's headless Chromium, network off), with two people
at once: a patrol member reports on a phone, a station manager accepts, starts and resolves on a
phone (390×844), an officer verifies and closes at a desk (1366×900); a stale form shows what
changed; a referral lands on the other side's work list. Every page is checked for what a person
meets (``utils.browser.layout_problems``): no sideways scrolling, tap targets of at least 44 px,
text contrast of at least 4.5:1, no SEVERE console message. Full-page
screenshots go to test-artifacts/desk/ (or $MANGROVE_TEST_ARTIFACTS/desk). Runs on both backends.
"""

from __future__ import annotations

import base64
import io
import re
from datetime import timedelta

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select, update
from utils.browser import (
    ARTIFACTS,
    chromium,
    layout_problems,
    serving,
    severe,
    sign_in,
    wait_for_render,
    wait_until_replaced,
)
from utils.factories import PASSWORD, add_users, auth
from utils.nearby import T0, upload, wander
from utils.places import inside_near_border

from patrol.accounts import Principal
from patrol.incidents import IncidentReport, report_incident
from patrol.models import Incident, User

WHERE = inside_near_border("LJ-GQ-08")
NAMES = {"manager": "站长 A (高桥管理站)", "officer-lj": "执法队员 B (廉江)", "officer-hp": "执法队员 C (合浦)",
         "member": "队员 07 (高桥先锋队)"}  # fmt: skip


def screenshot(driver, name: str) -> None:
    """The whole page, not only the window (Chrome's DevTools capture beyond the viewport)."""
    folder = ARTIFACTS / "desk"
    folder.mkdir(parents=True, exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    (folder / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def looked_at(driver, name: str, answered: int | None = None) -> None:
    """Check the page as a person would meet it, and keep a screenshot of it. ``answered``: the
    refusal status the page came with (Chromium logs it as SEVERE; nothing else may be)."""
    screenshot(driver, name)
    problems = layout_problems(driver)
    assert problems == [], f"{name}: {problems}"
    errors = [m for m in severe(driver) if not (answered and f"status of {answered}" in m)]
    assert not errors, f"{name}: {errors}"
    assert "Traceback" not in driver.page_source


def wait(driver, css: str, timeout: float = 30):
    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def press(driver, form: str) -> None:
    """Submit one action form with its button, and wait for the page that answers."""
    button = driver.find_element(By.CSS_SELECTOR, f"#{form} button[type=submit]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    wait_until_replaced(driver, button)


def viewport(driver, width: int, height: int) -> None:
    """Exactly this CSS viewport (a headless window has a minimum width above a phone's)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def fill(driver, field: str, text: str) -> None:
    """Type into a field, unfolding "more actions" first if it is folded away there."""
    element = driver.find_element(By.ID, field)
    if not element.is_displayed():
        driver.find_element(By.CSS_SELECTOR, "#more-actions > summary").click()
    element.send_keys(text)


def become(driver, base: str, username: str) -> None:
    driver.delete_all_cookies()
    sign_in(driver, base, username, PASSWORD)


def status(sessions, incident_id: int) -> tuple[str, str | None]:
    with sessions() as session:
        incident = session.get(Incident, incident_id)
        return incident.status, incident.referred_to


@pytest.fixture
def site(engine, settings, sessions):
    from api.app import create_app

    add_users(sessions, "member", "manager", "officer-lj", "officer-hp")
    with sessions() as session:
        for username, name in NAMES.items():
            session.execute(update(User).where(User.username == username).values(display_name=name))
        session.commit()
    with serving(create_app(settings=settings, engine=engine)) as url:
        yield url


@pytest.fixture
def browsers():
    phone, desk = chromium(390, 844), chromium(1366, 900)
    viewport(phone, 390, 844)
    viewport(desk, 1366, 900)
    yield phone, desk
    phone.quit()
    desk.quit()


def test_an_incident_from_report_to_close_with_a_stale_form_and_a_referral(
    site, browsers, sessions, settings, tmp_path
):
    phone, desk = browsers
    base = site

    # A patrol member reports from the phone.
    become(phone, base, "member")
    phone.get(base + "/incidents/report")
    Select(phone.find_element(By.ID, "category")).select_by_value("cutting")
    phone.find_element(By.ID, "lon").send_keys(f"{WHERE[0]:.6f}")
    phone.find_element(By.ID, "lat").send_keys(f"{WHERE[1]:.6f}")
    phone.find_element(By.ID, "description").send_keys("三棵红树被砍 three mangroves cut")
    phone.find_element(By.ID, "submit").click()
    WebDriverWait(phone, 30).until(lambda d: "reported=" in d.current_url)
    incident = int(re.search(r"reported=(\d+)", phone.current_url).group(1))

    # The station manager finds it on the work list and takes it to resolved, on the phone.
    become(phone, base, "manager")
    phone.get(base + "/")
    assert phone.find_element(By.CSS_SELECTOR, "ul.links li a").get_attribute("href").endswith("/desk")
    phone.get(base + "/desk")
    looked_at(phone, "desk-390")
    phone.find_element(By.CSS_SELECTOR, f'li[data-id="{incident}"] a').click()
    wait(phone, "#form-accept")
    looked_at(phone, "incident-reported-390")
    Select(phone.find_element(By.ID, "accept-level")).select_by_value("town")
    press(phone, "form-accept")
    assert "已受理 Accepted" in wait(phone, "p.ok").text
    press(phone, "form-start")
    photo = tmp_path / "cleared.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 110, 60)).save(buffer, format="PNG")
    photo.write_bytes(buffer.getvalue())
    phone.find_element(By.ID, "resolve-note").send_keys("树桩已登记, 已报林业站 stumps logged, forestry told")
    phone.find_element(By.ID, "resolve-photos").send_keys(str(photo))
    press(phone, "form-resolve")
    assert "已办结 Resolved" in wait(phone, "p.ok").text
    assert phone.find_elements(By.CSS_SELECTOR, ".photos img.photo")
    assert not phone.find_elements(By.ID, "form-close")  # the resolver does not verify their own work
    looked_at(phone, "incident-resolved-390")

    # An officer verifies and closes it at the desk.
    become(desk, base, "officer-lj")
    desk.get(base + "/desk")
    wait(desk, f'li[data-id="{incident}"]')
    looked_at(desk, "desk-1366")
    desk.find_element(By.CSS_SELECTOR, f'li[data-id="{incident}"] a').click()
    wait(desk, "#form-close").find_element(By.ID, "close-note").send_keys("现场复核属实 verified on site")
    press(desk, "form-close")
    assert "已核实并关闭 Verified and closed" in wait(desk, "p.ok").text
    assert status(sessions, incident) == ("closed", None)
    history = desk.find_element(By.CSS_SELECTOR, "ol.history").text
    for words in ("队员 07 (高桥先锋队): 报告 Reported", "站长 A (高桥管理站): 受理 Accepted", "镇级 Town",
                  "站长 A (高桥管理站): 办结 Resolved", "执法队员 B (廉江): 核实关闭 Closed after verifying"):  # fmt: skip
        assert words in history, words
    looked_at(desk, "incident-closed-1366")

    # Two people on one incident: the manager accepts on the phone while the officer, with the
    # page open since before, rejects it: the officer's form is stale and shows what changed.
    with sessions() as session:
        member = Principal.of(session.scalars(select(User).where(User.username == "member")).one())
        second = report_incident(session, member, IncidentReport("rubbish", *WHERE), settings.incidents).id
        session.commit()
    desk.get(f"{base}/incidents/{second}")
    phone.get(f"{base}/incidents/{second}")
    press(phone, "form-accept")
    fill(desk, "reject-note", "重复报告 reported twice")
    press(desk, "form-reject")
    stale = wait(desk, "#stale").text
    assert "有人已修改此事件 Someone changed this incident" in stale
    assert "站长 A (高桥管理站): 受理 Accepted" in stale and "已受理 Accepted" in stale
    assert desk.find_element(By.ID, "reject-note").get_attribute("value") == "重复报告 reported twice"
    assert status(sessions, second) == ("accepted", None)
    looked_at(desk, "stale-1366", answered=409)
    viewport(desk, 390, 844)
    looked_at(desk, "stale-390")
    viewport(desk, 1366, 900)

    # The manager refers it to Hepu; it lands on Hepu's officer's work list.
    phone.get(f"{base}/incidents/{second}")
    fill(phone, "refer-note", "污染来自对岸 from across the border")
    assert "广西·合浦 Guangxi · Hepu" in phone.find_element(By.ID, "form-refer").text
    press(phone, "form-refer")
    assert "已移交对方 Referred to the other side" in wait(phone, "p.ok").text
    assert status(sessions, second) == ("accepted", "GX-HP")
    looked_at(phone, "referred-390")
    become(desk, base, "officer-hp")
    desk.get(base + "/desk")
    row = wait(desk, f'li[data-id="{second}"]').text
    assert "垃圾 Rubbish" in row and "已受理 Accepted" in row
    desk.find_element(By.CSS_SELECTOR, f'li[data-id="{second}"] a').click()
    wait(desk, "#form-resolve")
    looked_at(desk, "referred-hepu-1366")
    viewport(desk, 390, 844)
    desk.get(base + "/desk")
    looked_at(desk, "desk-hepu-390")


def test_the_patrols_nearby_before_a_sighting_open_their_replay(site, browsers, client, sessions, settings):
    """The manager, on a phone and at the desk, sees who walked past the place in the day before a
    cutting was seen, and opens that patrol's replay from the incident page."""
    phone, desk = browsers
    seen = T0 + timedelta(hours=2)
    lon, lat, times = wander(1, grid="LJ-GQ-03", minutes=40, start=T0)
    patrol = upload(client, auth(client, "member"), lon, lat, times, "gq-morning")
    with sessions() as session:
        member = Principal.of(session.scalars(select(User).where(User.username == "member")).one())
        found = IncidentReport("cutting", float(lon[0]) + 0.0004, float(lat[0]), observed_at=seen)
        incident = report_incident(session, member, found, settings.incidents, now=seen).id
        session.commit()

    for driver, width in ((phone, 390), (desk, 1366)):
        become(driver, site, "manager")
        driver.get(f"{site}/incidents/{incident}")
        card = wait(driver, "#before-seen")
        assert "队员 07 (高桥先锋队)" in card.text and "发现前 1 h" in card.text, card.text
        driver.execute_script("arguments[0].scrollIntoView()", card)
        looked_at(driver, f"incident-nearby-{width}")

    link = phone.find_element(By.CSS_SELECTOR, f'#before-seen a[href="/maps/replay/patrol/{patrol}"]')
    assert link.size["height"] >= 44  # a tap target on the phone, not a word in a sentence
    phone.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    WebDriverWait(phone, 30).until(lambda d: d.current_url.endswith(f"/maps/replay/patrol/{patrol}"))
    wait_for_render(phone)
    phone.find_element(By.CSS_SELECTOR, ".mp-play").click()
    WebDriverWait(phone, 10).until(
        lambda d: d.execute_script("return Number(document.querySelector('.mp-slider').value)") > 0
    )
    screenshot(phone, "incident-nearby-replay-390")
    assert severe(phone) == []
