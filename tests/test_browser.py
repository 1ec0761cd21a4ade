"""The web page in Debian's Chromium, driven by Playwright, against a real uvicorn on 127.0.0.1.

Screenshots land in test-output/screenshots/. Without Chromium the module is skipped,
unless REQUIRE_BROWSER=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.data import COMMITTED_MODELS, REPO
from tests.utils.servers import serving

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing_browser() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = _missing_browser()
    if reason:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required here but cannot run: {reason}")
        pytest.skip(reason)
    with serving(COMMITTED_MODELS, tmp_path_factory.mktemp("browser") / "uvicorn.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url: str):
    from playwright.sync_api import sync_playwright

    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, base_url: str):
    """The page under its real Content-Security-Policy; any violation it reports fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Security Policy" in message.text else None)
    page.goto(base_url)
    page.wait_for_selector("#model-select option", state="attached")
    yield page
    context.close()
    assert violations == []


def test_upload_an_image_and_see_a_prediction(page) -> None:
    page.set_input_files("#file-input", str(REPO / "app" / "static" / "samples" / "test_00001_ship.png"))
    result = page.wait_for_selector(".result .verdict")
    assert "%" in result.inner_text()
    assert page.locator(".result .bar").count() == 5
    assert page.locator("#preview").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "upload-prediction.png"), full_page=True)


def test_noise_is_answered_as_none_of_the_ten_classes(page, tmp_path: Path) -> None:
    """The default model has a novelty score: noise gets the plain message, the classes greyed below it."""
    import numpy as np
    from PIL import Image

    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(noise)
    page.set_input_files("#file-input", str(noise))
    warning = page.wait_for_selector(".result.unknown .ood-warning")
    assert warning.inner_text() == "This does not look like any of the ten classes."
    assert page.locator(".result.unknown .bar").count() == 5, "the classes are still shown"
    assert float(page.locator(".result.unknown .verdict").evaluate("e => getComputedStyle(e).opacity")) < 1
    page.screenshot(path=str(SCREENSHOTS / "none-of-the-classes.png"), full_page=True)
    page.set_input_files("#file-input", str(REPO / "app" / "static" / "samples" / "test_00001_ship.png"))
    page.wait_for_selector(".result:not(.unknown) .verdict")
    assert page.locator(".ood-warning").count() == 0


def test_wrong_answer_feedback_is_recorded(page, base_url: str) -> None:
    import httpx

    page.set_input_files("#file-input", str(REPO / "app" / "static" / "samples" / "test_00001_ship.png"))
    page.wait_for_selector(".result .feedback select")
    page.click(".result .feedback button")
    assert "Choose the class" in page.locator(".result .feedback [role=status]").inner_text()
    predicted = page.locator(".result .verdict").inner_text().split(" · ")[0]
    truth = "frog" if predicted != "frog" else "cat"
    page.select_option(".result .feedback select", truth)
    page.click(".result .feedback button")
    page.wait_for_selector(f".result .feedback [role=status]:has-text('recorded as {truth}')")
    page.screenshot(path=str(SCREENSHOTS / "feedback.png"), full_page=True)
    report = httpx.get(f"{base_url}/monitoring", timeout=30).json()
    assert sum(version["labelled"] for version in report["versions"]) >= 1
    assert any(version["live_accuracy"] is not None for version in report["versions"])
    # The live-traffic panel shows it after a refresh: the version's volume, and its live accuracy.
    page.click("#monitoring-refresh")
    panel = page.locator("#monitoring-versions .log-card", has_text="labelled").first  # Other tests log too.
    panel.wait_for()
    text = panel.inner_text()
    assert "Predictions" in text and "95% CI" in text
    assert panel.locator("svg polyline").count() == 1
    panel.screenshot(path=str(SCREENSHOTS / "monitoring.png"))


def test_all_models_side_by_side(page) -> None:
    page.check("#all-models")
    page.click("#samples button >> nth=0")
    page.locator(".result").nth(1).wait_for()
    models = page.locator(".result h3").all_inner_texts()
    assert any(text.startswith("model_1") for text in models) and any(text.startswith("model_2") for text in models)
    page.screenshot(path=str(SCREENSHOTS / "all-models.png"), full_page=True)


def test_click_a_sample_with_the_keyboard(page) -> None:
    sample = page.locator("#samples button").nth(3)
    sample.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(".result .verdict")
    assert sample.get_attribute("aria-pressed") == "true"


def test_wrong_file_type_is_explained_in_plain_words(page, tmp_path: Path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    page.set_input_files("#file-input", str(text_file))
    error = page.wait_for_selector("#error:not([hidden])")
    assert "not an image the service understands" in error.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "error-wrong-type.png"))


