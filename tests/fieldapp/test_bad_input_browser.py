"""What goes wrong in the field gets a message in the app that says what to do, and nothing queued
is lost: a photo that is not an image, a position far outside the region, a recording with no
usable fixes, a phone whose storage is full."""

from __future__ import annotations

import time

from utils.fieldapp import inside


def queued(phone) -> int:
    return len(phone.outbox())


def test_a_file_that_is_not_an_image_is_named_beside_the_photo_field(phone, tmp_path):
    phone.sign_in()
    fake = tmp_path / "IMG_0004.jpg"
    fake.write_text("this is not a photo")
    phone.tap('.tabs button[data-view="report"]')
    phone.find("#photos").send_keys(str(fake))
    message = phone.wait(lambda: phone.text('.field-error[data-for="photos"]'), "the photo's message")
    assert "IMG_0004.jpg" in message and "not an image" in message
    assert phone.driver.execute_script("return document.querySelectorAll('#photo-list img').length") == 0
    phone.shot("1-not-an-image")


def test_a_position_far_outside_the_region_is_not_queued(phone):
    phone.sign_in()
    phone.position(116.40, 39.90)  # Beijing
    phone.tap('.tabs button[data-view="report"]')
    from selenium.webdriver.support.ui import Select

    Select(phone.find("#category")).select_by_value("cutting")
    phone.tap("#locate")
    phone.wait(lambda: "116.4" in (phone.text("#position") or ""), "the position")
    phone.tap("#report button[type=submit]")
    message = phone.wait(lambda: phone.text('.field-error[data-for="position"]'), "the position's message")
    assert "far outside the region" in message
    assert "Not saved" in phone.text("#report-error")
    assert queued(phone) == 0
    phone.shot("1-far-away")


def test_a_recording_without_usable_fixes_says_what_to_do_and_is_kept(phone):
    lon, lat = inside(phone.sessions, "LJ-GQ-02")
    phone.position(lon, lat, accuracy=800)  # indoors, under the canopy
    phone.sign_in()
    phone.tap("#rec-start")
    for i in range(4):
        phone.position(lon + i * 1e-5, lat, accuracy=800)
        time.sleep(0.4)
    phone.wait(lambda: "Poor accuracy" in (phone.text("#rec-error") or ""), "the accuracy warning")
    phone.tap("#rec-stop")
    phone.wait(lambda: phone.visible("#finish"), "the finish form")
    phone.tap("#finish button[type=submit]")
    message = phone.wait(lambda: phone.text("#finish-error"), "the no-usable-fixes message")
    assert "No usable fixes" in message and "resume" in message
    assert queued(phone) == 0
    recordings = phone.idb("MP.store.recordings()")
    assert len(recordings) == 1  # kept: resume outside, or delete it on purpose
    phone.shot("1-no-usable-fixes")


def test_full_storage_on_the_phone_is_said_in_words_and_the_form_is_kept(phone, tmp_path):
    import numpy as np
    from PIL import Image

    photo = tmp_path / "IMG_0005.jpg"
    noise = np.random.default_rng(3).integers(0, 255, (1500, 2000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(photo, "JPEG", quality=90)
    phone.position(*inside(phone.sessions, "LJ-GQ-03"))
    phone.sign_in()
    from selenium.webdriver.support.ui import Select

    phone.tap('.tabs button[data-view="report"]')
    Select(phone.find("#category")).select_by_value("cutting")
    phone.tap("#locate")
    phone.wait(lambda: "Grid" in (phone.text("#position") or ""), "the position")
    phone.type("#description", "a full phone")
    phone.find("#photos").send_keys(str(photo))
    phone.wait(
        lambda: (
            phone.driver.execute_script("return document.querySelectorAll('#photo-list img').length") == 1
        ),
        "the photo",
    )
    # The phone's storage is full: IndexedDB refuses the write with QuotaExceededError. (Chromium's
    # DevTools quota override does not make IndexedDB refuse writes here, so the refusal is
    # injected where the browser raises it; everything above it is the app's own code.)
    phone.driver.execute_script(
        "window.realPut = IDBObjectStore.prototype.put;"
        "IDBObjectStore.prototype.put = function () {"
        " throw new DOMException('The quota has been exceeded.', 'QuotaExceededError'); };"
    )
    phone.tap("#report button[type=submit]")
    message = phone.wait(lambda: phone.text("#report-error"), "the storage message")
    assert "storage is full" in message
    assert queued(phone) == 0
    assert phone.find("#description").get_attribute("value") == "a full phone"  # nothing typed is lost
    assert phone.driver.execute_script("return document.querySelectorAll('#photo-list img').length") == 1
    phone.shot("1-storage-full")
    phone.driver.execute_script("IDBObjectStore.prototype.put = window.realPut;")
    phone.tap("#report button[type=submit]")
    phone.wait(lambda: queued(phone) == 1, "the report queued once there is space")
