"""The field app in Debian's Chromium, through a proxy that can take the network away, on a phone-
sized window with geolocation granted and overridden through the DevTools protocol."""

from __future__ import annotations

import pytest
from utils.browser import chromium, serving
from utils.factories import add_users
from utils.fieldapp import Phone
from utils.network import LoseAnswers, SwitchableProxy


@pytest.fixture
def phone(engine, settings, sessions, request):
    from api.app import create_app

    add_users(sessions, "member", "member-2")
    faults = LoseAnswers(create_app(settings=settings, engine=engine))
    with serving(faults) as base:
        proxy = SwitchableProxy(int(base.rsplit(":", 1)[1]))
        driver = chromium(390, 844)
        try:
            driver.set_script_timeout(30)
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd(
                "Browser.grantPermissions", {"origin": proxy.url, "permissions": ["geolocation"]}
            )
            yield Phone(driver, proxy, faults, sessions, request.node.name.replace("[", "-").rstrip("]"))
        finally:
            driver.quit()
            proxy.close()
