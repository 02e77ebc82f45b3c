"""A real server and a real browser for map tests and benchmarks: uvicorn in a thread, and
Debian's headless Chromium driven by Debian's chromedriver with every non-local host unreachable.

Never a downloaded browser: a missing /usr/bin/chromium or /usr/bin/chromedriver is an error that
says to run ``scripts/setup --test``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = os.environ.get("MANGROVE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MANGROVE_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(
    os.environ.get("MANGROVE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)


@contextmanager
def serving(app):
    """``app`` under uvicorn on a free loopback port; yields the base URL."""
    import uvicorn

    # IPPROTO_TCP given explicitly: without it asyncio leaves Nagle on and responses wait ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def chromium(width: int = 1280, height: int = 900, *, alias: str | None = None):
    """A headless Chromium with the network off: every host but 127.0.0.1 fails to resolve and
    anything else would go to a dead proxy. Console messages are collected (``get_log``).
    ``alias``: a host name that resolves to 127.0.0.1 too, as a station laptop's LAN name would
    (unlike 127.0.0.1, a page from it over http is not a secure context)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).exists() or shutil.which(path)):
            raise RuntimeError(f"{path} is missing: install Debian's {package} (scripts/setup --test does)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--window-size={width},{height}",
        "--host-resolver-rules="
        + (f"MAP {alias} 127.0.0.1 , " if alias else "")
        + "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
    ):
        options.add_argument(argument)
    if alias:
        options.add_argument(f"--proxy-bypass-list={alias}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for_render(driver, timeout_s: float = 30.0) -> float:
    """performance.now() (ms) at Leaflet's first full render, as marked by MangroveMaps.ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = driver.execute_script("return window.mangroveRenderedAt || null")
        if value:
            return float(value)
        time.sleep(0.02)
    raise AssertionError(f"the map did not finish rendering in {timeout_s} s")


def severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def sign_in(driver, base_url: str, username: str, password: str = "mangrove-demo") -> None:
    from selenium.webdriver.common.by import By

    driver.get(base_url + "/login")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    deadline = time.monotonic() + 10
    while driver.current_url.endswith("/login") and time.monotonic() < deadline:
        time.sleep(0.05)
    driver.get_log("browser")  # drop the login page's messages


def wait_until_replaced(driver, element, timeout_s: float = 30.0) -> None:
    """Wait until the page holding ``element`` has been replaced by the next one (a form's answer)
    and that one has finished loading. Chromium may answer a question about a node of the page
    being unloaded with "Node with given id does not belong to the document" instead of "stale
    element" (Selenium's ``staleness_of`` lets that through): both mean the old page is gone."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    def gone(_):
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    WebDriverWait(driver, timeout_s).until(gone)
    WebDriverWait(driver, timeout_s).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


# Every visible control that is tapped: at least 44 px tall (inline links in running text aside;
# a radio button or checkbox is tapped by its label, the .choice row).
TAP_TARGETS = (
    "button, select, textarea, a.button, .button-link, .choice, .case-link, .incident-list a, .crumbs a, "
    "input:not([type=hidden]):not([type=radio]):not([type=checkbox])"
)
# What a person meets on a page: sideways scrolling, controls too small to tap or beyond the right
# edge, and text with a contrast under 4.5:1 against what is behind it (WCAG AA).
LAYOUT_PROBLEMS = """
const targets = arguments[0];
const problems = [];
// The width without the vertical scrollbar (innerWidth counts it: a page 15 px too wide would pass).
const width = document.documentElement.clientWidth;
if (document.documentElement.scrollWidth > width) {
  problems.push(`scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
}
for (const el of document.querySelectorAll(targets)) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) continue;
  if (r.height < 43.5) problems.push(`small target (${Math.round(r.height)} px): ${el.outerHTML.slice(0, 80)}`);
  if (r.right > width + 0.5) problems.push(`beyond the right edge: ${el.outerHTML.slice(0, 80)}`);
}
const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
const lum = ([r, g, b]) => {
  const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const background = (el) => {
  for (; el; el = el.parentElement) {
    const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
  }
  return [255, 255, 255];
};
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const seen = new Set();
while (walker.nextNode()) {
  const el = walker.currentNode.parentElement;
  if (!walker.currentNode.textContent.trim() || seen.has(el)) continue;
  seen.add(el);
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden' || el.getClientRects().length === 0) continue;
  const a = lum(rgb(style.color)), b = lum(background(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)}: "${walker.currentNode.textContent.trim().slice(0, 40)}"`);
}
return problems;
"""


def layout_problems(driver, targets: str = TAP_TARGETS) -> list[str]:
    """The page as drawn, as a person would find fault with it (see LAYOUT_PROBLEMS): [] when fine."""
    return driver.execute_script(LAYOUT_PROBLEMS, targets)
