"""A joint case from opening to closing in Debian's Chromium (network off), on a phone (390×844)
and a desk screen (1366×900): Lianjiang's officer opens it from an incident with Hepu's officer
and logs two actions; Hepu's officer logs the other three mechanisms, brings in a Hepu incident
and closes it. Every page is checked for what a person would notice: no sideways scrolling, tap
targets of at least 44 px, text contrast of at least 4.5:1, no console errors. Full-page
screenshots go to test-artifacts/desk/joint-*.png."""

from __future__ import annotations

import base64
import re
import time

import pytest
from utils.browser import ARTIFACTS, chromium, layout_problems, serving, severe, sign_in, wait_until_replaced
from utils.places import inside

from patrol.accounts import Principal
from patrol.demo import load_demo
from patrol.incidents import IncidentReport, report_incident
from patrol.models import JointCase, User

SHOTS = ARTIFACTS / "desk"
MECHANISMS = ("prevention", "supervision", "monitoring", "enforcement", "emergency")


def browser(width: int, height: int):
    driver = chromium(width, height)
    if width < 500:
        # Headless Chromium keeps its window at least 500 px wide: emulate the phone's screen.
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver


def report(sessions, settings, username: str, grid: str) -> int:
    with sessions() as session:
        user = session.query(User).filter_by(username=username).one()
        lon, lat = inside(grid)
        found = IncidentReport("pollution", lon, lat, description="养殖尾水直排 pond effluent straight out")
        incident = report_incident(session, Principal.of(user, channel="cli"), found, settings.incidents)
        session.commit()
        return incident.id


