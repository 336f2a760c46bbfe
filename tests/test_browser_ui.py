"""The page as people use it: webcam, languages, focusing a face, phone width; screenshots kept."""
import csv
import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ARTIFACTS, SHIPPED_MODEL, PageLog, launch_chromium, ready_page, wait_until
from test_browser import astronaut
from video import write_y4m

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(shipped_site):
    """The site as people get it: the shipped model."""
    return shipped_site["url"]


def write_group_photo(path):
    """Two faces side by side, the right one mirrored: faces at x 0-300 and 560-860."""
    head = Image.fromarray(astronaut()[:300])
    group = Image.new("RGB", (1100, 340), (60, 70, 80))
    group.paste(head, (0, 20))
    group.paste(head.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (560, 20))
    group.save(path)
    return path


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def fake_camera_browser(playwright, tmp_path):
    """A Chromium whose camera shows the portrait (640x480), allowed without asking."""
    frame = np.asarray(Image.fromarray(astronaut()).crop((0, 16, 512, 400)).resize((640, 480)))
    video = write_y4m(tmp_path / "camera.y4m", [frame] * 10)
    return launch_chromium(playwright, ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                                        f"--use-file-for-fake-video-capture={video}"])


def start_camera(page, url):
    """Open the page, start its camera and wait until the face is labelled live."""
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    page.click("#camera-toggle")
    wait_until(page, "Number(document.getElementById('camera-fps').dataset.fps || 0) > 0")
    wait_until(page, "document.querySelectorAll('#camera-faces li').length === 1", timeout=30)


