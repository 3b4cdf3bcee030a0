"""`aigc serve` as a user runs it: a real server process on a loopback port, driven by real concurrent
clients, by Schemathesis over its OpenAPI schema, and by headless Chromium through the page."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from benchmarks.serve import ServeProcess  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(serve_runs):
    return serve_runs


@pytest.fixture(scope="module")
def server(runs):
    s = ServeProcess(str(runs["cgan"]), str(runs["names"]), str(runs["flow"]), "--time-limit", "600")
    yield s
    assert s.stop() == 0


def test_the_server_answers_logs_each_request_and_stops_cleanly_on_ctrl_c(runs):
    s = ServeProcess(str(runs["cgan"]))
    r = httpx.post(s.url + "/models/cgan/samples", json={"n": 4, "seed": 2, "label": 5}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["x-seed"] == "2"
    evil = httpx.get(s.url + "/models", headers={"Host": "attacker.example"}, timeout=30)  # DNS rebinding
    assert evil.status_code == 400 and "answers only to 127.0.0.1, localhost" in evil.json()["error"]
    assert s.stop() == 0
    logged = [x for x in s.lines if "POST /models/cgan/samples" in x]
    assert len(logged) == 1 and "model=cgan n=4 seed=2" in logged[0] and "status=200" in logged[0]
    assert not any("Traceback" in x for x in s.lines)


def test_a_taken_port_is_one_line(runs, server):
    port = int(server.url.rsplit(":", 1)[1])
    out = subprocess.run([sys.executable, "-m", "aigc", "serve", str(runs["cgan"]), "--port", str(port)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "choose another --port" in out.stderr


def test_overload_gets_fast_refusals_the_admitted_succeed_and_the_server_stays_up(runs):
    s = ServeProcess(f"slow={runs['flow']}", "--workers-per-model", "1", "--queue", "2", "--time-limit", "600")
    try:
        body = {"n": 64, "steps": 1000, "format": "json"}  # seconds of work each on the tiny flow

        def ask(i: int) -> tuple[int, float, float]:
            tic = time.monotonic()
            r = httpx.post(s.url + "/models/slow/samples", json={**body, "seed": i}, timeout=120)
            return r.status_code, tic, time.monotonic()

        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(ask, range(10)))
        codes = sorted(code for code, _, _ in results)
        assert codes.count(200) == 3 and codes.count(429) == 7  # 1 sampling + 2 waiting admitted; the rest refused
        first_done = min(end for code, _, end in results if code == 200)
        assert all(end < first_done for code, _, end in results if code == 429)  # refused before any finished
        assert httpx.get(s.url + "/health", timeout=10).json()["status"] == "ok"
    finally:
        assert s.stop() == 0
    assert not any("Traceback" in x or "status=5" in x for x in s.lines)


# ---------------------------------------------------------------- Schemathesis


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_the_api_keeps_to_its_schema_and_never_answers_5xx(server, mode):
    """Schemathesis generates requests from the app's own OpenAPI document (valid ones, then ones that
    break it) and checks every answer: no 5xx, documented status codes, content types and schemas.
    Through its Python API: its pytest plugin does not load under pytest 9."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [op.ok() for op in schema.get_all_operations()]
    assert {f"{o.method.upper()} {o.path}" for o in operations} == {
        "GET /health", "GET /models", "POST /models/{name}/samples", "GET /models/{name}/report",
        "GET /models/{name}/files/{filename}"}
    seen: list[int] = []
    for operation in operations:
        if mode == "negative" and "{" not in operation.path and operation.method.upper() == "GET":
            continue  # /health and /models take no input that could break the schema
        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        @settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def check(case):
            seen.append(case.call_and_validate(base_url=server.url, timeout=60).status_code)

        try:
            check()
        except Unsatisfiable:  # negative mode: a path whose only input is a free string cannot be made invalid
            assert mode == "negative" and operation.method.upper() == "GET", operation.path
    assert seen and max(seen) < 500
    if mode == "positive":
        assert 200 in seen