def test_model_card_shows_layers_accuracy_curves_and_confusion(page) -> None:
    card = page.locator('.card[data-model="model_1"]')
    card.locator("dd").first.wait_for()
    assert "181,162" in card.inner_text()
    card.locator("summary", has_text="Layers").click()
    assert card.locator("table.layers tr").count() == 13  # Header + 12 layers.
    card.locator("summary", has_text="Training curves").click()
    _wait_until_loaded(card.locator("img.curves"))
    card.locator("summary", has_text="Confusion matrix").click()
    card.locator("summary", has_text="Per-class").click()
    card.scroll_into_view_if_needed()
    card.screenshot(path=str(SCREENSHOTS / "model-card.png"))


def test_comparison_answers_the_tutorial_question(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#compare-summary")).to_contain_text("parameters", timeout=30_000)
    summary = page.inner_text("#compare-summary")
    assert "model_2 has 252,378 parameters, 39% more than model_1's 181,162" in summary
    assert page.locator("#chart-accuracy polyline").count() == 2
    # The committed repeated runs: statistics, bands over seeds and the generated conclusion.
    page.wait_for_selector("#statistics:not([hidden])")
    assert "model_2 at 5 epochs" in page.inner_text("#statistics-conclusion")
    assert page.locator("#statistics-table tr").count() >= 4  # Header + model_1 and model_2's budgets.
    assert page.locator("#chart-bands polygon").count() == page.locator("#statistics-table tr").count() - 1
    page.locator("#compare").screenshot(path=str(SCREENSHOTS / "comparison.png"))


def test_model_card_shows_robustness_calibration_and_held_back_versions(page) -> None:
    card = page.locator('.card[data-model="model_1"]')
    card.locator("dd").first.wait_for()
    text = card.inner_text()
    assert "Held back: v3" in text and "promotion gate" in text
    default_card = page.locator('.card[data-model="model_2"]')
    default_card.locator("dd").first.wait_for()
    assert "JPEG q75" in default_card.inner_text() and "ECE" in default_card.inner_text()
    default_card.locator("summary", has_text="Reliability diagram").click()
    _wait_until_loaded(default_card.locator("img.reliability"))
    default_card.screenshot(path=str(SCREENSHOTS / "model-card-calibration.png"))


def test_model_card_names_the_runtime_and_what_int8_scores(page, base_url: str) -> None:
    import httpx

    models = httpx.get(f"{base_url}/models", timeout=10).json()["models"]
    (model,) = [m for m in models if m["name"] == "whitened_convnet"]
    (served,) = [v for v in model["versions"] if v["version"] == model["served_version"]]
    card = page.locator('.card[data-model="whitened_convnet"]')
    card.locator("dd").first.wait_for()
    text = card.inner_text()
    assert f"Runtime\n{served['backend']}" in text
    if served["int8_accuracy"]:  # int8 answers: its own accuracy beside TensorFlow's, as percentages.
        assert f"lossless {served['int8_accuracy']['lossless']:.2%}" in text and "(TensorFlow " in text


def _wait_until_loaded(image, timeout: float = 30.0) -> None:
    """The page's strict CSP forbids eval, so no string predicates (wait_for_function): poll instead."""
    deadline = time.monotonic() + timeout
    while image.evaluate("element => element.naturalWidth") == 0:
        if time.monotonic() > deadline:
            raise AssertionError("the image did not load")
        time.sleep(0.1)


def test_phone_sized_screen(browser, base_url: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(base_url)
    page.wait_for_selector("#model-select option", state="attached")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px wide)"
    page.screenshot(path=str(SCREENSHOTS / "phone.png"), full_page=True)
    context.close()


REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".opblock-summary-path"), ("/redoc", "h2")])
def test_the_api_documentation_works_offline(browser, base_url: str, path: str, rendered: str) -> None:
    """Swagger UI and ReDoc render every endpoint with the network cut off: nothing is fetched from
    anywhere but the service, and their Content-Security-Policy blocks nothing but ReDoc's own
    "API docs by Redocly" logo, which it names by its CDN address (the page works without it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def only_the_service(route) -> None:
        if route.request.url.startswith(base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_service)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Security Policy" in message.text else None)
    page.goto(base_url + path)
    page.wait_for_selector(rendered, timeout=20_000)
    shown = " ".join(page.locator(rendered).all_inner_texts())
    assert "/predict" in shown or "predict" in shown.lower()
    page.screenshot(path=str(SCREENSHOTS / f"api{path.replace('/', '-')}.png"))
    context.close()
    assert outside == [] and [text for text in violations if REDOC_LOGO not in text] == []
