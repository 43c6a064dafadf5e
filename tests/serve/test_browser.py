"""The web page in a real browser: headless Chromium (Debian's chromium + chromium-driver) against a live server.

`make test` installs chromium and chromium-driver where they are missing
(see the Makefile's `browser` step); without them this test is skipped
with that reason.
"""

import shutil
import time

import httpx
import pytest

from .test_api import png_bytes

DOCUMENT = "A fast library to parse and write JSON files, with a streaming interface for large inputs."


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def browser():
    driver_path = shutil.which("chromedriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not driver_path or not chromium:
        pytest.skip("chromium and chromium-driver are not installed (`make test` installs them with apt-get)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def test_type_a_document_press_summarize_read_the_summary(browser, server, tmp_path, checkpoints):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    find = lambda id_: browser.find_element(By.ID, id_)  # noqa: E731
    wait_for(lambda: "text, vision, video" in find("status").text, what="the page to load the server's status")
    wait_for(lambda: find("beam").get_attribute("value") == "2", what="the checkpoint's beam")  # from /v1/models

    find("document").send_keys(DOCUMENT)
    find("summarize").click()
    summary = wait_for(lambda: find("summary").text, what="the summary")
    expected = httpx.post(server.url + "/v1/summarize", json={"documents": [DOCUMENT], "beam": 2}).json()["summaries"][0]
    assert summary == expected and find("text-error").text == ""
    heatmap = find("heatmap")
    assert int(heatmap.get_attribute("width")) > 100 and int(heatmap.get_attribute("height")) > 20

    # an image: five classes with bars
    image = tmp_path / "digit.png"
    image.write_bytes(png_bytes(__import__("numpy").random.default_rng(0).integers(0, 255, (8, 8))))
    upload = find("image-file")
    browser.execute_script("arguments[0].hidden = false", upload)
    upload.send_keys(str(image))
    wait_for(lambda: len(find("image-top").find_elements(By.TAG_NAME, "li")) == 5, what="the top-5 bars")

    # a TFRecord: each video's top labels
    upload = find("video-file")
    browser.execute_script("arguments[0].hidden = false", upload)
    upload.send_keys(str(checkpoints["synth"] / "validate0000.tfrecord"))
    wait_for(lambda: len(find("video-top").find_elements(By.CLASS_NAME, "video")) == 8, what="8 videos' labels")

    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a bad request shows the server's error on the page, and the next one works
    find("document").clear()
    find("summarize").click()
    assert "empty document" in wait_for(lambda: find("text-error").text, what="the error line")
    find("document").send_keys(DOCUMENT)
    find("summarize").click()
    assert wait_for(lambda: find("summary").text, what="the summary again") == expected
