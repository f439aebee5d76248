"""memomentum review in a real browser: Debian's headless chromium driven by Playwright opens
the review of an image-folder run, makes 20 decisions with the keyboard and the mouse,
reloads, survives a kill -9 of the server and a restart, and finds all 20 in review.csv and
in the export; without the token nothing is served. (.ci/run installs chromium.)"""

from __future__ import annotations

import csv
import os
import shutil
import signal

import pytest
from helpers import skip_or_fail
from review_helpers import Served, fake_image_run, image_folder, read_review

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the review's cache of examples.csv


@pytest.fixture
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        skip_or_fail("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=FLAGS)
        yield b
        b.close()


def _open(page, served):
    page.goto(served.url)
    page.wait_for_function(
        "document.querySelectorAll('.card img').length > 0 && "
        "[...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth > 0)"
    )


def _counter(page) -> str:
    return page.inner_text("#counter")


def _wait_reviewed(page, n: int):
    page.wait_for_function(f"document.getElementById('counter').textContent.startsWith('reviewed {n} ')")


def _keyboard(page, cards, expected):
    """10 decisions with the keys (and an undo), each on the outlined card, which then moves on."""
    keys = ["a", "g", "x", "c", "a", "g", "x", "c", "a", "g"]
    for k, key in enumerate(keys):
        item = cards[k]
        if key == "c":
            page.keyboard.press("c")
            page.keyboard.type("fo")  # type-ahead: "fox"
            page.keyboard.press("Enter")
            expected[item["index"]] = ("keep", item["given"]) if item["given"] == "fox" else ("relabel", "fox")
        else:
            page.keyboard.press(key)
            expected[item["index"]] = _meaning(key, item)
        _wait_reviewed(page, k + 1)
    page.keyboard.press("u")  # undo the last: one fewer
    _wait_reviewed(page, 9)
    page.keyboard.press("ArrowLeft")  # the outline had moved on; back to it, decide again
    page.keyboard.press("x")
    expected[cards[9]["index"]] = ("exclude", "")
    _wait_reviewed(page, 10)


def _meaning(key: str, item: dict) -> tuple[str, str]:
    if key == "x":
        return "exclude", ""
    if key == "a" and item["predicted"] != item["given"]:
        return "relabel", item["predicted"]
    return "keep", item["given"]


def _mouse(page, cards, expected):
    """6 decisions with the cards' buttons, then 4 with a selection and the toolbar."""
    acts = ["accept", "keep", "exclude", "relabel", "accept", "exclude"]
    for k, act in enumerate(acts, start=10):
        item = cards[k]
        page.click(f'.card[data-index="{item["index"]}"] [data-act="{act}"]')
        if act == "relabel":
            page.click('#chooser-list li[data-class="dog"]')
            expected[item["index"]] = ("keep", "dog") if item["given"] == "dog" else ("relabel", "dog")
        else:
            expected[item["index"]] = _meaning({"accept": "a", "keep": "g", "exclude": "x"}[act], item)
        _wait_reviewed(page, k + 1)
    page.click(f'.card[data-index="{cards[16]["index"]}"] .name')
    page.click(f'.card[data-index="{cards[18]["index"]}"] .name', modifiers=["Shift"])  # 16, 17, 18
    page.click('[data-bulk="exclude"]')
    for item in cards[16:19]:
        expected[item["index"]] = ("exclude", "")
    _wait_reviewed(page, 19)
    page.click(f'.card[data-index="{cards[19]["index"]}"] .name', modifiers=["Control"])
    page.click('[data-bulk="keep"]')
    expected[cards[19]["index"]] = ("keep", cards[19]["given"])
    _wait_reviewed(page, 20)


def _cards(page) -> list[dict]:
    return page.evaluate("""[...document.querySelectorAll('.card')].map(c => ({
        index: Number(c.dataset.index),
        given: c.querySelector('.labels dd').textContent,
        predicted: c.querySelectorAll('.labels dd')[1].textContent.split(' (')[0]}))""")


def _decisions(run_dir) -> dict:
    return {int(r["index"]): (r["decision"], r["label"]) for r in read_review(run_dir)}


def test_twenty_decisions_in_chromium_survive_a_reload_a_kill_9_and_reach_the_export(browser, tmp_path):
    folder = image_folder(tmp_path / "pets", per_class=10)
    run_dir = tmp_path / "run"
    columns = fake_image_run(run_dir, folder)
    served = Served(run_dir)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, bypass_csp=True)  # the test polls with JS
        for url in ("/", "/api/meta", "/api/examples", f"/thumb/{columns['index'][0]}", "/static/review.js"):
            response = page.goto(served.base + url)
            assert response.status == 403 and "forbidden" in page.content(), url
        _open(page, served)
        shown = [c["index"] for c in _cards(page)]  # suspects first, lowest label quality first
        issue = columns["issue"].astype(bool)
        ranked = sorted(zip(columns["quality"][issue], columns["index"][issue]))
        assert shown == [int(i) for _, i in ranked]
        page.uncheck("#f-suspects")  # every example
        page.wait_for_function(f"document.querySelectorAll('.card').length == {len(columns['index'])}")
        cards = _cards(page)
        page.locator("#grid").focus()
        expected: dict = {}
        _keyboard(page, cards, expected)
        _mouse(page, cards, expected)
        assert len(expected) == 20 and _decisions(run_dir) == expected
        other = browser.new_page(bypass_csp=True)  # a second tab sees the first one's decisions
        _open(other, served)
        assert _counter(other).startswith("reviewed 20 ")
        other.close()
        page.screenshot(path=str(tmp_path / "review.png"))
        page.reload()
        _open(page, served)
        assert _counter(page).startswith("reviewed 20 ")
        assert page.locator(".card .badge").count() == min(20, int(issue.sum()))  # the suspects page again
        served.stop(signal.SIGKILL)
        assert (run_dir / "review.lock").exists()  # left behind by the kill; the restart takes it over
        served = Served(run_dir)
        _open(page, served)
        assert _counter(page).startswith("reviewed 20 ")
        assert _decisions(run_dir) == expected
        cell = page.locator(".confusion td.off:not(.zero)").first  # one click shows the examples of a cell
        count = int(cell.inner_text())
        cell.click()
        page.wait_for_function(f"document.getElementById('range').textContent.endsWith(' of {count}')")
        assert page.locator(".card").count() == count
        page.click("#export-open")  # the page's button writes the export
        page.fill("#export-path", str(tmp_path / "clean.csv"))
        page.click("#export-go")
        page.wait_for_function("document.getElementById('toast').textContent.startsWith('exported')")
    finally:
        served.stop()
    with open(tmp_path / "clean.csv", newline="") as f:
        labels = {r["file"]: r["label"] for r in csv.DictReader(f)}
    by_index = dict(zip(columns["index"].tolist(), columns["files"]))
    for index, (decision, label) in expected.items():
        assert labels.get(by_index[index]) == (None if decision == "exclude" else label)
    if os.environ.get("MEMOMENTUM_REVIEW_SCREENSHOT"):
        shutil.copy(tmp_path / "review.png", os.environ["MEMOMENTUM_REVIEW_SCREENSHOT"])
