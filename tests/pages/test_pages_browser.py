"""The pages in a real browser at a phone's width (390 px) and a laptop's (1366 px): nothing wider
than the viewport, tap targets of at least 44 px, text contrast of at least 4.5:1
(``utils.browser.layout_problems``), a refusal beside its field, words instead of codes.
Screenshots go to test-artifacts/pages/."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from utils.browser import ARTIFACTS, chromium, layout_problems, serving, sign_in, wait_until_replaced
from utils.factories import PASSWORD, add_users
from utils.tracks import crossing, gpx

WIDTHS = {"phone": (390, 844), "desktop": (1366, 900)}


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def viewport(driver, width: int, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def submit(driver) -> None:
    """Press the upload form's button and wait until the answer has replaced the page."""
    button = driver.find_element(By.CSS_SELECTOR, "form[action='/patrols/upload'] button[type=submit]")
    button.click()
    wait_until_replaced(driver, button)


def shot(driver, name: str) -> None:
    folder = ARTIFACTS / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(folder / f"{name}.png"))


@pytest.mark.parametrize("size", WIDTHS)
def test_an_upload_and_a_refusal_fit_the_screen(browser, app, sessions, backend, tmp_path, size):
    add_users(sessions, "member")
    lon, lat, times, _ = crossing("LJ-GQ-03")
    track = tmp_path / "巡护 walk.gpx"
    track.write_bytes(gpx(lon, lat, times))
    wrong = tmp_path / "notes.gpx"
    wrong.write_text("<gpx")
    viewport(browser, *WIDTHS[size])
    with serving(app) as base:
        sign_in(browser, base, "member", PASSWORD)
        browser.get(base + "/patrols/upload")
        browser.find_element(By.ID, "file").send_keys(str(track))
        browser.find_element(By.ID, "transport").send_keys("乘船")
        submit(browser)
        heading = browser.find_element(By.TAG_NAME, "h1").text
        assert heading.startswith("已保存 Saved"), heading
        assert layout_problems(browser) == []
        shot(browser, f"upload-result-{size}-{backend[0]}")

        browser.find_element(By.ID, "file").send_keys(str(wrong))
        browser.find_element(By.ID, "notes").send_keys("退潮 low tide")
        submit(browser)
        message = browser.find_element(By.ID, "file-error")
        assert message.text.startswith("无法读取此轨迹文件 This track file could not be read: notes.gpx")
        # Beside the field: directly under the file input, before the next field.
        field = browser.find_element(By.ID, "file").rect
        datum = browser.find_element(By.ID, "datum").rect
        assert field["y"] < message.rect["y"] < datum["y"]
        assert browser.find_element(By.ID, "notes").get_attribute("value") == "退潮 low tide"
        assert layout_problems(browser) == []
        shot(browser, f"upload-refused-{size}-{backend[0]}")


@pytest.mark.parametrize("size", WIDTHS)
def test_the_home_page_and_an_error_page_fit_the_screen(browser, app, sessions, backend, size):
    add_users(sessions, "manager")
    viewport(browser, *WIDTHS[size])
    with serving(app) as base:
        sign_in(browser, base, "manager", PASSWORD)
        browser.get(base + "/")
        assert "站长 Station manager" in browser.find_element(By.TAG_NAME, "main").text
        assert layout_problems(browser) == []
        shot(browser, f"home-{size}-{backend[0]}")
        browser.get(base + "/incidnets/12")
        assert browser.find_element(By.TAG_NAME, "h1").text == "找不到此页面或记录 Not found"
        assert layout_problems(browser) == []
        shot(browser, f"not-found-{size}-{backend[0]}")


def test_links_and_buttons_are_tap_targets_of_at_least_44_px(browser, app, sessions):
    add_users(sessions, "manager")
    viewport(browser, *WIDTHS["phone"])
    with serving(app) as base:
        sign_in(browser, base, "manager", PASSWORD)
        browser.get(base + "/")
        targets = browser.find_elements(By.CSS_SELECTOR, "ul.links a, header button")
        assert targets and all(t.rect["height"] >= 44 for t in targets), [
            (t.text, t.rect["height"]) for t in targets if t.rect["height"] < 44
        ]