# ---------------------------------------------------------------- the page in a real browser


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (make test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        yield b
        b.close()


def test_the_page_generates_reproduces_downloads_and_shows_errors(server, browser, tmp_path):
    from PIL import Image

    page = browser.new_page(viewport={"width": 1200, "height": 820})
    problems: list[str] = []
    expected = "Failed to load resource: the server responded with a status of 422"  # the n = 0 and the sunset below
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and expected not in m.text else None)
    page.on("request", lambda r: None if r.url.startswith((server.url, "data:", "blob:")) else problems.append(r.url))
    page.goto(server.url)
    page.wait_for_selector("#model option[value=cgan]", state="attached")
    page.select_option("#model", "cgan")
    page.fill("#n", "6")
    page.select_option("#opt-label", "3")
    page.click("#generate")
    page.wait_for_selector("#results img.sample")
    first = [page.locator("#results img.sample").nth(i).get_attribute("src") for i in range(6)]
    assert page.locator("#results img.sample").count() == 6
    seed = re.fullmatch(r"seed (\d+)", page.text_content("#seed-shown")).group(1)

    page.click("#reuse")  # the seed shown goes into the seed field: the same pictures come back
    assert page.input_value("#seed") == seed
    page.evaluate("document.getElementById('results').innerHTML = ''")
    page.click("#generate")
    page.wait_for_selector("#results img.sample")
    again = [page.locator("#results img.sample").nth(i).get_attribute("src") for i in range(6)]
    assert again == first and page.text_content("#seed-shown") == f"seed {seed}"

    with page.expect_download() as dl:
        page.click("#download")
    saved = tmp_path / "grid.png"
    dl.value.save_as(saved)
    assert dl.value.suggested_filename == f"cgan-seed{seed}.png"
    assert Image.open(saved).size == (3 * 8 + 4 * 2, 2 * 8 + 3 * 2)  # the 6 pictures as one PNG grid

    page.fill("#n", "0")
    page.click("#generate")
    page.wait_for_selector("#error:not(:empty)")  # (a selector: the page's CSP forbids eval'd JavaScript)
    assert page.text_content("#error") == "n: Input should be greater than or equal to 1"

    page.fill("#n", "4")  # the prompt box: words in, the class and its score shown with the pictures
    assert page.get_attribute("#opt-prompt", "placeholder") == "what to make, in your own words"
    page.fill("#opt-prompt", "the number seven")
    assert page.input_value("#opt-label") == ""  # typing words clears the label chosen above (one or the other)
    page.click("#generate")
    page.wait_for_selector("#match:not(:empty)")
    assert page.text_content("#match").startswith("Prompt: “the number seven” → 7 1.00 (next: ")
    assert page.locator("#results img.sample").count() == 4 and page.text_content("#error") == ""
    page.fill("#opt-prompt", "a sunset over the sea")
    page.click("#generate")
    page.wait_for_selector("#error:not(:empty)")
    assert "is not close to anything this model makes" in page.text_content("#error")
    page.fill("#opt-prompt", "")

    page.select_option("#model", "names")
    page.fill("#n", "5")
    page.fill("#opt-prompt", "ma")
    page.click("#generate")
    page.wait_for_selector("#results li.sample")
    names = page.locator("#results li.sample").all_text_contents()
    assert len(names) == 5 and all(x.startswith("ma") for x in names) and page.text_content("#error") == ""
    if os.environ.get("AIGC_SCREENSHOT"):
        page.select_option("#model", "cgan")
        page.fill("#n", "16")
        page.click("#generate")
        page.wait_for_selector("#results img.sample")
        page.screenshot(path=os.environ["AIGC_SCREENSHOT"], full_page=True)
    assert problems == []
    page.close()


def test_the_page_asks_for_the_token_when_the_server_needs_one(runs, browser):
    s = ServeProcess(str(runs["cgan"]), "--token", "t0ken")
    try:
        page = browser.new_page()
        page.goto(s.url)
        page.wait_for_selector("#token", state="visible")
        assert "token" in page.text_content("#error")
        page.fill("#token", "t0ken")
        page.click("#token-go")
        page.wait_for_selector("#model option[value=cgan]", state="attached")
        page.click("#generate")
        page.wait_for_selector("#results img.sample")
        assert page.locator("#results img.sample").count() == 16
        page.close()
    finally:
        assert s.stop() == 0



