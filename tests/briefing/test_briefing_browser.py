"""The briefing page and the /briefing form in Debian's headless Chromium (network off), on a
390 px phone and a 1366 px laptop: no console error, nothing wider than the screen but the tables'
own scrolling boxes, and screenshots in test-artifacts/briefing/ (or $MANGROVE_TEST_ARTIFACTS)."""

from __future__ import annotations

import base64

import pytest
from selenium.webdriver.common.by import By
from utils.browser import ARTIFACTS, chromium, layout_problems, serving, severe, sign_in, wait_until_replaced
from utils.factories import PASSWORD

SHOTS = ARTIFACTS / "briefing"


def viewport(driver, width: int, height: int) -> None:
    """Exactly this CSS viewport (a headless window has a minimum width above a phone's)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def full_page_shot(driver, path) -> None:
    """The whole page, not only the window (Chrome's DevTools capture beyond the viewport)."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.parametrize("width", [390, 1366])
def test_the_briefing_reads_on_a_phone_and_a_laptop(app, scene, backend, width):
    month, _ = scene
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serving(app) as base:
        driver = chromium(width, 900)
        try:
            viewport(driver, width, 900)
            sign_in(driver, base, "officer-lj", PASSWORD)
            driver.get(f"{base}/briefing")
            form_month = driver.find_element(By.NAME, "month")
            assert form_month.get_attribute("value") == month  # last month offered first
            button = driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]")
            button.click()
            wait_until_replaced(driver, button)
            links = driver.find_elements(By.CSS_SELECTOR, "a.button")
            assert [a.text.split()[-1] for a in links] == ["page", "PDF"]
            full_page_shot(driver, SHOTS / f"form-{width}-{backend[0]}.png")
            driver.get(links[0].get_attribute("href"))
            assert "红树林巡护工作简报" in driver.title
            assert not severe(driver), severe(driver)
            problems = layout_problems(driver)
            assert problems == [], (width, problems)
            images = driver.execute_script(
                "return [...document.images].map(i => [i.naturalWidth, i.getBoundingClientRect().width])"
            )
            # the map and two charts (no incident of the month is closed: no time-to-close chart)
            assert len(images) == 3 and all(natural > 0 and shown <= width for natural, shown in images)
            full_page_shot(driver, SHOTS / f"page-{width}-{backend[0]}.png")
        finally:
            driver.quit()
