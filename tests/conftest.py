"""Shared fixtures: generated data, a tiny trained + converted model, a real Chromium, a real server."""
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import faces  # noqa: E402

from bench.browser import CHROMIUM, launch  # noqa: E402  (one launcher for tests and benchmarks)
SHIPPED_MODEL = ROOT / "models" / "default"
ARTIFACTS = ROOT / "test-artifacts"


# Modules whose module-scoped fixture is a costly build (a recipe run, a comparison, conversions),
# costliest first: pytest-xdist (pytest.ini) keeps each one's tests on one worker, so the build runs
# once, and they are handed out first, so no worker starts one while the other has run dry. Every
# other test goes to whichever worker is free.
COSTLY_MODULE_FIXTURES = ["test_recipe", "test_compare", "test_lean_graph", "test_smoothing", "test_face_backbone"]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__ in COSTLY_MODULE_FIXTURES:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    rank = {name: i for i, name in enumerate(COSTLY_MODULE_FIXTURES)}
    items.sort(key=lambda item: rank.get(item.module.__name__, len(rank)))  # stable: the rest keep their order


def run_build(*args, check=True):
    """Run build.py in a subprocess, as a user would; returns the CompletedProcess."""
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), *map(str, args)], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"build.py {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def synthetic_folder(tmp_path_factory):
    """Three classes (frown / open / smile) of 100 generated faces each: with fewer (30 each, 9 faces
    per held-out split), the tiny build below memorised its 63 training faces on some seeds and
    machines and read the held-out ones barely above chance."""
    return faces.write_class_folders(tmp_path_factory.mktemp("synthetic"), per_class=100)


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory, synthetic_folder):
    """`build.py all` on the generated faces: 150 training steps, uint8 conversion, the site.

    The network must have learnt the faces (checked here): one that gives every face the same
    scores would let tests of flipping, class biases and measured accuracy pass whatever the code
    did. Without augmentation and at a high learning rate it does so in about 25 s (seeds 0, 1, 5
    and 7: 87-93 % on the 30 test faces)."""
    root = tmp_path_factory.mktemp("tiny")
    model_dir, dist = root / "model", root / "dist"
    result = run_build("all", "--data", synthetic_folder, "--model-dir", model_dir, "--out", dist,
                       "--epochs", 15, "--max-steps", 10, "--batch-size", 16, "--input-size", 48, "--patience", 15,
                       "--augment", 0, "--learning-rate", 0.01)
    metrics = json.loads((model_dir / "metrics.json").read_text())["float"]
    assert metrics["val"]["macro_f1"] > 0.5 and metrics["test"]["macro_f1"] > 0.5, metrics
    return {"model_dir": model_dir, "dist": dist, "data": synthetic_folder, "stdout": result.stdout,
            "stderr": result.stderr}


@pytest.fixture(scope="session")
def playwright():
    """One Playwright driver for the whole session (its sync API allows only one at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright):
    """Debian's Chromium driven by Playwright, shared by the browser tests."""
    instance = launch_chromium(playwright)
    yield instance
    instance.close()


@pytest.fixture(scope="session")
def shipped_site(tmp_path_factory):
    """The site rendered from the shipped model and served on 127.0.0.1."""
    from web.render import render_site
    from web.serve import start_server

    dist = render_site(SHIPPED_MODEL, tmp_path_factory.mktemp("shipped") / "dist")
    server, url = start_server(dist)
    yield {"dist": dist, "url": url}
    server.shutdown()


class PageLog:
    """Everything a page did that a test may assert on: console errors, page errors, requests."""

    def __init__(self, page):
        self.errors, self.requests = [], []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append((r.url, r.method)))


@pytest.fixture
def open_page(browser):
    """open_page(url) -> (page, log), waiting until window.facemood is ready."""
    contexts = []

    def _open(url, wait_ready=True):
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        log = PageLog(page)
        page.goto(url)
        if wait_ready:
            page.evaluate("facemood.ready.then(() => true)")
        return page, log

    yield _open
    for context in contexts:
        context.close()


def launch_chromium(playwright, extra_flags=()):
    """Debian's Chromium with the project's flags; missing Chromium fails under CI=true, skips elsewhere."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found; install Debian's chromium (`make test` does, as root)"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    return launch(playwright, extra_flags)


def under_ci():
    """CI=true (or 1, yes): what would be a skip elsewhere is a failure."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_cores_for_threads(count):
    """Go on only if the browser has the cores (`count`, navigator.hardwareConcurrency) to test the
    multi-threaded runtime. With one, the test is skipped, visibly, rather than passing without its
    point; under CI it fails."""
    if count < 2:
        message = "one core: the multi-threaded runtime cannot be tested on this machine"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)


def wait_until(page, expression, timeout=30.0):
    """Poll a JavaScript expression until it is truthy. (Playwright's wait_for_function compiles its
    predicate with eval, which the site's Content-Security-Policy rightly forbids.)"""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {expression}")
        page.wait_for_timeout(100)


@contextlib.contextmanager
def ready_page(browser, url, wait_ready=True, **context_options):
    """A page in its own browser context (options: locale, viewport, ...), with `page.log`."""
    context = browser.new_context(**context_options)
    try:
        page = context.new_page()
        page.log = PageLog(page)
        page.goto(url)
        if wait_ready:
            page.wait_for_selector("body[data-ready=true]")
        yield page
    finally:
        context.close()
