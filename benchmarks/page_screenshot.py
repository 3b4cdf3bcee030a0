"""The README's picture of the `aigc serve` page: serve runs, open the page in headless Chromium,
generate, screenshot.

    python -m benchmarks.page_screenshot RUN [RUN...] [--model NAME] [--set OPTION=VALUE ...] [--n 16]
                                         [--seed 7] [--out docs/serve-page.png]

`--set` fills the page's option fields by name (e.g. `--set label="ankle boot" --set guidance=2`),
as a user would. Needs Debian's chromium and the playwright package (`make test` installs both).
"""
from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.page_screenshot", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run directories (NAME=DIR names one)")
    p.add_argument("--model", help="the model to show (default: the first)")
    p.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=Path("docs/serve-page.png"))
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    proc = subprocess.Popen([sys.executable, "-m", "aigc", "serve", *args.runs, "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    url = ""
    ready = threading.Event()

    def read() -> None:
        nonlocal url
        for line in proc.stderr:
            m = re.search(r"on (http://[\d.]+:\d+)", line)
            if m and not url:
                url = m.group(1)
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        ready.wait(300)
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            page.goto(url)
            page.wait_for_selector("#model option", state="attached")
            if args.model:
                page.select_option("#model", args.model)
            page.fill("#n", str(args.n))
            page.fill("#seed", str(args.seed))
            for item in args.set:
                name, _, value = item.partition("=")
                field = page.locator(f"#opt-{name}")
                if field.evaluate("e => e.tagName") == "SELECT":
                    field.select_option(value)
                else:
                    field.fill(value)
            page.click("#generate")
            page.wait_for_selector("#results .sample")
            page.wait_for_timeout(300)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
