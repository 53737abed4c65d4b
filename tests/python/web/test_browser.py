"""The web page in a real browser: Debian's headless Chromium, driven by selenium through the
system's chromedriver (nothing is downloaded), against ``create_app`` served by uvicorn on
127.0.0.1 over a catalog ingested from scikit-image's photos (default heads: text search works).

One test walks the page the way a person would: a text search, labelling four cards (buttons
and keys), a refine round (screenshot of the grid saved as a test artifact), the round history
and paging, the full-size view, the help, an export through the page's own links, undo and redo,
a reload that resumes the session, an API error shown on the page; and checks that the page
fetched nothing from elsewhere and logged no error.

Artifacts (under the repository's ``target/test-artifacts/``): ``web-grid.png``, the grid after
the refine round; ``web-failure.png``, the page when a step timed out.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "the browser test drives Debian's chromium and chromium-driver (/usr/bin/chromium, "
        "/usr/bin/chromedriver): not installed here (make's set-up installs them)",
        allow_module_level=True,
    )

import uvicorn  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from clipbranches import testing  # noqa: E402
from clipbranches.cli import main  # noqa: E402
from clipbranches.web import create_app  # noqa: E402

#: Where the screenshot of the grid after the refine round is kept (the repository's target/).
ARTIFACT = Path(__file__).resolve().parents[3] / "target" / "test-artifacts" / "web-grid.png"
#: The page as it was when a step timed out.
FAILURE = ARTIFACT.with_name("web-failure.png")
PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "camera", "coins", "clock", "moon", "horse", "brick", "grass")
WAIT_S = 30.0


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """33 real photos: each whole and two crops."""
    folder = tmp_path_factory.mktemp("browser-photos")
    testing.photo_views(folder, PHOTOS)
    return folder


@pytest.fixture(scope="module")
def catalog(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The photos ingested with the default heads (text search works: no captions needed)."""
    path = tmp_path_factory.mktemp("browser-catalog") / "photos"
    assert main(["ingest", str(photos), str(path), "--device", "cpu", "--quiet"]) == 0
    return path


