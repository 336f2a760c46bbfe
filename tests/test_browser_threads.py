"""The multi-threaded runtime: a cross-origin isolated page moves to it after its first results, with
the same results; a page without isolation stays on one thread and never fetches it. A second
visit is isolated by the page's own service worker, offline too."""
import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, PageLog, require_cores_for_threads, wait_until
from test_browser import PARITY_TOLERANCE, RECORD_CSP_VIOLATIONS, astronaut, png_data_url

pytestmark = pytest.mark.browser

THREADED_WASM = "tfjs-backend-wasm-threaded-simd.wasm"
THREADED_FILES = (THREADED_WASM, "tf-wasm-threads.min.js")  # the build and its glue
STATE = """async () => ({ threads: await facemood.threads, backend: tf.getBackend(),
  backends: Object.keys(tf.engine().registry), tensors: tf.memory().numTensors,
  expected: navigator.hardwareConcurrency > 1 ? Math.min(navigator.hardwareConcurrency, 4) : 1 })"""


@pytest.fixture(scope="module")
def isolated_site(shipped_site):
    from web.serve import start_server

    server, url = start_server(shipped_site["dist"], isolate=True)
    yield {"dist": shipped_site["dist"], "url": url}
    server.shutdown()


def group_photo():
    """Three copies of the photo's head at different sizes on a plain background."""
    head = Image.fromarray(astronaut()[:256])
    canvas = Image.new("RGB", (1400, 600), (70, 80, 90))
    for x, y, scale in [(30, 200, 0.6), (400, 120, 1.0), (880, 40, 1.0)]:
        canvas.paste(head.resize((int(512 * scale), int(256 * scale))), (x, y))
    return np.asarray(canvas)


def results(page, photos):
    return [page.evaluate("u => facemood.classify(u)", png_data_url(photo))["faces"] for photo in photos]


def same_faces(ours, theirs):
    assert [len(faces) for faces in ours] == [len(faces) for faces in theirs]
    for a, b in zip(sum(ours, []), sum(theirs, [])):
        assert np.abs(np.array(a["box"]) - np.array(b["box"])).max() <= 1
        assert a["label"] == b["label"]
        assert max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) < PARITY_TOLERANCE


def test_an_isolated_page_moves_to_threads_with_the_same_results(isolated_site, shipped_site, open_page):
    photos = [astronaut(), group_photo()]
    single, single_log = open_page(shipped_site["url"])
    threaded, log = open_page(isolated_site["url"])
    assert threaded.evaluate("crossOriginIsolated") and not single.evaluate("crossOriginIsolated")
    state = threaded.evaluate(STATE)
    assert state["threads"] == state["expected"]
    require_cores_for_threads(state["expected"])
    # Every weight moved across, the single-threaded backend dropped, no tensor made or lost: as many
    # as the settled single-threaded page holds (both made the detector's copies for photos either
    # way up, faces.js).
    assert state["backend"] == "wasm-threads" and state["backends"] == ["wasm-threads"]
    assert state["tensors"] == single.evaluate("facemood.threads.then(() => tf.memory().numTensors)")
    assert threaded.evaluate("tf.wasm.getThreadsCount()") == state["expected"]
    same_faces(results(threaded, photos), results(single, photos))
    # The webcam's detector, loaded after the switch, runs there too.
    close = [threaded.evaluate("u => facemood.classify(u, {range: 'close'})", png_data_url(astronaut()))["faces"]]
    same_faces(close, [single.evaluate("u => facemood.classify(u, {range: 'close'})",
                                       png_data_url(astronaut()))["faces"]])
    assert threaded.evaluate("tf.memory().numTensors") == single.evaluate("tf.memory().numTensors")
    assert log.errors == [] and single_log.errors == []
    # Fetched only where the page can use them.
    for name in THREADED_FILES:
        assert any(url.endswith(name) for url, _ in log.requests) == (state["expected"] > 1)
        assert not any(url.endswith(name) for url, _ in single_log.requests)
    assert single.evaluate("facemood.threads") == 1 and single.evaluate("tf.getBackend()") == "wasm"