def test_webcam_mode_labels_faces_live_with_fps(site, playwright, tmp_path):
    browser = fake_camera_browser(playwright, tmp_path)
    try:
        page = browser.new_page()
        log = PageLog(page)
        start_camera(page, site)
        # The button, disabled while the camera started, keeps the keyboard's focus: Enter stops it.
        assert page.evaluate("document.activeElement.id") == "camera-toggle"
        assert page.get_attribute("#camera-video", "playsinline") is not None
        assert page.evaluate("document.getElementById('camera-video').muted")
        wait_until(page, "document.getElementById('camera-announce').textContent !== ''")  # held for a second
        page.evaluate("""() => { window.__said = 0; new MutationObserver(() => { window.__said += 1; })
            .observe(document.getElementById('camera-announce'), { childList: true, characterData: true, subtree: true }); }""")
        page.wait_for_timeout(1200)  # the frame rate counts the last second: a full one for the picture
        screenshot(page, "webcam")
        # Screen readers hear the expression when it changes, not every frame's percentages.
        assert page.get_attribute("#camera-faces", "aria-live") is None
        assert page.get_attribute("#camera-announce", "aria-live") == "polite"
        assert page.text_content("#camera-announce") == "Face 1: happy"
        assert page.evaluate("window.__said") == 0 and int(page.get_attribute("#camera-fps", "data-fps")) > 0  # how many: bench.speed
        # The chart of face 1 over time: columns drawn, and nearly all of their area in happy's
        # colour (the legend gives every class the same small swatch, so it cannot tip this).
        assert int(page.get_attribute("#camera-timeline", "data-columns")) >= 5
        pixels = page.evaluate("""async () => {
            const { colourOf } = await import('./assets/js/ui.js');
            const labels = facemood.metadata.labels;
            const palette = labels.map((label) => colourOf(labels, label));
            const c = document.getElementById('camera-timeline');
            const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
            const rgb = palette.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
            const counts = rgb.map(() => 0);
            for (let i = 0; i < data.length; i += 4) {
                rgb.forEach(([r, g, b], k) => {
                    if (Math.abs(data[i] - r) <= 2 && Math.abs(data[i + 1] - g) <= 2 && Math.abs(data[i + 2] - b) <= 2) counts[k] += 1;
                });
            }
            return Object.fromEntries(labels.map((label, k) => [label, counts[k]]));
        }""")
        assert pixels.pop("happy") > 5 * max(pixels.values())
        # The frame on screen, saved with its face boxed in happy's colour.
        with page.expect_download() as download:
            page.click("#camera-save")
        assert re.fullmatch(r"facemood-camera-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.jpg", download.value.suggested_filename)
        frame = np.asarray(Image.open(download.value.path()).convert("RGB"), int)
        assert frame.shape == (480, 640, 3)
        happy = page.evaluate("""async () => { const { colourOf } = await import('./assets/js/ui.js');
            return colourOf(facemood.metadata.labels, 'happy'); }""")
        rgb = np.array([int(happy[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(frame - rgb).max(axis=2) <= 24).sum() > 2000  # the box's edges and the label
        page.click("#camera-toggle")
        assert page.is_hidden("#camera")
        assert page.evaluate("document.getElementById('camera-video').srcObject") is None
        assert log.errors == []
    finally:
        browser.close()


# An init script: every camera stream the page opens, in window.__streams.
RECORD_STREAMS = """window.__streams = [];
const openCamera = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  const stream = await openCamera(constraints);
  window.__streams.push(stream);
  return stream;
};"""
LIVE_STREAMS = "window.__streams.map((s) => s.getTracks().some((t) => t.readyState === 'live'))"


def test_camera_started_twice_or_restarted_at_once_leaves_one_stream_open(site, playwright, tmp_path):
    """A double click on the camera button opens one stream, not two; a stop and a start in the
    same moment (a frame may still be being read) leaves only the new stream open; a stop closes it."""
    browser = fake_camera_browser(playwright, tmp_path)
    try:
        page = browser.new_page()
        page.add_init_script(RECORD_STREAMS)
        log = PageLog(page)
        page.goto(site)
        page.wait_for_selector("body[data-ready=true]")
        page.dblclick("#camera-toggle")
        wait_until(page, "document.querySelectorAll('#camera-faces li').length === 1", timeout=30)
        assert page.evaluate(LIVE_STREAMS) == [True]
        page.evaluate("() => { const b = document.getElementById('camera-toggle'); b.click(); b.click(); }")
        wait_until(page, "window.__streams.length === 2 && document.getElementById('camera-toggle').dataset.i18n === 'camera_stop'")
        wait_until(page, "document.querySelectorAll('#camera-faces li').length === 1", timeout=30)
        assert page.evaluate(LIVE_STREAMS) == [False, True]
        page.click("#camera-toggle")
        assert page.evaluate(LIVE_STREAMS) == [False, False]
        assert page.is_hidden("#camera")
        assert log.errors == []
    finally:
        browser.close()


def test_a_frame_that_cannot_be_read_stops_the_camera_with_a_message(site, playwright, tmp_path):
    """The webcam's detector cannot be downloaded (the network dropped): the first frame fails,
    and the camera is stopped and says why, instead of playing on with nothing read."""
    browser = fake_camera_browser(playwright, tmp_path)
    try:
        # No service worker: it would answer from its cache, which holds the detector.
        page = browser.new_context(service_workers="block").new_page()
        page.add_init_script(RECORD_STREAMS)
        page.route("**/detector/blazeface-front*", lambda route: route.abort())
        page.goto(site)
        page.wait_for_selector("body[data-ready=true]")
        page.click("#camera-toggle")
        wait_until(page, "document.getElementById('status').dataset.kind === 'error'", timeout=30)
        assert page.text_content("#status").startswith("The camera was stopped: ")
        assert page.is_hidden("#camera")
        assert page.text_content("#camera-toggle") == "Start camera"
        assert page.evaluate(LIVE_STREAMS) == [False]
    finally:
        browser.close()


def test_a_camera_that_goes_away_stops_with_a_message_and_a_restart_starts_clean(site, playwright, tmp_path):
    """The camera's track ends (unplugged, taken by another app): the page stops the camera and
    says why, instead of leaving the last frame and its labels up as if live. Started again, it
    shows nothing of the last session while the new stream opens, and nothing to save yet."""
    browser = fake_camera_browser(playwright, tmp_path)
    try:
        page = browser.new_page()
        page.add_init_script(RECORD_STREAMS)
        log = PageLog(page)
        start_camera(page, site)
        page.evaluate("document.getElementById('camera-video').srcObject.getVideoTracks()[0]"
                      ".dispatchEvent(new Event('ended'))")
        wait_until(page, "document.getElementById('status').dataset.kind === 'error'")
        assert page.text_content("#status") == ("The camera was stopped: the camera stopped sending pictures "
                                                "(unplugged, or taken by another app or the system)")
        assert page.is_hidden("#camera")
        assert page.text_content("#camera-toggle") == "Start camera"
        assert page.evaluate(LIVE_STREAMS) == [False]

        # Started again, with the new stream held back until the state between is seen.
        page.evaluate("""() => {
            const open = navigator.mediaDevices.getUserMedia;
            window.__release = null;
            navigator.mediaDevices.getUserMedia = (constraints) => new Promise((resolve) => {
                window.__release = () => resolve(open(constraints));
            });
        }""")
        page.click("#camera-toggle")
        wait_until(page, "window.__release !== null")
        assert page.evaluate("""() => [document.getElementById('camera-fps').textContent,
            document.querySelectorAll('#camera-faces li').length, document.getElementById('camera-announce').textContent,
            document.getElementById('camera-timeline').dataset.columns, document.getElementById('camera-save').disabled]""") \
            == ["", 0, "", "0", True]
        page.evaluate("window.__release()")
        wait_until(page, "document.querySelectorAll('#camera-faces li').length === 1", timeout=30)
        assert not page.is_disabled("#camera-save")
        assert page.evaluate(LIVE_STREAMS) == [False, True]
        assert log.errors == []
    finally:
        browser.close()


def test_live_words_for_screen_readers_change_only_once_a_reading_holds(site, browser):
    """Frames that flip between two expressions, or lose the face for a frame, change nothing that
    is said; a reading that holds for a second is said."""
    with ready_page(browser, site) as page:
        said = page.evaluate("""async () => {
            const { drawLive } = await import('./assets/js/ui.js');
            await (await import('./assets/js/i18n.js')).loadLanguage('en');  // these modules' own copy
            const canvas = document.createElement('canvas');
            const list = document.createElement('ul');
            const announce = document.createElement('p');
            const video = { videoWidth: 64, videoHeight: 48 };
            const face = (label) => ({ box: [8, 8, 24, 24], keypoints: [], label, scores: { [label]: 1 } });
            const frames = [[face('happy')], [face('sad')], [], [face('happy')]];
            const said = [];
            const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
            for (let i = 0; i < 30; i++) {  // 1.5 s of flickering frames
                drawLive(canvas, list, video, { faces: frames[i % frames.length] }, facemood.metadata.labels, announce);
                said.push(announce.textContent);
                await sleep(50);
            }
            for (let i = 0; i < 24; i++) {  // 1.2 s of one reading
                drawLive(canvas, list, video, { faces: [face('sad')] }, facemood.metadata.labels, announce);
                said.push(announce.textContent);
                await sleep(50);
            }
            return said;
        }""")
        assert set(said[:30]) == {""}
        assert said[-1] == "Face 1: sad" and said[30:36] == [""] * 6
        assert page.log.errors == []


def test_expression_timeline_averages_frames_and_leaves_faceless_time_empty(site, browser):
    """The webcam chart on made-up frames: a second of happy, a second of sad with one slow frame
    (a short gap, drawn as one run), then a second in which frames have no face (left empty)."""
    with ready_page(browser, site) as page:
        columns = page.evaluate("""async () => {
            const { colourOf } = await import('./assets/js/ui.js');
            const { ExpressionTimeline } = await import('./assets/js/timeline.js');
            const labels = facemood.metadata.labels;
            const canvas = document.createElement('canvas');
            canvas.style.cssText = 'width: 600px; height: 100px';
            document.body.append(canvas);
            const timeline = new ExpressionTimeline(canvas, colourOf, 3);
            const only = (label) => Object.fromEntries(labels.map((l) => [l, l === label ? 1 : 0]));
            for (let t = 0; t < 1000; t += 20) timeline.add(t, only('happy'));
            for (let t = 1000; t < 2000; t += 20) if (t < 1300 || t >= 1500) timeline.add(t, only('sad'));
            for (let t = 2000; t < 3000; t += 20) timeline.add(t, null);
            timeline.draw(labels);
            const ctx = canvas.getContext('2d');
            const colourAt = (x) => {
                const [r, g, b] = ctx.getImageData(x, canvas.height / 2, 1, 1).data;
                const hit = labels.find((l) => colourOf(labels, l) === '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join(''));
                return hit ?? 'none';
            };
            // Where each tenth of a second of the three sits: the chart is the canvas less the legend.
            const chartRight = Number(canvas.dataset.chartWidth);
            const at = (ms) => colourAt(Math.floor(chartRight - ((2990 - ms) / 3000) * chartRight) - 1);
            return { drawn: Number(canvas.dataset.columns), happy: at(500), slow: at(1400), sad: at(1800), faceless: at(2500) };
        }""")
        assert columns == {"drawn": 18, "happy": "happy", "slow": "sad", "sad": "sad", "faceless": "none"}


def test_results_are_saved_as_csv_and_cleared(site, browser, tmp_path):
    """Two faces, and a photo without one whose name has a comma, quotes and a leading = (which a
    spreadsheet would run as a formula): the CSV has a row per face as the cards show it and a bare
    row for the faceless photo, its name kept as text; clearing empties the page."""
    group = write_group_photo(tmp_path / "group.png")
    blank = tmp_path / '=blank, "grey".png'  # a formula, a comma and quotes: all kept as text
    Image.new("RGB", (300, 200), (128, 128, 128)).save(blank)
    with ready_page(browser, site) as page:
        assert page.is_hidden("#results-actions")
        page.set_input_files("#file-input", [str(group), str(blank)])
        wait_until(page, "document.querySelectorAll('article.result').length === 2")
        assert page.text_content("#results-summary") == "Photos read: 2 · faces: 2 · happy 2"
        shown = page.evaluate("""() => [...document.querySelectorAll('article.result[data-faces="2"] section.face')]
            .map((s) => [...s.querySelectorAll('li.bar')].map((b) => [b.dataset.class, Number(b.dataset.probability)]))""")
        with page.expect_download() as download:
            page.click("#save-csv")
        assert download.value.suggested_filename == "facemood-results.csv"
        saved = Path(download.value.path()).read_bytes()
        assert saved.startswith(b"\xef\xbb\xbf")  # UTF-8 said so, for spreadsheets
        rows = list(csv.reader(io.StringIO(saved.decode("utf-8-sig"), newline="")))
        labels = json.loads((SHIPPED_MODEL / "metadata.json").read_text())["labels"]
        assert rows[0] == ["file", "face", "x", "y", "width", "height", "label", *labels]
        assert [row[:2] for row in rows[1:]] == [["group.png", "1"], ["group.png", "2"], ["'" + blank.name, ""]]
        assert all(value == "" for value in rows[3][1:])
        for row, bars in zip(rows[1:3], shown):
            scores = dict(bars)
            assert row[6] == max(scores, key=scores.get)
            assert [float(v) for v in row[7:]] == pytest.approx([scores[label] for label in labels], abs=1e-4)
        assert int(rows[1][2]) < 550 <= int(rows[2][2])  # reading order: the left face first
        page.click("#clear-results")
        assert page.query_selector_all("article.result") == []
        assert page.is_hidden("#results-actions") and page.text_content("#results-summary") == ""
        assert page.text_content("#results-announce") == ""  # it spoke of photos no longer shown
        assert page.log.errors == []


# Decoding a given photo waits until the test lets it go: decodeGate.waiting holds one function per
# decode started, which lets it go.
GATE_DECODING = """() => {
  window.decodeGate = { waiting: [] };
  const original = window.createImageBitmap.bind(window);
  window.createImageBitmap = (source, ...rest) => (source instanceof Blob
    ? new Promise((resolve) => decodeGate.waiting.push(() => resolve(original(source, ...rest))))
    : original(source, ...rest));
}"""


def test_several_photos_are_read_one_at_a_time_with_progress_and_can_be_stopped(site, browser, tmp_path):
    """Photos are read in turn, each decoded only once the one before is answered; a run of several
    shows how far it is (photos given meanwhile join it) and its stop button leaves the rest unread;
    the status then says how many were read, and photos given after the stop make a run of their
    own. A single photo shows no progress. "Clear results" ends a run, the photo being read
    included."""
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"photo-{i}.png")
        Image.fromarray(astronaut()).save(paths[-1])
    progress = "() => [document.getElementById('batch').hidden, document.getElementById('batch-progress').value, " \
               "document.getElementById('batch-progress').max, document.getElementById('batch-text').textContent]"
    cards = "document.querySelectorAll('article.result').length"
    with ready_page(browser, site) as page:
        page.evaluate(GATE_DECODING)
        page.set_input_files("#file-input", [str(p) for p in paths[:3]])
        wait_until(page, "decodeGate.waiting.length === 1")
        page.set_input_files("#file-input", [str(p) for p in paths[3:]])  # joins the run
        assert page.evaluate(progress) == [False, 0, 5, "Reading photos: 0 of 5"]
        page.evaluate("decodeGate.waiting.shift()()")
        wait_until(page, f"{cards} === 1 && decodeGate.waiting.length === 1")  # the next one only
        assert page.evaluate(progress) == [False, 1, 5, "Reading photos: 1 of 5"]
        page.focus("#batch-stop")
        page.keyboard.press("Enter")
        assert page.evaluate(progress)[0] is True
        # The button pressed hid itself: the keyboard's focus moves to the photo picker.
        assert page.evaluate("document.activeElement.id") == "file-input"
        page.set_input_files("#file-input", [str(p) for p in paths[:2]])  # after a stop: a run of their own
        assert page.evaluate(progress) == [False, 0, 2, "Reading photos: 0 of 2"]
        page.wait_for_timeout(300)
        assert page.evaluate("decodeGate.waiting.length") == 1  # still only the photo being read
        page.evaluate("decodeGate.waiting.shift()()")  # which is still answered
        wait_until(page, f"{cards} === 2 && decodeGate.waiting.length === 1")
        assert page.text_content("#status") == "Stopped: 2 of 5 photos read."
        for done in range(2):
            wait_until(page, "decodeGate.waiting.length === 1")
            page.evaluate("decodeGate.waiting.shift()()")
        wait_until(page, f"{cards} === 4 && document.getElementById('batch').hidden")
        assert page.text_content("#status") == "Done: 2 photos read."
        page.wait_for_timeout(300)
        assert page.evaluate("decodeGate.waiting.length") == 0  # none of the stopped run started

        page.set_input_files("#file-input", str(paths[0]))
        wait_until(page, "decodeGate.waiting.length === 1")
        assert page.evaluate(progress)[0] is True  # one photo: no progress
        page.evaluate("decodeGate.waiting.shift()()")
        wait_until(page, f"{cards} === 5")
        assert page.text_content("#status") == "Done: 2 photos read."  # a single photo leaves it

        # "Clear results" during a run ends it: the photo being read shows no card, no other starts.
        page.set_input_files("#file-input", [str(p) for p in paths[:3]])
        wait_until(page, "decodeGate.waiting.length === 1")
        page.focus("#clear-results")
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "file-input"
        page.evaluate("decodeGate.waiting.shift()()")
        wait_until(page, "document.getElementById('batch').hidden")
        page.wait_for_timeout(300)
        assert page.evaluate(f"[{cards}, decodeGate.waiting.length]") == [0, 0]
        # The run cleared says nothing, and the last run's "Done" goes with the cards it spoke of.
        assert page.text_content("#status").startswith("Ready: model loaded in ")
        page.set_input_files("#file-input", str(paths[0]))  # and the next photo is read as ever
        wait_until(page, "decodeGate.waiting.length === 1")
        page.evaluate("decodeGate.waiting.shift()()")
        wait_until(page, f"{cards} === 1")
        page.wait_for_timeout(500)
        assert page.evaluate(cards) == 1  # the cleared photo's card never came

        # Stopped, then cleared: the photo being read belongs to a run already ended; it shows no
        # card either, and its run says nothing.
        page.set_input_files("#file-input", [str(p) for p in paths[:3]])
        wait_until(page, "decodeGate.waiting.length === 1")
        page.click("#batch-stop")
        page.click("#clear-results")
        page.evaluate("decodeGate.waiting.shift()()")
        page.set_input_files("#file-input", str(paths[1]))  # read only once that photo is answered
        wait_until(page, "decodeGate.waiting.length === 1")
        page.evaluate("decodeGate.waiting.shift()()")
        wait_until(page, f"{cards} === 1")
        page.wait_for_timeout(300)
        assert page.evaluate(f"[{cards}, decodeGate.waiting.length]") == [1, 0]
        assert page.text_content("article.result figcaption") == "photo-1.png"  # the photo given after
        assert page.text_content("#status").startswith("Ready: model loaded in ")
        assert page.log.errors == []


def test_a_browser_error_or_a_fault_of_the_page_answers_its_photo_and_the_run_goes_on(site, browser, tmp_path):
    """The browser's own errors (a DOMException, whose legacy numeric code names no message) are
    shown in their words; a fault of the page's own while a photo is shown answers that photo, and
    the photos after it, and those given later, are all read."""
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"photo-{i}.png")
        Image.fromarray(astronaut()).save(paths[-1])
    cards = "document.querySelectorAll('article.result').length"
    with ready_page(browser, site) as page:
        page.evaluate("""() => {
            window.__fail = { read: 1, url: 0 };
            for (const proto of [CanvasRenderingContext2D.prototype, OffscreenCanvasRenderingContext2D.prototype]) {
              const original = proto.getImageData;
              proto.getImageData = function (...args) {
                if (__fail.read > 0) { __fail.read -= 1; throw new DOMException('The canvas could not be read.', 'InvalidStateError'); }
                return original.apply(this, args);
              };
            }
            const createObjectURL = URL.createObjectURL;
            URL.createObjectURL = (blob) => {
              if (__fail.url > 0) { __fail.url -= 1; throw new TypeError('no object URL today'); }
              return createObjectURL(blob);
            };
        }""")
        page.set_input_files("#file-input", [str(p) for p in paths])
        wait_until(page, f"{cards} === 3")
        errors = [c.inner_text() for c in page.query_selector_all("article.result.error")]
        assert errors == ["photo-0.png: The canvas could not be read."]
        page.evaluate("() => { __fail.url = 1; }")  # the page's own step after the photo is read
        page.set_input_files("#file-input", [str(p) for p in paths])
        wait_until(page, f"{cards} === 6")
        errors = [c.inner_text() for c in page.query_selector_all("article.result.error")]
        assert errors == ["photo-0.png: no object URL today", "photo-0.png: The canvas could not be read."]
        page.set_input_files("#file-input", str(paths[1]))  # a run after it is read as ever
        wait_until(page, f"{cards} === 7")
        # The files that could not be read are counted apart, in the status and in the summary.
        assert page.text_content("#status") == "Done: 3 files, 2 read as photos, 1 could not be read."
        assert page.text_content("#results-summary") == "Photos read: 5 · faces: 5 · happy 5 · could not be read: 2"
        assert [e for e in page.log.errors if "no object URL today" not in e] == []


def test_the_keyboard_focus_stays_when_a_run_ends_or_a_button_is_busy(site, browser, tmp_path):
    """A run that ends by itself hides its Stop button: the focus moves to the photo picker. A save
    button pressed with the keyboard is disabled while it works and has the focus back after."""
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"photo-{i}.png")
        Image.fromarray(astronaut()).save(paths[-1])
    with ready_page(browser, site) as page:
        page.evaluate(GATE_DECODING)
        page.set_input_files("#file-input", [str(p) for p in paths])
        wait_until(page, "decodeGate.waiting.length === 1")
        page.focus("#batch-stop")
        for _ in paths:
            wait_until(page, "decodeGate.waiting.length === 1")
            page.evaluate("decodeGate.waiting.shift()()")
        wait_until(page, "document.getElementById('batch').hidden")
        assert page.evaluate("document.activeElement.id") == "file-input"
        page.focus("article.result .save-image")
        with page.expect_download():
            page.keyboard.press("Enter")
        wait_until(page, "!document.querySelector('article.result .save-image').disabled")
        assert page.evaluate("document.activeElement.classList.contains('save-image')")
        assert page.log.errors == []