@pytest.fixture(scope="module")
def server(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app under uvicorn in a thread, on a free port of 127.0.0.1; yields its base URL."""
    app = create_app({"photos": catalog}, state_dir=tmp_path_factory.mktemp("browser-state"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", access_log=False)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium through the system's chromedriver (selenium-manager never runs: the
    driver's path is given), logging the page's console."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# -- helpers -----------------------------------------------------------------------------------


def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    """Wait for ``condition`` with the page idle; on a time-out, say what the page showed."""

    def idle_and(d: WebDriver) -> Any:
        return d.find_element(By.TAG_NAME, "body").get_attribute("data-busy") == "0" and condition(d)

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(idle_and)
    except Exception as e:
        FAILURE.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(FAILURE))
        raise AssertionError(
            f"waiting for {what}: {e!r}; the page says: {message(driver)!r} (screenshot: {FAILURE})"
        ) from None


def message(driver: WebDriver) -> str | None:
    """The page's message box text (None: hidden)."""
    box = driver.find_element(By.ID, "message")
    return box.text if box.is_displayed() else None


def body(driver: WebDriver, name: str) -> str | None:
    return driver.find_element(By.TAG_NAME, "body").get_attribute(f"data-{name}")


def cards(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#grid .card")


def card_names(driver: WebDriver) -> list[str]:
    return [c.find_element(By.CSS_SELECTOR, ".name").text for c in cards(driver)]


def unfocus(driver: WebDriver) -> None:
    """Take the keyboard focus off any button or box: the page's keys go to the grid."""
    driver.execute_script("if (document.activeElement) document.activeElement.blur();")


def press(driver: WebDriver, *keys: str) -> None:
    ActionChains(driver).send_keys(*keys).perform()


def fetch(driver: WebDriver, url: str) -> dict[str, Any]:
    """GET ``url`` from the page's own JS context (same origin, same cookies): status, type, the
    first bytes as Latin-1 text and the length."""
    script = """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(async (r) => {
            const bytes = new Uint8Array(await r.arrayBuffer());
            const head = Array.from(bytes.slice(0, 400), (b) => String.fromCharCode(b)).join("");
            done({status: r.status, type: r.headers.get("content-type"), head, length: bytes.length});
        }).catch((e) => done({status: -1, type: null, head: String(e), length: 0}));
    """
    return driver.execute_async_script(script, url)


def session_of(driver: WebDriver, server: str) -> dict[str, Any]:
    """The page's session as the server has it."""
    script = "const done = arguments[1]; fetch(arguments[0]).then((r) => r.text()).then(done);"
    return json.loads(driver.execute_async_script(script, f"{server}/api/sessions/{body(driver, 'session')}"))


def visible_images_loaded(driver: WebDriver) -> bool:
    """Every card picture in the window has loaded a real image."""
    return driver.execute_script(
        """
        const imgs = Array.from(document.querySelectorAll('#grid .card img'))
            .filter((i) => i.getBoundingClientRect().top < window.innerHeight);
        return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
        """
    )


def severe_logs(driver: WebDriver) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


# -- the test ----------------------------------------------------------------------------------


def test_search_label_refine_page_export_undo_in_chromium(server: str, browser: WebDriver, photos: Path) -> None:
    driver = browser
    started = time.perf_counter()
    driver.get(f"{server}/")
    wait(driver, lambda d: body(d, "ready") == "1" and body(d, "session"), "the page to open a session")
    assert message(driver) is None
    sid = body(driver, "session")
    assert driver.find_element(By.ID, "catalog-name").text.startswith("photos")  # one catalog: chosen
    assert not driver.find_element(By.ID, "catalog-pick").is_displayed()
    assert driver.find_element(By.ID, "undo").get_attribute("disabled") is not None
    models = Select(driver.find_element(By.ID, "model"))
    assert {o.get_attribute("value") for o in models.options} >= {"hybrid", "branch", "linear"}

    # A text search, 12 cards a page.
    Select(driver.find_element(By.ID, "page-size")).select_by_visible_text("12")
    query = driver.find_element(By.ID, "query")
    query.send_keys("a cat")
    driver.find_element(By.ID, "search-button").click()
    wait(driver, lambda d: body(d, "round") == "0" and len(cards(d)) == 12, "the text search's first page")
    assert message(driver) is None, message(driver)
    assert driver.find_element(By.ID, "page-info").text.startswith("page 1 of 3, 33 items")
    names = card_names(driver)
    assert names[0].startswith("chelsea"), names
    wait(driver, visible_images_loaded, "the thumbnails")
    first = cards(driver)[0].find_element(By.TAG_NAME, "img")
    assert first.get_attribute("src").endswith("/thumbnail")

    # Label 4 cards: two cats positive and one other negative by their buttons, one more
    # negative by keys (Home, arrows to it, n).
    cats = [i for i, n in enumerate(names) if n.startswith("chelsea")]
    others = [i for i, n in enumerate(names) if not n.startswith("chelsea")]
    assert len(cats) >= 2, names
    assert len(others) >= 2, names
    for index in cats[:2]:
        cards(driver)[index].find_element(By.CSS_SELECTOR, "[data-action=positive]").click()
        wait(driver, lambda d, i=index: cards(d)[i].get_attribute("data-label") == "positive", "a positive label")
    cards(driver)[others[-1]].find_element(By.CSS_SELECTOR, "[data-action=negative]").click()
    wait(driver, lambda d: cards(d)[others[-1]].get_attribute("data-label") == "negative", "a negative label")
    press(driver, Keys.HOME, *[Keys.ARROW_RIGHT] * others[-2], "n")
    keyed = int(cards(driver)[others[-2]].get_attribute("data-item-id"))
    wait(driver, lambda d: cards(d)[others[-2]].get_attribute("data-label") == "negative", "a label by key")
    assert "focused" in cards(driver)[others[-2]].get_attribute("class")
    assert driver.find_element(By.ID, "labels-summary").text == "2 positive · 2 negative"
    positives = [int(cards(driver)[i].get_attribute("data-item-id")) for i in cats[:2]]
    negatives = [int(cards(driver)[i].get_attribute("data-item-id")) for i in others[-2:]]
    saved = session_of(driver, server)
    assert sorted(saved["positives"]) == sorted(positives)
    assert sorted(saved["negatives"]) == sorted(negatives)
    assert driver.find_element(By.ID, "undo").get_attribute("disabled") is None

    # A refine round with the options panel's model and seed.
    models.select_by_value("hybrid")
    seed = driver.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("7")
    driver.find_element(By.ID, "refine").click()
    wait(driver, lambda d: body(d, "round") == "1", "the refine round")
    assert message(driver) is None, message(driver)
    refined = [int(c.get_attribute("data-item-id")) for c in cards(driver)]
    assert set(refined[:2]) == set(positives)  # the labelled positives first, pinned
    assert all(c.get_attribute("data-pinned") == "1" for c in cards(driver)[:2])
    round_info = driver.find_element(By.ID, "round-info").text
    assert round_info.startswith("#1 refine hybrid (2+ 2−, seed 7)"), round_info
    assert "train" in driver.find_element(By.ID, "timings").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#rounds [data-round]")) == 2
    wait(driver, visible_images_loaded, "the refine round's thumbnails")
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACT))
    print(f"\nscreenshot of the grid after the refine round: {ARTIFACT}")

    # The full-size view of the first card (Enter), with its metadata; Escape closes it.
    unfocus(driver)
    press(driver, Keys.HOME, Keys.ENTER)
    wait(driver, lambda d: d.find_element(By.ID, "viewer").is_displayed(), "the full-size view")
    loaded = "const i = document.getElementById('viewer-image'); return i.complete && i.naturalWidth > 0"
    wait(driver, lambda d: d.execute_script(loaded), "the full-size image")
    viewer_image = driver.find_element(By.ID, "viewer-image")
    assert viewer_image.get_attribute("src").endswith(f"/items/{refined[0]}/image")
    fields = {e.get_attribute("data-field"): e.text for e in driver.find_elements(By.CSS_SELECTOR, "#viewer-meta dd")}
    assert fields["name"].startswith("chelsea"), fields
    assert fields["rank"].startswith("1 of"), fields
    assert "×" in fields["size"], fields
    press(driver, Keys.ESCAPE)
    wait(driver, lambda d: not d.find_element(By.ID, "viewer").is_displayed(), "the view to close")
    press(driver, "?")
    wait(driver, lambda d: d.find_element(By.ID, "help").is_displayed(), "the help")
    press(driver, Keys.ESCAPE)
    wait(driver, lambda d: not d.find_element(By.ID, "help").is_displayed(), "the help to close")

    # The round history back to the search; paging forward (button, then ]) and back (PageUp).
    driver.find_element(By.CSS_SELECTOR, "#rounds [data-round='0']").click()
    wait(driver, lambda d: body(d, "round") == "0" and body(d, "page") == "0", "round 0 again")
    page_one = card_names(driver)
    assert page_one == names
    labels = {c.get_attribute("data-item-id"): c.get_attribute("data-label") for c in cards(driver)}
    assert labels[str(keyed)] == "negative"  # labels show on every round
    driver.find_element(By.ID, "next-page").click()
    wait(driver, lambda d: body(d, "page") == "1", "page 2")
    assert driver.find_element(By.ID, "page-info").text.startswith("page 2 of 3, 33 items (13–24)")
    page_two = card_names(driver)
    assert len(page_two) == 12
    assert not set(page_two) & set(page_one)
    press(driver, "]")
    wait(driver, lambda d: body(d, "page") == "2", "page 3 by key")
    press(driver, Keys.PAGE_UP)
    wait(driver, lambda d: body(d, "page") == "1", "page 2 again by key")
    assert card_names(driver) == page_two
    driver.find_element(By.ID, "prev-page").click()
    wait(driver, lambda d: body(d, "page") == "0", "page 1 again")
    assert driver.find_element(By.ID, "prev-page").get_attribute("disabled") is not None
    driver.find_element(By.CSS_SELECTOR, "#rounds [data-round='1']").click()
    wait(driver, lambda d: body(d, "round") == "1", "the refine round again")

    # Export the refine round through the page's own links.
    parquet = driver.find_element(By.ID, "export-parquet").get_attribute("href")
    assert parquet == f"{server}/api/sessions/{sid}/rounds/1/export?format=parquet"
    got = fetch(driver, parquet)
    assert got["status"] == 200, got
    assert got["head"].startswith("PAR1"), got
    got = fetch(driver, driver.find_element(By.ID, "export-csv").get_attribute("href"))
    assert got["status"] == 200, got
    assert got["type"].startswith("text/csv"), got
    header = got["head"].splitlines()[0].split(",")
    assert {"rank", "score", "id"} <= set(header), header
    assert not driver.find_element(By.ID, "rules-links").is_displayed()  # hybrid has no rules

    # Undo the last label change (the key-made negative), then redo it by key.
    driver.find_element(By.ID, "undo").click()
    wait(driver, lambda d: body(d, "negatives") == "1", "undo")
    assert keyed not in session_of(driver, server)["negatives"]
    assert driver.find_element(By.ID, "redo").get_attribute("disabled") is None
    unfocus(driver)
    press(driver, "U")
    wait(driver, lambda d: body(d, "negatives") == "2", "redo by key")
    assert keyed in session_of(driver, server)["negatives"]
    press(driver, "u")
    wait(driver, lambda d: body(d, "negatives") == "1", "undo by key")

    # More like this (a card's button), then a search by an uploaded image file.
    liked = int(cards(driver)[-1].get_attribute("data-item-id"))
    cards(driver)[-1].find_element(By.CSS_SELECTOR, "[data-action=more]").click()
    wait(driver, lambda d: body(d, "round") == "2", "more like this")
    assert driver.find_element(By.ID, "round-info").text.startswith(f"#2 like item {liked}:")
    assert int(cards(driver)[0].get_attribute("data-item-id")) == liked
    driver.find_element(By.ID, "upload").send_keys(str(photos / "horse_0.jpg"))
    wait(driver, lambda d: body(d, "round") == "3", "the search by an uploaded image")
    assert message(driver) is None, message(driver)
    assert driver.find_element(By.ID, "round-info").text.startswith("#3 image "), "an uploaded image's round"
    assert card_names(driver)[0] == "horse_0.jpg"

    # A box model's round has rules: shown by key (r), linked as text and SQL.
    models.select_by_value("branch")
    driver.find_element(By.ID, "refine").click()
    wait(driver, lambda d: body(d, "round") == "4", "the branch round")
    assert message(driver) is None, message(driver)
    wait(driver, lambda d: d.find_element(By.ID, "rules-links").is_displayed(), "the rules links")
    unfocus(driver)
    press(driver, "r")
    wait(driver, lambda d: d.find_element(By.ID, "rules-view").is_displayed(), "the rules")
    assert "accepted when" in driver.find_element(By.ID, "rules-body").text
    press(driver, Keys.ESCAPE)
    got = fetch(driver, driver.find_element(By.ID, "rules-sql").get_attribute("href"))
    assert got["status"] == 200, got
    assert got["head"].startswith("SELECT"), got

    # The page loaded nothing from another origin and logged no error.
    resources = driver.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert resources, "the page's resources"
    assert all(url.startswith(f"{server}/") for url in resources), [u for u in resources if not u.startswith(server)]
    assert driver.execute_script("return location.origin") == server
    assert severe_logs(driver) == []

    # A reload resumes the session (kept in localStorage): its last round and its labels.
    driver.refresh()
    wait(driver, lambda d: body(d, "ready") == "1" and body(d, "round") == "4", "the resumed session")
    assert body(driver, "session") == sid
    assert driver.find_element(By.ID, "labels-summary").text == "2 positive · 1 negative"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#rounds [data-round]")) == 5
    assert severe_logs(driver) == []

    # An API error is shown on the page with the server's message (an unknown item id).
    query = driver.find_element(By.ID, "query")
    query.clear()
    query.send_keys("#99999", Keys.ENTER)
    wait(driver, lambda d: message(d) is not None, "the error message")
    assert "99999" in message(driver), message(driver)
    assert body(driver, "round") == "4"  # the shown round is kept
    errors = severe_logs(driver)
    assert len(errors) == 1, errors  # the failed request only
    assert "404" in errors[0]["message"], errors
    print(f"browser test steps took {time.perf_counter() - started:.1f} s")