def open_page(browser, url: str, model: str):
    """The page at `url` with `model` listed, and the console errors it logs from then on."""
    page = browser.new_page(viewport={"width": 1200, "height": 820})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_selector(f"#model option[value={model}]", state="attached")
    return page, problems


def download(page, to: Path):
    """Click Download and save the file to `to`; returns the name the page suggested."""
    with page.expect_download() as dl:
        page.click("#download")
    dl.value.save_as(to)
    return dl.value.suggested_filename


def test_the_page_plays_video_clips_and_downloads_them_as_one_gif(browser, tmp_path):
    """A video run served as a user serves it: the page shows each clip as an animated GIF."""
    from PIL import Image

    from aigc.config import load_config
    from aigc.train import train

    from .test_video import TINY

    train(load_config(TINY), tmp_path / "clips", echo=lambda m: None)
    s = ServeProcess(str(tmp_path / "clips"), "--time-limit", "600")
    try:
        page, problems = open_page(browser, s.url, "clips")
        page.fill("#n", "3")
        page.select_option("#opt-label", "4")
        page.click("#generate")
        page.wait_for_selector("#results img.sample")
        imgs = page.locator("#results img.sample")
        assert imgs.count() == 3
        assert all(imgs.nth(i).get_attribute("src").startswith("data:image/gif;base64,") for i in range(3))
        # the browser decoded each GIF (a broken image has natural width 0)
        assert page.eval_on_selector_all("#results img.sample", "els => els.map(e => e.naturalWidth)") == [96] * 3
        saved = tmp_path / "clips.gif"
        assert download(page, saved).endswith(".gif")
        with Image.open(saved) as g:
            assert g.is_animated and g.n_frames == 4  # the three clips side by side, playing together
        assert problems == []
        page.close()
    finally:
        assert s.stop() == 0


def test_the_page_plays_music_and_downloads_it_as_one_wav(browser, tmp_path):
    """A music run served as a user serves it: the page plays each piece in an audio element."""
    pytest.importorskip("music21")
    pytest.importorskip("pretty_midi")
    from aigc.config import load_config
    from aigc.data.music import chorale_paths, read_chorale
    from aigc.score import Score, midi_bytes
    from aigc.train import train

    folder = tmp_path / "midi"
    folder.mkdir()
    for path in chorale_paths()[:8]:
        score = read_chorale(path)
        if isinstance(score, Score):
            (folder / f"{score.name}.mid").write_bytes(midi_bytes(score))
    cfg = load_config({"name": "bach", "seed": 0, "data": {"source": f"midi:{folder}", "block_size": 300},
                     "model": {"name": "gru", "embed": 8, "hidden": 16},
                     "train": {"steps": 10, "batch_size": 8, "log_every": 5, "sample_every": 0, "ckpt_every": 10,
                               "progress": False, "threads": 1}})
    train(cfg, tmp_path / "bach", echo=lambda m: None)
    s = ServeProcess(str(tmp_path / "bach"), "--time-limit", "600")
    try:
        page, problems = open_page(browser, s.url, "bach")
        page.fill("#n", "2")
        page.fill("#opt-bars", "2")
        page.fill("#opt-key", "G minor")
        page.click("#generate")
        page.wait_for_selector("#results audio.sample")
        sounds = page.locator("#results audio.sample")
        assert sounds.count() == 2
        assert all(sounds.nth(i).get_attribute("src").startswith("data:audio/wav;base64,") for i in range(2))
        # the browser decoded each WAV: two bars at 84 beats a minute last about 5.7 s, plus the tail
        seconds = [sounds.nth(i).evaluate("a => new Promise(r => a.readyState >= 1 ? r(a.duration) : "
                                          "a.addEventListener('loadedmetadata', () => r(a.duration)))")
                   for i in range(2)]
        assert all(2.0 < d < 20.0 for d in seconds), seconds
        saved = tmp_path / "pieces.wav"
        assert download(page, saved).endswith(".wav") and saved.read_bytes()[:4] == b"RIFF"
        assert problems == []
        page.close()
    finally:
        assert s.stop() == 0