def test_results_can_be_saved_even_when_the_model_failed_to_load(site, browser, tmp_path):
    """The model's files cannot be fetched: a photo given gets an error card, and saving the table
    still gives a file (its header), not an error in the page."""
    path = tmp_path / "photo.png"
    Image.fromarray(astronaut()).save(path)
    with ready_page(browser, site, wait_ready=False, service_workers="block") as page:
        page.route("**/model/model.json", lambda route: route.abort())
        page.reload()
        wait_until(page, "document.getElementById('status').dataset.kind === 'error'", timeout=30)
        page.set_input_files("#file-input", str(path))
        page.wait_for_selector("article.result.error")
        with page.expect_download() as download:
            page.click("#save-csv")
        header = Path(download.value.path()).read_bytes().decode("utf-8-sig").splitlines()
        assert header == ["file,face,x,y,width,height,label"]
        assert page.is_visible("#language")  # the error can be read in the other language
        assert not [e for e in page.log.errors if "model.json" not in e and "Failed to load resource" not in e]


def test_a_photo_is_saved_with_its_faces_labelled(site, browser, tmp_path):
    """The saved copy of a PNG photo is a PNG of the same size: each face's box in its label's
    colour where the page found it, and every pixel away from the boxes and labels as it was. A JPEG
    photo is saved as JPEG, under the photo's name; a photo without a face offers no copy."""
    group = write_group_photo(tmp_path / "group.png")
    portrait = tmp_path / "portrait.jpg"
    Image.fromarray(astronaut()).save(portrait, quality=90)
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), (128, 128, 128)).save(blank)
    with ready_page(browser, site) as page:
        page.set_input_files("#file-input", [str(group), str(portrait), str(blank)])
        wait_until(page, "document.querySelectorAll('article.result').length === 3")
        assert page.query_selector_all('article.result[data-faces="0"] .save-image') == []
        faces = page.evaluate("""async () => (await facemood.classify(document.querySelector('article.result[data-faces="2"] img'))).faces
            .map(({ box, label }) => ({ box: box.map(Math.round), label }))""")
        colours = page.evaluate("""(labels) => labels.map((label) => {
            const bar = [...document.querySelectorAll('article.result[data-faces="2"] section.face')]
              .find((s) => s.dataset.label === label).querySelector('.verdict');
            return getComputedStyle(bar).color; })""", [f["label"] for f in faces])
        with page.expect_download() as download:
            page.click('article.result[data-faces="2"] .save-image')
        assert download.value.suggested_filename == "group-facemood.png"
        saved = np.asarray(Image.open(download.value.path()).convert("RGB")).astype(int)
        original = np.asarray(Image.open(group).convert("RGB")).astype(int)
        assert saved.shape == original.shape
        changed = np.zeros(original.shape[:2], bool)
        for face, colour in zip(faces, colours):
            x, y, w, h = face["box"]
            rgb = [int(v) for v in re.findall(r"\d+", colour)[:3]]
            assert saved[y + h // 2, x].tolist() == rgb  # the box's left edge, in the label's colour
            assert saved[y + h // 2, x + w - 1].tolist() == rgb
            assert (saved[y + h // 3: y + 2 * h // 3, x + w // 3: x + 2 * w // 3] == original[y + h // 3: y + 2 * h // 3, x + w // 3: x + 2 * w // 3]).all()
            changed[max(0, y - 60): y + h + 8, max(0, x - 8): x + max(w, 400) + 8] = True  # box, stroke, label
        assert (saved[~changed] == original[~changed]).all()
        with page.expect_download() as download:
            page.click('article.result:has(img[alt*="portrait"]) .save-image')
        assert download.value.suggested_filename == "portrait-facemood.jpg"
        with Image.open(download.value.path()) as jpeg:
            assert (jpeg.format, jpeg.size) == ("JPEG", (512, 512))
        names = page.evaluate("""async () => { const { labelledName } = await import('./assets/js/export.js');
            return [labelledName('a/b:c*?.JPEG', 'image/jpeg'), labelledName('pasted image', 'image/png'), labelledName('.png', 'image/png')]; }""")
        assert names == ["a_b_c__-facemood.jpg", "pasted image-facemood.png", "photo-facemood.png"]
        assert page.log.errors == []


def test_a_face_at_the_photos_edges_is_boxed_and_labelled_inside_the_photo(site, browser, tmp_path):
    """A photo cropped to the face: the face is found with a box running past the photo's edges.
    On a phone's narrow page its box and tag stay over the photo (the buttons below it still take
    their clicks), and the saved copy has its label on the photo, not above it."""
    tight = tmp_path / "tight.png"
    Image.fromarray(astronaut()).crop((167, 69, 283, 185)).resize((300, 300)).save(tight)
    with ready_page(browser, site, viewport={"width": 360, "height": 740}) as page:
        page.set_input_files("#file-input", str(tight))
        wait_until(page, "document.querySelector('article.result')")
        assert page.get_attribute("article.result", "data-faces") == "1"
        found = page.evaluate("async () => (await facemood.classify(document.querySelector('article.result img'))).faces[0].box")
        assert found[0] < 0 or found[1] < 0 or found[0] + found[2] > 300 or found[1] + found[3] > 300  # the case at hand
        photo, box, tag = (page.locator(selector).bounding_box()
                           for selector in ("article.result img", "article.result .face-box", "article.result .face-tag"))
        for rect in (box, tag):
            assert photo["x"] - 0.5 <= rect["x"] and rect["x"] + rect["width"] <= photo["x"] + photo["width"] + 0.5
            assert photo["y"] - 0.5 <= rect["y"] and rect["y"] + rect["height"] <= photo["y"] + photo["height"] + 0.5
        on_top = page.evaluate("""['#save-csv', '#clear-results'].map((s) => {
            const r = document.querySelector(s).getBoundingClientRect();
            return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)?.closest(s) !== null; })""")
        assert on_top == [True, True]
        with page.expect_download() as download:
            page.click("article.result .save-image")
        saved = np.asarray(Image.open(download.value.path()).convert("RGB")).astype(int)
        original = np.asarray(Image.open(tight).convert("RGB")).astype(int)
        label_band = np.abs(saved[:20, :100] - original[:20, :100]).sum(axis=2) > 60
        assert label_band.mean() > 0.5  # the label's patch over the photo's top left corner
        assert page.log.errors == []


def test_camera_permission_denied_is_explained(site, browser):
    with ready_page(browser, site) as page:
        page.evaluate("""() => { navigator.mediaDevices.getUserMedia = () =>
            Promise.reject(new DOMException('denied', 'NotAllowedError')); }""")
        page.click("#camera-toggle")
        page.wait_for_selector("#status[data-kind=error]")
        assert "permission was denied" in page.inner_text("#status")


# Every place a line of Korean text breaks other than after a space: (text, the syllable where it
# broke), from each character's box in the laid-out page.
BREAKS_INSIDE_KOREAN_WORDS = """() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent;
    if (!/[\uac00-\ud7a3]/.test(text) || !node.parentElement.checkVisibility()) continue;
    let lastTop = null;
    for (let i = 0; i < text.length; i += 1) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rect = range.getClientRects()[0];
      if (!rect || /\s/.test(text[i])) continue;
      if (lastTop !== null && rect.top > lastTop + 2 && !/\s/.test(text[i - 1]) && /[\uac00-\ud7a3]/.test(text[i - 1] + text[i]))
        found.push([text.trim(), text[i]]);
      lastTop = rect.top;
    }
  }
  return found;
}"""


def test_korean_lines_break_between_words_on_a_phone(site, browser, tmp_path):
    with ready_page(browser, site, locale="ko-KR", viewport={"width": 360, "height": 740}) as page:
        path = tmp_path / "photo.png"
        Image.fromarray(astronaut()).save(path)
        page.set_input_files("#file-input", str(path))
        page.wait_for_selector("article.result")
        assert page.evaluate("document.documentElement.lang") == "ko"
        assert page.evaluate(BREAKS_INSIDE_KOREAN_WORDS) == []


def test_korean_ui_from_browser_language_and_switch(site, browser, tmp_path):
    with ready_page(browser, site, locale="ko-KR") as page:
        assert page.evaluate("document.documentElement.lang") == "ko"
        assert page.get_attribute("#language", "lang") == "en"  # "English", read out in English
        assert "사진" in page.inner_text("#drop-zone")
        path = tmp_path / "photo.png"
        Image.fromarray(astronaut()).save(path)
        page.set_input_files("#file-input", str(path))
        page.wait_for_selector("article.result")
        screenshot(page, "korean")
        assert page.text_content("#results-summary") == "읽은 사진 1장 · 얼굴 1개 · 기쁨 1"
        assert "기쁨" in page.inner_text("footer") and "happy" not in page.inner_text("footer")  # class names too
        assert "mobilenet, 블록 8개" in page.inner_text("footer") and "blocks" not in page.inner_text("footer")
        assert page.text_content("#results-announce").startswith("photo.png: ")
        page.click("#language")
        wait_until(page, "document.documentElement.lang === 'en'")
        assert page.get_attribute("#language", "lang") == "ko"
        assert "Drop photos or a folder here" in page.inner_text("#drop-zone")
        assert "happy, sad" in page.inner_text("footer") and "mobilenet, 8 blocks" in page.inner_text("footer")
        # What the live region said was Korean: gone, not left to be read out in the wrong language.
        assert page.text_content("#results-announce") == ""
        assert page.text_content("#results-summary") == "Photos read: 1 · faces: 1 · happy 1"  # redrawn
        # The shipped shards are uint8 with some tensors kept float16: the footer names both.
        assert "bytes of uint8 + float16 weights" in page.inner_text("footer")
        assert page.query_selector("article.result .timing").inner_text().endswith("on this device")
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert page.evaluate("document.documentElement.lang") == "en"  # the choice is remembered
        assert page.log.errors == []


def test_a_language_that_cannot_be_loaded_is_said_and_not_remembered(site, browser):
    """Offline before the page was cached, say: the switch cannot fetch the other language. The page
    says so in its own language, stays in it, and does not make the other one the next visit's."""
    with ready_page(browser, site, service_workers="block") as page:
        page.route("**/i18n/ko.json", lambda route: route.fulfill(status=404, body="not found"))
        page.click("#language")
        wait_until(page, "document.getElementById('status').dataset.kind === 'error'")
        assert page.text_content("#status") == ("The other language could not be loaded: "
                                                "i18n/ko.json could not be loaded (404)")
        assert page.evaluate("[document.documentElement.lang, localStorage.getItem('facemood.language')]") == ["en", None]
        assert "Drop photos or a folder here" in page.inner_text("#drop-zone")
        page.unroute("**/i18n/ko.json")
        page.click("#language")  # and the switch works once the file can be had
        wait_until(page, "document.documentElement.lang === 'ko'")
        assert page.evaluate("localStorage.getItem('facemood.language')") == "ko"
        assert page.log.errors == ["Failed to load resource: the server responded with a status of 404 (Not Found)"]


def test_the_language_switch_appears_once_the_page_is_ready(site, browser):
    # Its Hangul label would make the page's first layout search the system's fonts, so the page
    # arrives with the switch hidden and shows it once it is ready.
    with ready_page(browser, site) as page:
        served = page.request.get(site).text()
        assert re.search(r'<button id="language"[^>]* hidden>', served)
        assert page.is_visible("#language") and page.inner_text("#language") == "한국어"


def test_group_photo_faces_can_be_focused_and_phone_layout_fits(site, browser, tmp_path):
    with ready_page(browser, site, viewport={"width": 360, "height": 740}, device_scale_factor=2) as page:
        screenshot(page, "empty-phone")
        path = write_group_photo(tmp_path / "group.png")
        page.set_input_files("#file-input", str(path))
        card = page.wait_for_selector("article.result")
        assert card.get_attribute("data-faces") == "2"
        # A screen reader hears one line for the photo, not the card with its bars.
        assert page.get_attribute("#results", "aria-live") is None
        labels = page.evaluate("[...document.querySelectorAll('section.face')].map((s) => s.dataset.label)")
        assert page.text_content("#results-announce") == f"group.png: faces found: {labels[0]}, {labels[1]}"
        assert page.get_attribute("#results-announce", "aria-live") == "polite"
        # Numbered as people read the photo: face 1 is the one on the left.
        lefts = page.evaluate("[...document.querySelectorAll('.face-box')].map((b) => parseFloat(b.style.left))")
        assert lefts[0] < 25 < 50 < lefts[1]
        page.click(".face-box[data-face='1']")
        assert "focused" in page.get_attribute("section.face[data-face='1']", "class")
        assert "focused" not in page.get_attribute("section.face[data-face='0']", "class")
        # Nothing sticks out sideways on a 360 px screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        screenshot(page, "group-phone")


def test_faces_are_numbered_in_reading_order(site, browser):
    # Two rows of heads, none quite level with its neighbours, given in detection-score order.
    boxes = [[300, 10, 50, 50], [200, 210, 60, 60], [10, 30, 50, 50], [20, 190, 60, 60], [150, 0, 40, 40]]
    with ready_page(browser, site) as page:
        ordered = page.evaluate("""async (boxes) => {
          const { readingOrder } = await import('./assets/js/faces.js');
          return readingOrder(boxes.map((box) => ({ box }))).map((face) => face.box);
        }""", boxes)
    assert ordered == [[10, 30, 50, 50], [150, 0, 40, 40], [300, 10, 50, 50], [20, 190, 60, 60], [200, 210, 60, 60]]


def test_keyboard_opens_the_file_picker(site, browser):
    with ready_page(browser, site) as page:
        # Listening before the key press: Playwright starts intercepting file choosers only once
        # something listens, and `expect_file_chooser` around the press lost that race now and then.
        choosers = []
        page.on("filechooser", lambda chooser: choosers.append(chooser))
        # The keyboard reaches the photo picker right after the language switch, and its label (the
        # input itself is invisible) shows the focus ring.
        for _ in range(3):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "file-input":
                break
        assert page.evaluate("document.activeElement.id") == "file-input"
        assert page.evaluate("getComputedStyle(document.querySelector('label[for=file-input]')).outlineStyle") == "solid"
        assert page.evaluate("getComputedStyle(document.getElementById('camera-toggle')).outlineStyle") != "solid"
        page.keyboard.press("Enter")
        deadline = time.monotonic() + 10
        while not choosers and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert len(choosers) == 1 and choosers[0].is_multiple()
        screenshot(page, "empty-desktop")


def test_model_card_renders_metrics_and_plots(site, browser):
    with ready_page(browser, site + "model.html", wait_ready=False) as page:
        assert "model card" in page.inner_text("h1")
        for image in page.query_selector_all(".plots img"):
            assert page.evaluate("img => img.complete && img.naturalWidth > 0", image)
        assert page.query_selector_all("table")
        # The card says how the shipped model was trained, FER+ votes included when they were used.
        training = json.loads((SHIPPED_MODEL / "metadata.json").read_text())["training"]
        ferplus = training["data"].get("ferplus_votes")
        assert ("FER+ crowd votes" in page.inner_text("main")) == bool(ferplus)
        if ferplus:
            assert f"({ferplus}) mixed into the training targets" in page.inner_text("main")
        # Every training run behind the model, the runs it continued included, first to last.
        from web.render import training_stages

        stages = training_stages(training)
        # Where its weights started: the first run's, not the last run's (which resumed a model).
        started = stages[0]["config"]["weights"]
        assert (f"started from the weights file {started}" in page.inner_text("main")) == (started not in ("none", "imagenet"))
        for stage in stages:
            if stage.get("teacher"):
                assert f"taught by {stage['teacher']['name']}" in page.inner_text("main")
        listed = [li.inner_text() for li in page.query_selector_all("ol.stages li")]
        if len(stages) > 1:
            assert [text.split(" epochs")[0] for text in listed] == [str(s["epochs_run"]) for s in stages]
            assert f"{sum(s['epochs_run'] for s in stages)} epochs and" in page.inner_text("main")
        else:
            assert listed == [] and f"{stages[0]['epochs_run']} epochs (best: " in page.inner_text("main")
        screenshot(page, "model-card")
        assert page.log.errors == []
