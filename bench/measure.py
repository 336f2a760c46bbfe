"""What one benchmark run measures in the browser. Every figure is taken by the page's own clock
(performance.now(), whose zero is navigation start) and its own Resource Timing and Long Tasks
entries, so Playwright's round trips never count.

- cold_run: fresh Chromium, empty profile; a photo is picked the moment the page listens for one
  (its bytes decoded off the main thread while the page loads, then set on its file input and
  announced with a change event from inside the page: no round trip to the test driver, which
  would have to wait for a busy main thread, as a person's drop does not); time until its result
  card is in the page, bytes received until then, long main-thread tasks.
- warm_run: one page, N classifications of already-decoded photos; latency of each, live tensors
  after the first and after the last; pooled: several pages' as one.
- webcam_fps: frames detected, classified and drawn per second from a 640x480 fake camera.
"""
import base64
import json
import mimetypes
import statistics
import time
from pathlib import Path

from bench.browser import launch


# Runs before any script of the page: records long tasks and the moment the first result card
# (article.result, in both pages) is inserted; with a photo ({PHOTO}: name, type, base64), picks it
# as soon as the page listens.
OBSERVERS = """(() => {  // its own scope: nothing but window.__bench joins the page's globals
window.__bench = { longTasks: [], firstResult: null, failedCard: null, faces: null, ready: null, photoGiven: null };
const photo = {PHOTO};
// The photo's bytes, decoded from base64 by the browser off the page's main thread while the page
// loads (a data: URL fetched at document start): giving the photo then costs the page what a
// drop does, not a base64 decode (about 30 ms of its main thread, traced, in either page).
const photoFile = photo && fetch(`data:${photo.type};base64,${photo.base64}`).then((response) => response.blob())
  .then((blob) => new File([blob], photo.name, { type: photo.type }));
// Both pages register their file input's listener in the module that assigns their global, so
// the task after that assignment is the first moment a photo can be given.
async function pickPhoto() {
  const file = await photoFile;
  const transfer = new DataTransfer();
  transfer.items.add(file);
  const input = document.getElementById('file-input');
  input.files = transfer.files;
  window.__bench.photoGiven = performance.now();
  input.dispatchEvent(new Event('change', { bubbles: true }));
}
// The page's global ({API}) is assigned once; note when its `ready` promise resolves.
Object.defineProperty(window, '{API}', {
  configurable: true,
  get() { return window.__bench.api; },
  set(value) {
    window.__bench.api = value;
    Promise.resolve(value.ready).then(() => { window.__bench.ready = performance.now(); }, () => {});
    if (photo) setTimeout(pickPhoto);
  },
});
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.longTasks.push([e.startTime, e.duration]);
}).observe({ type: 'longtask', buffered: true });
new MutationObserver((_, observer) => {
  const card = document.querySelector('article.result');
  if (!card) return;
  // facemood's card for a photo it could not read is an article.result too: no result to time.
  if (card.classList.contains('error')) window.__bench.failedCard = card.textContent;
  else window.__bench.firstResult = performance.now();
  window.__bench.faces = Number(card.dataset.faces);
  observer.disconnect();
}).observe(document, { childList: true, subtree: true });
})();
"""

COLLECT = """() => {
  const [nav] = performance.getEntriesByType('navigation');
  const until = window.__bench.firstResult;
  const entries = [nav, ...performance.getEntriesByType('resource')];
  const before = entries.filter((e) => e.responseEnd <= until);
  const sum = (list, key) => list.reduce((n, e) => n + e[key], 0);
  return {
    first_result_ms: until,
    ready_ms: window.__bench.ready,
    photo_given_ms: window.__bench.photoGiven,
    faces: window.__bench.faces,
    load_event_ms: nav.loadEventStart,
    long_tasks: window.__bench.longTasks,
    bytes_gzip: sum(before, 'encodedBodySize'),
    bytes_raw: sum(before, 'decodedBodySize'),
    files: before.map((e) => [new URL(e.name).pathname, e.encodedBodySize, e.decodedBodySize, Math.round(e.startTime), Math.round(e.responseEnd)]),
  };
}"""


def observers(api, photo=None):
    """OBSERVERS for the page whose global is `api`, picking the image file `photo` when given."""
    given = photo and {"name": Path(photo).name, "type": mimetypes.guess_type(photo)[0] or "image/jpeg",
                       "base64": base64.b64encode(Path(photo).read_bytes()).decode()}
    return OBSERVERS.replace("{API}", api).replace("{PHOTO}", json.dumps(given or None))


