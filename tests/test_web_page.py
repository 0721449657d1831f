"""The web page at ``/`` in a real headless browser against a live server with a tiny model."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imdb_sentiment.inference import SentimentClassifier
from imdb_sentiment.serving import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def classifier(tiny_classifier: Path, onnx_cache: Path) -> SentimentClassifier:
    """The CPU's default engine, ONNX Runtime int8: the page shades words all the same (the
    gradients come from the folder's PyTorch weights)."""
    return SentimentClassifier.load(tiny_classifier, device="cpu", backend="onnx")


@pytest.fixture(scope="module")
def server(classifier: SentimentClassifier) -> Iterator[str]:
    running, thread, address = _start(create_app(classifier, max_chars=300))
    yield address
    running.should_exit = True
    thread.join(timeout=10)


def _start(app) -> tuple[object, threading.Thread, str]:
    import uvicorn

    port = _free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    return running, thread, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def interpreter(classifier: SentimentClassifier, tiny_llm: Path):
    from imdb_sentiment.config import InferenceConfig
    from imdb_sentiment.interpretation import Interpreter, InterpretSettings

    settings = InterpretSettings(system="Explain the review as JSON.", aspects=["acting", "music", "other"],
                                 emotions=["joy", "anger", "neutral"], max_aspects=3, max_review_tokens=96,
                                 max_new_tokens=300, max_summary_chars=24)
    return Interpreter.load(tiny_llm, InferenceConfig(device="cpu", precision="fp32"), settings=settings,
                            classifier=classifier)


@pytest.fixture(scope="module")
def interpret_server(classifier: SentimentClassifier, interpreter) -> Iterator[str]:
    running, thread, address = _start(create_app(classifier, interpreter=interpreter))
    yield address
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--window-size=1000,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(options.arguments[-1].split("=", 1)[1], ignore_errors=True)


def _wait(browser, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


def _submit(browser, server: str, review: str) -> None:
    """Open the page, type ``review`` and press Analyze."""
    from selenium.webdriver.common.by import By

    browser.get(server)
    _wait(browser, lambda b: "Model" in b.find_element(By.ID, "footer").text)
    box = browser.find_element(By.ID, "review")
    box.clear()
    box.send_keys(review)
    browser.find_element(By.ID, "analyze").click()


def test_typing_a_review_shows_label_and_confidence(browser, server: str, classifier: SentimentClassifier,
                                                    tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    review = "A warm, funny and beautifully acted film. I loved every minute of it."
    _submit(browser, server, review)
    _wait(browser, lambda b: "shown" in b.find_element(By.ID, "result").get_attribute("class"))
    expected = classifier.predict([review])[0]
    shown = browser.find_element(By.ID, "label").text
    assert shown == expected["label"].capitalize()
    confidence = browser.find_element(By.ID, "confidence").text
    assert confidence == f"{round(expected['score'] * 1000) / 10:.1f}% confidence"
    bar = float(browser.find_element(By.ID, "bar").get_attribute("aria-valuenow"))
    assert bar == pytest.approx(expected["score"] * 100, abs=0.1)
    assert not browser.find_element(By.ID, "error").is_displayed()
    screenshot = tmp_path / "page.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000


def test_the_page_reports_errors(browser, server: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server)
    _wait(browser, lambda b: "Model" in b.find_element(By.ID, "footer").text)
    box = browser.find_element(By.ID, "review")
    box.clear()
    box.send_keys("x" * 301)  # over this server's 300-character limit
    browser.find_element(By.ID, "analyze").click()
    error = _wait(browser, lambda b: b.find_element(By.ID, "error").text or False)
    assert "too long" in error and "300" in error


def test_the_page_shades_words_by_their_weight(browser, server: str, classifier: SentimentClassifier) -> None:
    from selenium.webdriver.common.by import By

    from imdb_sentiment.explain import GradientExplainer

    review = "A warm, funny film. The ending was dreadful!"
    _submit(browser, server, review)
    spans = _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#explained .w") or False)
    expected = dict(GradientExplainer(classifier).explain([review])[0].top(None))
    assert browser.find_element(By.ID, "explained").text == review
    shown = {span.text.lower(): span for span in spans}
    assert {"warm", "funny", "dreadful", "ending"} <= set(shown)
    for word, span in shown.items():
        weight = float(span.get_attribute("data-weight"))
        assert weight == pytest.approx(expected[word], rel=1e-4)
        assert ("pos" in span.get_attribute("class")) == (weight > 0)
    alpha = {word: float(browser.execute_script("return arguments[0].style.getPropertyValue('--a')", span))
             for word, span in shown.items()}
    strongest = max(expected, key=lambda word: abs(expected[word]))
    assert alpha[strongest] == max(alpha.values())


def test_the_interpret_panel_fills_in_and_highlights_the_quotes(browser, interpret_server: str,
                                                                interpreter, server: str) -> None:
    from selenium.webdriver.common.by import By

    review = "The acting was wooden and the plot made no sense, but the soundtrack was gorgeous."
    expected = interpreter.interpret([review])[0]
    assert expected["aspects"], "the tiny model's greedy answer quotes the review (so marks are checked)"
    browser.get(interpret_server)
    button = _wait(browser, lambda b: b.find_element(By.ID, "interpret-button").is_displayed()
                   and b.find_element(By.ID, "interpret-button"))
    assert "interpreter" in browser.find_element(By.ID, "footer").text
    box = browser.find_element(By.ID, "review")
    box.clear()
    box.send_keys(review)
    button.click()
    _wait(browser, lambda b: b.find_element(By.ID, "who").text or False)
    assert browser.find_element(By.ID, "i-sentiment").text.startswith(expected["sentiment"])
    assert browser.find_element(By.ID, "i-rating").text == f"{expected['rating']} / 10 stars"
    assert browser.find_element(By.ID, "summary").text == expected["summary"].strip()
    items = browser.find_elements(By.CSS_SELECTOR, "#aspects li")
    assert len(items) == len(expected["aspects"])
    assert browser.find_element(By.ID, "quoted").text == review
    marks = [mark.text for mark in browser.find_elements(By.CSS_SELECTOR, "#quoted mark")]
    assert sorted(marks) == sorted(item["quote"] for item in expected["aspects"])
    assert len(browser.find_elements(By.CSS_SELECTOR, "#emotions .bar")) == len(expected["emotions"])
    assert "classifier" in browser.find_element(By.ID, "who").text
    browser.get(server)  # a server without an interpreter shows no Interpret button
    _wait(browser, lambda b: "Model" in b.find_element(By.ID, "footer").text)
    assert not browser.find_element(By.ID, "interpret-button").is_displayed()
