"""A phone running the field app, for its browser tests: Debian's Chromium at phone width, the
network between it and the service (which the test can take away or break), and the service's
database to count what really arrived."""

from __future__ import annotations

import time
from dataclasses import dataclass

import shapely
from sqlalchemy import func, select

from patrol.models import Grid
from utils.browser import ARTIFACTS
from utils.factories import PASSWORD
from utils.network import LoseAnswers, SwitchableProxy

SHOTS = ARTIFACTS / "fieldapp"


@dataclass
class Phone:
    """A phone running the app: the browser, the network between it and the service, and the
    service's database (to count what really arrived)."""

    driver: object
    proxy: SwitchableProxy
    faults: LoseAnswers
    sessions: object
    name: str

    @property
    def url(self) -> str:
        return self.proxy.url + "/app/"

    # --- the network ---
    def offline(self) -> None:
        self.proxy.down()
        self.driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latitude": 0, "downloadThroughput": -1, "uploadThroughput": -1, "latency": 0},
        )

    def online(self) -> None:
        self.proxy.up()
        self.driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "downloadThroughput": -1, "uploadThroughput": -1, "latency": 0},
        )

    def position(self, lon: float, lat: float, accuracy: float = 6.0) -> None:
        self.driver.execute_cdp_cmd(
            "Emulation.setGeolocationOverride", {"latitude": lat, "longitude": lon, "accuracy": accuracy}
        )

    # --- the page ---
    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def tap(self, css: str) -> None:
        """Scroll the control to the middle of the screen (clear of the tab bar), then tap it."""
        element = self.find(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def type(self, css: str, text: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(text)

    def text(self, css: str) -> str:
        return self.driver.execute_script(
            "var e = document.querySelector(arguments[0]); return e ? e.innerText : null", css
        )

    def visible(self, css: str) -> bool:
        return bool(
            self.driver.execute_script(
                "var e = document.querySelector(arguments[0]); return !!e && e.offsetParent !== null", css
            )
        )

    def wait(self, condition, what: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        self.shot(f"timeout-{what.replace(' ', '-')[:40]}")
        raise AssertionError(
            f"timed out after {timeout} s waiting for {what}; page says: {self.text('main')!r}"
        )

    def idb(self, script: str):
        """Run ``script`` (an expression giving a promise, with MP in scope) and return its value."""
        return self.driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            f"Promise.resolve().then(function () {{ return {script}; }})"
            ".then(function (v) { done(JSON.parse(JSON.stringify(v === undefined ? null : v))); },"
            " function (e) { done({error: String(e)}); });"
        )

    def outbox(self) -> list[dict]:
        return self.idb(
            "MP.store.items().then(function (items) { return items.map(function (i) {"
            " return {id: i.id, kind: i.kind, state: i.state, error: i.error, result: i.result,"
            " photos: (i.photos || []).length}; }); })"
        )

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / f"{self.name}-{name}.png"))

    def sign_in(self, username: str = "member", password: str = PASSWORD) -> None:
        self.driver.get(self.url)
        self.wait(lambda: self.visible("#view-signin"), "the sign-in form")
        self.type("#username", username)
        self.type("#password", password)
        self.tap("#signin button[type=submit]")
        self.wait(lambda: self.visible("#view-patrol"), "the patrol view")
        # Ready for offline: the worker controls the page and the side's grids are on the phone.
        self.wait(
            lambda: self.driver.execute_script("return !!navigator.serviceWorker.controller"),
            "the service worker to take control",
        )
        self.wait(
            lambda: self.idb("MP.store.get('grids:GD-LJ').then(function (g) { return !!g; })"), "grids cached"
        )
        self.wait(
            lambda: self.idb("MP.store.get('categories').then(function (c) { return !!c; })"),
            "categories cached",
        )

    # --- the service's side ---
    def count(self, model, *where) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where))


def inside(sessions, code: str) -> tuple[float, float]:
    """A point well inside grid ``code`` (lon, lat)."""
    with sessions() as session:
        wkb = session.scalar(select(func.ST_AsBinary(Grid.geom)).where(Grid.code == code))
    point = shapely.from_wkb(bytes(wkb)).representative_point()
    return point.x, point.y