class Desk:
    def __init__(self, driver, base: str, size: str):
        self.driver, self.base, self.size = driver, base, size
        self.shots: list[str] = []

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)
        self.check()

    def submit(self, form_action: str, expect: str, *, status: int | None = None) -> None:
        """Press the form's button (scrolled into view, as a thumb would), wait until the answer
        has replaced the page, and for ``expect`` (a regular expression) in the address. Waiting
        on the address alone is not enough: after one "?done=logged" the next answer has the same
        address, and the old page would be read while the new one loads."""
        button = self.find(f'form[action="{form_action}"] button[type=submit]')
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
        wait_until_replaced(self.driver, button)
        deadline = time.monotonic() + 10
        while not re.search(expect, self.driver.current_url):
            assert time.monotonic() < deadline, f"did not reach {expect}: {self.driver.current_url}"
            time.sleep(0.05)
        self.check(status)

    def choose(self, name: str, value: str) -> None:
        """Tap the label of a radio button or checkbox (the whole row is the target)."""
        box = self.find(f'input[name="{name}"][value="{value}"]')
        label = box.find_element("xpath", "./ancestor::label")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", label)
        label.click()
        assert box.is_selected()

    def type(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def check(self, status: int | None = None) -> None:
        """The page as drawn: layout problems, and console errors (but the one naming the
        page's own expected ``status``, e.g. a refusal's 422)."""
        problems = layout_problems(self.driver)
        assert problems == [], (self.size, self.driver.current_url, problems)
        expected = f"the server responded with a status of {status}"
        errors = [m for m in severe(self.driver) if status is None or expected not in m]
        assert errors == [], (self.size, self.driver.current_url)

    def shot(self, name: str) -> None:
        """A full-page screenshot (the whole page, not only the window)."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path = SHOTS / f"joint-{self.size}-{name}.png"
        path.write_bytes(base64.b64decode(data["data"]))
        self.shots.append(path.name)


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 900)], ids=["phone", "desk"])
def test_a_joint_case_from_opening_to_closing(engine, settings, sessions, width, height):
    from api.app import create_app

    with sessions() as session:
        load_demo(session)
        session.commit()
    ours = report(sessions, settings, "gq-member-07", "LJ-AP-02")
    theirs = report(sessions, settings, "sk-member-03", "HP-SK-05")
    started = time.monotonic()
    with serving(create_app(settings=settings, engine=engine)) as base:
        driver = browser(width, height)
        desk = Desk(driver, base, "phone" if width < 600 else "desk")
        other = None
        try:
            # Lianjiang's officer opens the case from the incident, with Hepu's officer.
            sign_in(driver, base, "lj-officer")
            assert driver.execute_script("return window.innerWidth") == width
            desk.open(f"/joint-cases/new?incident={ours}")
            assert f"#{ours}" in desk.find(".incident-list").text
            desk.type("#title", "英罗湾养殖尾水排污 Yingluo Bay pond effluent")
            desk.shot("1-new")
            # Nobody of Hepu chosen: the domain's refusal beside the participants, the title kept.
            desk.submit("/joint-cases/new", r"/joint-cases/new$", status=422)
            assert "both sides" in desk.find("#participants-error").text
            assert desk.find("#title").get_attribute("value").startswith("英罗湾养殖尾水排污")
            desk.shot("1-refused")
            desk.choose("participants", "hp-officer")
            desk.submit("/joint-cases/new", r"/joint-cases/\d+\?done=opened$")
            case_id = int(re.search(r"/joint-cases/(\d+)", driver.current_url).group(1))
            page = f"/joint-cases/{case_id}"
            assert "联合案件已建立" in desk.find(".notice").text
            people = desk.find("section[aria-labelledby=people]").text
            assert "执法队员 C (合浦)" in people and "执法人员 Enforcement officer · 广西·合浦" in people
            for mechanism, note in zip(
                MECHANISMS[:2], ("两地联合巡查英罗湾东岸", "约谈养殖户 met the pond owners")
            ):
                desk.choose("mechanism", mechanism)
                desk.type("#note", note)
                desk.submit(f"{page}/actions", r"\?done=logged$")
            desk.shot("2-logged")
            # Hepu's officer logs the other three, brings in a Hepu incident and closes the case.
            sign_in(driver, base, "hp-officer")
            desk.open(page)
            for mechanism, note in zip(
                MECHANISMS[2:],
                ("联合采样 joint water sampling", "联合执法 拆除排污管", "应急围堵 booms laid"),
            ):
                desk.choose("mechanism", mechanism)
                desk.type("#note", note)
                desk.submit(f"{page}/actions", r"\?done=logged$")
            desk.type("#incident", str(theirs))
            desk.submit(f"{page}/incidents", r"\?done=added$")
            log = desk.find("#log").text
            for mechanism, zh in zip(
                MECHANISMS, ("联合防控", "联合监管", "联合监测", "联合执法", "联合应急")
            ):
                group = desk.find(f".mech-{mechanism}").text
                assert zh in group and "·" in group, mechanism  # time · who
            assert "执法队员 B (廉江)" in log and "执法队员 C (合浦)" in log
            assert f"#{theirs}" in desk.find("section[aria-labelledby=incidents]").text
            desk.shot("3-five-mechanisms")
            # Lianjiang's officer has the case open in another browser meanwhile.
            other = Desk(browser(width, height), base, desk.size)
            sign_in(other.driver, base, "lj-officer")
            other.open(page)
            desk.submit(f"{page}/close", r"\?done=closed$")
            assert "案件已结案" in desk.find(".notice").text
            assert not driver.find_elements("css selector", "form.joint-form")
            desk.shot("4-closed")
            desk.open("/joint-cases")
            assert "已结案 Closed" in desk.find(".case-list").text
            desk.shot("5-list")
            # The other browser's page still offers the forms: what it sends is refused as stale.
            other.choose("mechanism", "monitoring")
            other.type("#note", "复测水质 sampled again")
            other.submit(f"{page}/actions", rf"{page}/actions$", status=409)
            changed = other.find(".changed").text
            assert "Someone changed this case" in changed and "It was closed at" in changed
            assert "联合监测 Joint monitoring — 复测水质 sampled again" in changed  # what was typed, to copy
            assert not other.driver.find_elements("css selector", "form.joint-form")
            other.shot("6-stale")
        finally:
            driver.quit()
            if other is not None:
                other.driver.quit()
    with sessions() as session:
        assert session.get(JointCase, case_id).status == "closed"
    assert len(desk.shots) + len(other.shots) == 7
    assert time.monotonic() - started < 60
