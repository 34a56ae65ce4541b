"""The pages in a real headless Chromium (Debian's `chromium` and `chromium-driver`, which `.ci/run` installs): each
loads with no console error, fetches nothing but its own file and data URIs, every in-page link has its target,
every image decodes, and a screenshot is not blank. Without the browser these skip, unless `VGR_ETL_BROWSER=1`
(CI) says it must be there."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from beam_pipelines.cli import main
from beam_pipelines.sinks.pages import validation_page
from tests.conftest import RUNNER, report_of

pytestmark = pytest.mark.slow

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("VGR_ETL_BROWSER") == "1":
        raise RuntimeError(
            "VGR_ETL_BROWSER=1 but chromium or chromedriver is not on PATH (apt: chromium chromium-driver)"
        )
    pytest.skip("no chromium and chromedriver on PATH (apt: chromium chromium-driver)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def outputs(demo, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pages")
    for source in ("vgr", "visualprocessbench"):
        args = [*demo[source].argv(str(root / source)), "--max_reject_fraction=0.5", "--progress=off", RUNNER]
        assert main(["run", *args]) == 0
    return {source: root / source for source in ("vgr", "visualprocessbench")}


@dataclasses.dataclass
class Loaded:
    errors: list[str]
    fetched: list[str]
    dangling: list[str]
    broken_images: int
    images: int
    screenshot: Image.Image
    verdict_top: float | None
    viewport: float


def load(driver, page: Path) -> Loaded:
    driver.get_log("browser"), driver.get_log("performance")  # drop what earlier pages logged
    driver.get(page.as_uri())
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    fetched = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            fetched.append(message["params"]["request"]["url"])
    dangling = driver.execute_script(
        "return [...document.querySelectorAll('a[href^=\"#\"]')].map(a => a.getAttribute('href').slice(1))"
        ".filter(id => !document.getElementById(id))"
    )
    broken = driver.execute_script(
        "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length"
    )
    images = driver.execute_script("return document.images.length")
    verdict = driver.execute_script(
        "const v = document.getElementById('verdict'); return v ? v.getBoundingClientRect().top : null"
    )
    viewport = driver.execute_script("return window.innerHeight")
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    return Loaded(errors, fetched, dangling, broken, images, shot, verdict, viewport)


def assert_sound(loaded: Loaded, page: Path) -> None:
    assert loaded.errors == [], "no console errors"
    assert [url for url in loaded.fetched if not url.startswith(("data:", page.as_uri()))] == [], "nothing fetched"
    assert loaded.dangling == [], "every in-page link has its target"
    assert loaded.broken_images == 0
    small = loaded.screenshot.resize((140, 90))
    assert len(set(small.getdata())) > 20 and max(ImageStat.Stat(loaded.screenshot).stddev) > 20, "not blank"


@pytest.mark.parametrize("source", ["vgr", "visualprocessbench"])
@pytest.mark.parametrize("page", ["validation", "preview"])
def test_a_runs_pages_load_clean_in_a_browser(browser, outputs, source, page):
    path = outputs[source] / page / "index.html"
    loaded = load(browser, path)
    assert_sound(loaded, path)
    if page == "validation":
        assert loaded.verdict_top is not None and loaded.verdict_top < loaded.viewport / 3, "the verdict comes first"
        assert loaded.images >= 3, "the distributions are drawn"
    else:
        assert loaded.images >= min(12, report_of(outputs[source])["accepted"]), "every shown sample has its image"


def test_an_unpublished_runs_verdict_is_the_first_thing_seen(browser, outputs, tmp_path):
    report = report_of(outputs["vgr"])
    report.update(input_records=80, accepted=0, rejected=80, rejected_by_check={"image_missing": 80})
    failure = "rejected 80 of 80 input records (100.0%), above --max_reject_fraction=0.1; v000001 not published"
    path = tmp_path / "index.html"
    path.write_text(validation_page(report, {}, failure=failure), encoding="utf-8")
    loaded = load(browser, path)
    assert_sound(loaded, path)
    top = loaded.screenshot.crop((0, 0, loaded.screenshot.width, int(loaded.viewport / 3)))
    reddish = sum(1 for r, g, b in top.resize((140, 30)).getdata() if r > 240 and 215 < g < 240 and b < 240)
    assert reddish > 50, "the red verdict box is in the first third of the screen"
    assert loaded.verdict_top < loaded.viewport / 3