def test_photos_given_while_the_page_moves_to_threads_are_all_answered(isolated_site, browser):
    """Photo after photo, a moment apart as a webcam's frames are, while the page moves to threads
    (its threaded build held back until a few are answered): each is classified on one backend or
    the other, never a mix, and all alike."""
    context = browser.new_context()
    try:
        held = []
        context.route(f"**/{THREADED_WASM}", lambda route: held.append(route))
        page = context.new_page()
        log = PageLog(page)
        page.goto(isolated_site["url"])
        page.evaluate("""(url) => {
          window.__answers = [];
          let settled = false;
          facemood.threads.then(() => { settled = true; });
          (async () => {
            while ((!settled || __answers.length < 6) && __answers.length < 500) {
              const { faces } = await facemood.classify(url);
              __answers.push({ backend: tf.getBackend(), faces: faces.map((f) => [f.label, f.scores, f.box]) });
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
            window.__done = true;
          })();
        }""", png_data_url(astronaut()))
        require_cores_for_threads(page.evaluate("navigator.hardwareConcurrency"))
        wait_until(page, "window.__answers.length >= 3", timeout=60)
        assert len(held) == 1
        held[0].continue_()
        wait_until(page, "window.__done", timeout=120)
        answers = page.evaluate("window.__answers")
        assert len(answers) < 500 and all(len(a["faces"]) == 1 for a in answers)
        first = answers[0]["faces"][0]
        for answer in answers[1:]:
            label, scores, box = answer["faces"][0]
            assert label == first[0] and np.abs(np.array(box) - np.array(first[2])).max() <= 1
            assert max(abs(scores[k] - first[1][k]) for k in scores) < PARITY_TOLERANCE
        backends = [a["backend"] for a in answers]
        assert backends[:3] == ["wasm"] * 3 and backends[-1] == "wasm-threads"
        assert backends == sorted(backends)  # one switch, between two photos
        assert log.errors == []
    finally:
        context.close()


def test_a_second_visit_is_isolated_by_the_service_worker_online_and_offline(shipped_site, browser):
    """No header from the server: the first visit stays on one thread; the service worker serves
    later visits with the isolation headers, and precaches the threaded build for them."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script(RECORD_CSP_VIOLATIONS)
        log = PageLog(page)
        page.goto(shipped_site["url"])
        first = page.evaluate(STATE)
        assert first["threads"] == 1 and not page.evaluate("crossOriginIsolated")
        first_faces = results(page, [astronaut()])
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        wait_until(page, "navigator.serviceWorker.controller !== null", timeout=20)
        for offline in (False, True):
            context.set_offline(offline)
            page.reload()
            state = page.evaluate(STATE)
            assert page.evaluate("crossOriginIsolated")
            assert state["threads"] == state["expected"]
            require_cores_for_threads(state["expected"])
            assert state["backends"] == ["wasm-threads"]
            same_faces(results(page, [astronaut()]), first_faces)
        # The threads' workers come from blob: URLs, which the policy allows; nothing else changed.
        assert page.evaluate("window.__violations") == []
        assert log.errors == []
    finally:
        context.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("flags, isolated", [([], True), (["--no-isolate"], False), (["--isolate"], True)])
def test_build_serve_sends_the_isolation_headers_unless_asked_not_to(shipped_site, flags, isolated):
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "build.py"), "serve", "--dir", str(shipped_site["dist"]),
                               "--port", str(port), *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    headers = response.headers
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "build.py serve did not start"
                time.sleep(0.2)
        assert (headers.get("Cross-Origin-Embedder-Policy") == "require-corp") == isolated
        assert (headers.get("Cross-Origin-Opener-Policy") == "same-origin") == isolated
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert ("cross-origin isolated" in output) == isolated


def test_the_site_carries_the_isolation_headers_for_hosts_that_read_them_from_a_file(shipped_site):
    """dist/_headers gives every path the headers `build.py serve` sends, in the format Netlify and
    Cloudflare Pages read; the service worker does not precache it, and gives later visits the same
    headers."""
    from web.serve import CACHE_HEADERS, ISOLATION_HEADERS

    dist = shipped_site["dist"]
    lines = [line for line in (dist / "_headers").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "/*" and all(line.startswith("  ") for line in lines[1:])
    assert dict(line.strip().split(": ", 1) for line in lines[1:]) == {**ISOLATION_HEADERS, **CACHE_HEADERS}
    worker = (dist / "sw.js").read_text()
    assert '"_headers"' not in worker and f"const ISOLATION = {json.dumps(ISOLATION_HEADERS)};" in worker
