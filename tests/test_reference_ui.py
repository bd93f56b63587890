"""The reference app's upload through its real UI in headless Chromium: a bad file gets one
sentence in the status line and the app keeps serving; a good one becomes the image to edit."""

import re
from pathlib import Path

import pytest
from imagejourney.journeys.target import ReferenceApp
from PIL import Image
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with ReferenceApp("tiny", tmp_path_factory.mktemp("app") / "app.log") as app:
        yield app.url


def upload(page, path: Path) -> None:
    """As a creator does: click the button, pick the file in the chooser."""
    with page.expect_file_chooser() as chooser:
        page.click("#upload")
    chooser.value.set_files(path)


def test_upload_validation_and_inpainting_an_upload(page, app_url, tmp_path):
    page.goto(app_url)
    status = page.locator("#status")
    (tmp_path / "notes.png").write_text("meeting notes, not a picture")
    upload(page, tmp_path / "notes.png")
    expect(status).to_have_text("Error · upload · the uploaded file is not an image; upload a PNG, JPEG or WebP image")
    Image.new("RGB", (32, 32)).save(tmp_path / "tiny.png")
    upload(page, tmp_path / "tiny.png")
    expect(status).to_have_text("Error · upload · the uploaded image is 32×32 px; each side must be 64 to 4096 px")

    Image.new("RGB", (300, 200), (30, 60, 200)).save(tmp_path / "photo.png")
    upload(page, tmp_path / "photo.png")  # the app kept serving after the bad files
    expect(status).to_have_text(re.compile(r"Done · upload · 300×200 px · job \d+"))
    expect(page.locator("#output img")).to_be_visible()

    page.fill("#edit-prompt textarea", "a yellow sun")
    page.click("#mask input[value='top']")
    page.click("#edit")
    expect(status).to_have_text(re.compile(r"Done · edit · seed 42 · job \d+"), timeout=60_000)
    with page.expect_download() as download:
        page.click("#export")
    with Image.open(download.value.path()) as exported:
        assert exported.text["mask"] == "top" and exported.size == (128, 128)
        pixels = exported.convert("RGB").load()
        assert pixels[64, 100] == (30, 60, 200)  # the bottom half is the uploaded photo's


def test_aspect_ratio_choice_shapes_the_image(page, app_url):
    page.goto(app_url)
    page.fill("#prompt textarea", "a wide banner")
    page.click("#aspect input[value='16:9']")
    page.click("#generate")
    expect(page.locator("#status")).to_have_text(re.compile(r"Done · generate · seed 42 · job \d+"), timeout=60_000)
    with page.expect_download() as download:
        page.click("#export")
    with Image.open(download.value.path()) as exported:
        assert exported.size == (128, 72) and exported.text["aspect"] == "16:9"
