"""The web app in a real browser: ``superres app`` serves it, headless Chromium uploads a file.

Debian's ``chromium`` is driven by Playwright (``make test`` installs it); the test is skipped only
where that browser is not installed at all.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, free_port, serving
from PIL import Image
from test_app import photo, save_edsr

from superres.data.degrade import bicubic_resize

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.is_file(),
                       reason=f"{CHROMIUM} not installed (Debian package `chromium`; `make test` installs it)"),
    pytest.mark.timeout(120),
]


@pytest.fixture
def server(tmp_path):
    """``superres app`` on a free local port with a tiny x4 EDSR; killed (with its children) at the end."""
    save_edsr(tmp_path / "models" / "edsr", 4)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "superres", "app", "--models", str(tmp_path / "models"), "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with serving(command, f"{url}/_stcore/health", None, env, tmp_path / "app.log", seconds=40):
        yield url


def test_upload_in_chromium_shows_the_result(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    hr = photo(96, 128)
    Image.fromarray(bicubic_resize(hr, 1 / 4)).save(tmp_path / "small.png")
    Image.fromarray(hr).save(tmp_path / "original.png")
    shot = tmp_path / "page.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1700})
            page.goto(server)
            inputs = page.locator("input[type=file]")
            expect(inputs).to_have_count(2, timeout=30_000)
            inputs.nth(0).set_input_files(tmp_path / "small.png")
            inputs.nth(1).set_input_files(tmp_path / "original.png")
            result = page.get_by_role("img", name="edsr x4")
            expect(result).to_be_visible(timeout=30_000)
            expect(page.get_by_text("PSNR-Y edsr")).to_be_visible()
            expect(page.get_by_role("button", name="Download the edsr result (PNG)")).to_be_visible()
            page.wait_for_load_state("networkidle")
            size = result.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            page.screenshot(path=shot, full_page=True)
        finally:
            browser.close()
    assert size == [128, 96]
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[0] >= 1700 and image.shape[1] == 1280
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colours) > 2000, "the screenshot should show photographs, not a blank page"
    assert image.std() > 20
