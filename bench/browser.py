"""A served site and a headless Chromium page for benchmarks (same flags as the tests)."""
import contextlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = Path(os.environ.get("FACEMOOD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


def launch(playwright, extra_flags=()):
    """Debian's Chromium, headless, with the flags every test and benchmark uses."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS + list(extra_flags))


@contextlib.contextmanager
def site_page(model_dir):
    """Render the site for `model_dir` into a temporary folder, serve it, yield a ready page."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from web.render import render_site
    from web.serve import start_server

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        dist = render_site(model_dir, Path(tmp) / "dist")
        server, url = start_server(dist)
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.goto(url)
            page.evaluate("facemood.ready.then(() => true)")
            yield page
        finally:
            browser.close()
            server.shutdown()
