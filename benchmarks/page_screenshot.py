"""The README's picture of the `aigc serve` page: serve runs, open the page in headless Chromium,
generate, screenshot.

    python -m benchmarks.page_screenshot RUN [RUN...] [--model NAME] [--set OPTION=VALUE ...] [--n 16]
                                         [--seed 7] [--out docs/serve-page.png]

`--set` fills the page's option fields by name (e.g. `--set label="ankle boot" --set guidance=2`),
as a user would. Needs Debian's chromium and the playwright package (`make test` installs both).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


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

    from .serve import ServeProcess

    server = ServeProcess(*args.runs)
    url = server.url
    try:
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
        server.stop()
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