def wait_for(page, expression, timeout=60.0, poll_ms=20):
    """Poll a JS expression until truthy (wait_for_function would need eval, which CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {expression}")
        page.wait_for_timeout(poll_ms)


def cold_run(playwright, contender, photo, settle_ms=500):
    """Navigation start -> the picked photo's result shown, in a browser with nothing cached."""
    browser = launch(playwright)
    try:
        page = browser.new_context().new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # A photo picked the moment the page listens for one: model loading is not hidden behind
        # the time a person takes to pick a file.
        page.add_init_script(observers(contender.api, photo))
        page.goto(contender.url, wait_until="commit")
        wait_for(page, "window.__bench && (window.__bench.firstResult !== null || window.__bench.failedCard !== null"
                       " || document.body?.dataset.failed)")
        failed = page.evaluate("document.body.dataset.failed")
        if failed:
            raise RuntimeError(f"{contender.title} could not start: {failed}")
        failed_card = page.evaluate("window.__bench.failedCard")
        if failed_card is not None:
            raise RuntimeError(f"{contender.title} could not read the photo: {failed_card}")
        # Long tasks after the result still count, up to settle_ms after the page has settled (facemood
        # moves to its multi-threaded runtime then).
        _settled(page, contender)
        page.wait_for_timeout(settle_ms)
        result = page.evaluate(COLLECT)
        result["ready"] = page.evaluate(f"{contender.ready}.then((r) => r)")
        after_load = [d for start, d in result["long_tasks"] if start + d > result["load_event_ms"]]
        result["longest_task_after_load_ms"] = max(after_load, default=0.0)
        result["errors"] = errors
        return result
    finally:
        browser.close()


def _settled(page, contender):
    """Waits until the page can classify and has finished what it does after loading (facemood moves
    to its multi-threaded runtime then, where it may). Returns the threads it runs on, when it says."""
    page.evaluate(f"{contender.ready}.then(() => true)")
    return page.evaluate(f"{contender.threads}.then((n) => n)") if contender.threads else None


def _second_visit(page, contender):
    """Reloads the page once its service worker controls it: a person's second visit."""
    page.evaluate(f"{contender.ready}.then(() => navigator.serviceWorker.ready).then(() => true)")
    wait_for(page, "navigator.serviceWorker.controller !== null")
    page.reload()


def warm_run(playwright, contender, photos, count=100, skip=3, second_visit=False):
    """`count` classifications cycling through decoded `photos` in one warm page. The first `skip`
    (one pass, compiling whatever is compiled per image size) are left out of the latencies. Where
    the page can run its expression model alone, as many runs of that follow (`classify_only_ms`):
    the part of a photo's time that is not detection. `threads`: what the page runs on (`_settled`).
    `second_visit`: in the page as its service worker serves it on a second visit."""
    browser = launch(playwright)
    try:
        page = browser.new_context().new_page()
        page.goto(contender.url)
        if second_visit:
            _second_visit(page, contender)
        threads = _settled(page, contender)
        encoded = [base64.b64encode(p.read_bytes()).decode() for p in photos]
        result = page.evaluate("""async ([encoded, count, skip]) => {
          const classify = %s;
          const numTensors = () => %s;
          const canvases = [];
          for (const data of encoded) {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const bitmap = await createImageBitmap(new Blob([bytes]));
            const canvas = document.createElement('canvas');
            canvas.width = bitmap.width;
            canvas.height = bitmap.height;
            canvas.getContext('2d').drawImage(bitmap, 0, 0);
            canvases.push(canvas);
          }
          const ms = [], faces = [];
          let afterOne = null;
          for (let i = 0; i < count; i++) {
            const started = performance.now();
            const result = await classify(canvases[i %% canvases.length]);
            ms.push(performance.now() - started);
            faces.push(result.faces.length);
            if (i === 0) afterOne = numTensors();
          }
          const only = [];
          const classifyOnly = %s;
          for (let i = 0; classifyOnly && i < count; i++) {
            const started = performance.now();
            await classifyOnly(canvases[i %% canvases.length]);
            only.push(performance.now() - started);
          }
          return { ms: ms.slice(skip), faces, tensors_after_1: afterOne, tensors_after_n: numTensors(), n: count,
                   classify_only_ms: only.slice(skip) };
        }""" % (contender.classify, contender.num_tensors, contender.classify_only or "null"), [encoded, count, skip])
        return {**result, "threads": threads}
    finally:
        browser.close()


def pooled(runs):
    """Several pages' warm_run results as one. A whole page's run can be slowed by a busy spell of
    this shared machine (a multi-threaded page most: its worker waits for the second core), so the
    median is taken over several. Live tensors are the first page's; `tensors_grew` says whether any
    page's grew, `page_medians` keeps each page's median."""
    together = {key: [value for run in runs for value in run[key]] for key in ("ms", "classify_only_ms", "faces")}
    return {**runs[0], **together, "page_medians": [statistics.median(run["ms"]) for run in runs],
            "tensors_grew": any(run["tensors_after_n"] != run["tensors_after_1"] for run in runs)}


def webcam_fps(playwright, contender, video, seconds=4.0):
    """Processed frames per second from Chromium's fake camera playing `video` (640x480)."""
    flags = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
             f"--use-file-for-fake-video-capture={video}"]
    browser = launch(playwright, flags)
    try:
        page = browser.new_page()
        page.goto(contender.url)
        _settled(page, contender)
        if contender.name != "facemood":
            return page.evaluate(f"harness.webcamFps({seconds * 1000:.0f})")
        # facemood: the page's own camera mode; every processed frame rewrites the fps line.
        page.click("#camera-toggle")
        wait_for(page, "Number(document.getElementById('camera-fps').dataset.fps || 0) > 0")
        return page.evaluate("""(ms) => new Promise((resolve) => {
          let frames = 0;
          const observer = new MutationObserver((records) => { frames += records.length; });
          setTimeout(() => {
            observer.observe(document.getElementById('camera-fps'), { childList: true });
            setTimeout(() => { observer.disconnect(); resolve((frames * 1000) / ms); }, ms);
          }, 1000);
        })""", seconds * 1000)
    finally:
        browser.close()
