"""The built site in a real Chromium: TF.js loads, images get predictions, scores match Python."""
import base64
import contextlib
import hashlib
import io
import json
import shutil
import time
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

import faces
from conftest import ARTIFACTS, SHIPPED_MODEL, PageLog, wait_until

pytestmark = pytest.mark.browser

# Probability tolerance between the browser and Python on the same quantized model. Both run the
# same de-quantized float32 weights on the same pixels; only float rounding differs (XNNPACK in
# WASM vs Eigen in TensorFlow, different summation order over ~50 layers). Measured differences
# are around 1e-6; 1e-4 leaves room for other CPUs while still catching any real mismatch
# (a wrong normalization, channel, resize or label order moves probabilities by > 1e-2).
PARITY_TOLERANCE = 1e-4


def png_data_url(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def probe_images(size):
    """Faces of every kind plus images no face-trained model has seen: flat, noise, gradient."""
    rng = np.random.default_rng(7)
    images = [np.asarray(faces.face(m, size, seed=s)) for m in faces.MOUTHS for s in range(3)]
    images.append(np.full((size, size), 128, np.uint8))
    images.append(rng.integers(0, 256, (size, size), dtype=np.uint8))
    images.append(np.tile(np.linspace(0, 255, size).astype(np.uint8), (size, 1)))
    return images


@pytest.fixture(scope="module")
def tiny_site(tiny_build):
    from web.serve import start_server

    server, url = start_server(tiny_build["dist"])
    yield {"dist": tiny_build["dist"], "url": url, "model_dir": tiny_build["model_dir"]}
    server.shutdown()


@pytest.fixture(params=["shipped", "tiny"])
def site(request):
    if request.param == "shipped":
        return {**request.getfixturevalue("shipped_site"), "model_dir": SHIPPED_MODEL}
    return request.getfixturevalue("tiny_site")


def test_page_loads_clean_and_only_talks_to_its_own_origin(site, open_page):
    page, log = open_page(site["url"])
    info = page.evaluate("facemood.ready")
    metadata = json.loads((site["model_dir"] / "metadata.json").read_text())
    assert info["labels"] == metadata["labels"]
    assert info["backend"] == "wasm"
    page.wait_for_selector("body[data-ready=true]")
    assert "Ready" in page.inner_text("#status")
    assert log.errors == []
    origin = urlparse(site["url"]).netloc
    assert log.requests and all(urlparse(u).netloc == origin for u, _ in log.requests)
    # Classifying sends nothing anywhere: no request at all, let alone one carrying the image.
    before = len(log.requests)
    page.evaluate("u => facemood.classify(u)", png_data_url(astronaut()))
    assert [(u, m) for u, m in log.requests[before:] if not u.startswith("data:")] == []
    assert {m for _, m in log.requests} == {"GET"}


# Counts the runs of every TF.js graph model in the page (the detector and the expression model).
COUNT_GRAPH_RUNS = """() => {
  window.__graphRuns = 0;
  const execute = tf.GraphModel.prototype.execute;
  tf.GraphModel.prototype.execute = function (...args) { window.__graphRuns += 1; return execute.apply(this, args); };
  // Snapshots: when the page is ready, and when the first result card is in the page (later runs
  // are the page settling: faces.js sets up detector copies for other photo shapes).
  facemood.ready.then(() => { window.__graphRunsAtReady = window.__graphRuns; });
  new MutationObserver((_, observer) => {
    if (!document.querySelector('article.result')) return;
    window.__graphRunsAtCard = window.__graphRuns;
    observer.disconnect();
  }).observe(document.body, { childList: true, subtree: true });
}"""


@pytest.mark.parametrize("photo_first", [True, False])
def test_a_photo_given_while_the_page_loads_skips_the_blank_warm_up_runs(shipped_site, browser, tmp_path, photo_first):
    """Each network's first run is slow; a blank one is run for it only when no photo is waiting to
    do that work. Both networks' files are held back until the photo has been given."""
    photo = tmp_path / "face.png"
    Image.fromarray(astronaut()).save(photo)
    context = browser.new_context()
    try:
        held = []
        context.route("**/model.json", lambda route: held.append(route))
        context.route("**/detector/blazeface.json", lambda route: held.append(route))
        page = context.new_page()
        log = PageLog(page)
        page.goto(shipped_site["url"], wait_until="domcontentloaded")
        page.evaluate(COUNT_GRAPH_RUNS)
        if photo_first:
            page.set_input_files("#file-input", str(photo))
        deadline = time.monotonic() + 30
        while len(held) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(50)  # route handlers run while Playwright waits
        assert len(held) == 2
        for route in held:
            route.continue_()
        if not photo_first:
            page.evaluate("facemood.ready.then(() => true)")
            page.set_input_files("#file-input", str(photo))
        card = page.wait_for_selector("article.result", timeout=60000)
        assert card.get_attribute("data-faces") == "1"
        info = page.evaluate("facemood.ready")
        if photo_first:  # one detection and one classification for the photo, no blank run (the
            # shipped network is sure of the astronaut's expression: no mirror-image run)
            assert page.evaluate("window.__graphRunsAtCard") == 2
        else:  # one blank run per network before the page is ready
            assert page.evaluate("window.__graphRunsAtReady") == 2
        assert info["model"]["firstInferenceMs"] > 0
        assert log.errors == []
    finally:
        context.close()


def test_a_large_run_given_while_the_page_loads_holds_back_only_until_its_first_answer(shipped_site, browser, tmp_path):
    """The language switch (and the service worker) wait for the first photo given while the page
    loads, not for the whole run it belongs to: a folder of photos dropped first would otherwise
    keep them back until its last photo."""
    photo = tmp_path / "face.png"
    Image.fromarray(astronaut()).save(photo)
    count = 60
    context = browser.new_context()
    try:
        held = []
        context.route("**/model.json", lambda route: held.append(route))
        page = context.new_page()
        log = PageLog(page)
        page.goto(shipped_site["url"], wait_until="domcontentloaded")
        page.set_input_files("#file-input", [str(photo)] * count)
        deadline = time.monotonic() + 30
        while not held and time.monotonic() < deadline:
            page.wait_for_timeout(50)  # route handlers run while Playwright waits
        assert held
        held[0].continue_()
        page.wait_for_selector("body[data-ready=true]", timeout=60000)
        answered = page.locator("article.result").count()
        assert page.locator("#language").is_visible()
        assert 1 <= answered < count, f"{answered} of {count} photos answered when the page became ready"
        wait_until(page, f"document.querySelectorAll('article.result').length === {count}", timeout=120)
        assert log.errors == []
    finally:
        context.close()


def test_browser_scores_equal_python_on_the_converted_model(site, open_page):
    from convert.graph_model import GraphModel, page_probabilities

    metadata = json.loads((site["model_dir"] / "metadata.json").read_text())
    size = metadata["input"]["size"]
    images = probe_images(size)
    expected = page_probabilities(GraphModel(site["model_dir"] / "tfjs"), np.stack(images)[..., None], metadata)
    page, log = open_page(site["url"])
    results = page.evaluate("urls => Promise.all(urls.map(u => facemood.classifyFace(u)))",
                            [png_data_url(im) for im in images])
    browser = np.array([[r["scores"][label] for label in metadata["labels"]] for r in results])
    difference = np.abs(browser - expected).max()
    assert difference < PARITY_TOLERANCE, f"max |browser - python| = {difference:.2e}"
    assert [r["label"] for r in results] == [metadata["labels"][i] for i in expected.argmax(1)]
    assert log.errors == []


def test_the_page_flips_only_the_faces_it_is_unsure_of(tmp_path, open_page):
    """With inference.flip_when_unsure the page runs a crop's mirror image only when its first pass
    puts the two likeliest classes closer than the margin: its scores equal Python's for probes on
    both sides of a margin set between them (on the shipped network: the tiny test model's scores
    hardly vary from one probe to the next)."""
    from convert.graph_model import GraphModel, page_input, page_probabilities
    from convert.selective_flip import top_two_margin
    from web.render import render_site
    from web.serve import start_server

    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model_dir, ignore=shutil.ignore_patterns("report"))
    metadata = json.loads((model_dir / "metadata.json").read_text())
    images = probe_images(metadata["input"]["size"])
    x = np.stack(images)[..., None]
    graph = GraphModel(model_dir / "tfjs")
    fed = page_input(x, metadata)
    single, mirror = graph(fed), graph(fed[:, :, ::-1])
    margins = np.sort(top_two_margin(single))
    middle = len(margins) // 2
    margin = float((margins[middle - 1] + margins[middle]) / 2)
    metadata.setdefault("inference", {}).update(
        test_time_flip=True, flip_when_unsure={"margin": margin, "fitted_on": "val", "share_flipped": 0.5})
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    expected = page_probabilities(graph, x, metadata)
    flipped = top_two_margin(single) < margin
    assert 0 < flipped.sum() < len(images)
    # Flipping every face would differ on the sure ones: this test tells the two apart.
    assert np.abs((single + mirror)[~flipped] / 2 - expected[~flipped]).max() > 100 * PARITY_TOLERANCE
    server, url = start_server(render_site(model_dir, tmp_path / "dist"))
    try:
        page, log = open_page(url)
        results = page.evaluate("urls => Promise.all(urls.map(u => facemood.classifyFace(u)))",
                                [png_data_url(im) for im in images])
    finally:
        server.shutdown()
    browser = np.array([[r["scores"][label] for label in metadata["labels"]] for r in results])
    difference = np.abs(browser - expected).max()
    assert difference < PARITY_TOLERANCE, f"max |browser - python| = {difference:.2e}"
    assert log.errors == []


def test_quantized_weights_decode_exactly(tiny_site, open_page):
    """The runtime bundle decodes weights its own way (web/runtime/bundle.mjs: the float16 decoder
    made once, uint8 through a table of its 256 values); every value comes out as tfjs-core's
    formulas give it: float16 bits widened, byte * scale + min in float64 stored as float32."""
    first = np.array([1.5, -2.25, 1e-4, 65504, -0.5, 0.0], np.float16)
    second = np.array([3.140625, -1e-3, 7.0], np.float16)
    codes = np.arange(256, dtype=np.uint8)[::-1].copy()
    words = np.array([0, 1, 40000, 65535], np.uint16)
    scale, low = 0.0123456789, -1.2345678
    page, log = open_page(tiny_site["url"])
    decoded = page.evaluate("""([bytes, scale, min]) => {
        const q = (dtype) => ({dtype, scale, min});
        const specs = [{name: 'first', shape: [6], dtype: 'float32', quantization: {dtype: 'float16'}},
                       {name: 'second', shape: [3], dtype: 'float32', quantization: {dtype: 'float16'}},
                       {name: 'codes', shape: [256], dtype: 'float32', quantization: q('uint8')},
                       {name: 'words', shape: [4], dtype: 'float32', quantization: q('uint16')}];
        const weights = tf.io.decodeWeights(new Uint8Array(bytes).buffer, specs);
        const out = {};
        for (const [name, tensor] of Object.entries(weights)) { out[name] = Array.from(tensor.dataSync()); tensor.dispose(); }
        return out;
    }""", [list(first.tobytes() + second.tobytes() + codes.tobytes() + words.tobytes()), scale, low])
    assert decoded["first"] == first.astype(np.float32).tolist()
    assert decoded["second"] == second.astype(np.float32).tolist()
    for name, q in (("codes", codes), ("words", words)):
        assert decoded[name] == (q.astype(np.float64) * scale + low).astype(np.float32).tolist()
    assert log.errors == []


def test_every_kind_of_source_gives_the_same_scores(shipped_site, open_page):
    """The shipped network, whose scores move with the face (a control below checks it), reads the
    same face given seven ways alike: a source decoded wrongly would change them."""
    page, log = open_page(shipped_site["url"])
    url = png_data_url(np.asarray(faces.face("smile", 48, seed=5)))
    scores = page.evaluate("""async (url) => {
        const img = new Image(); img.src = url; await img.decode();
        const canvas = document.createElement('canvas'); canvas.width = 48; canvas.height = 48;
        canvas.getContext('2d').drawImage(img, 0, 0);
        const blob = await (await fetch(url)).blob();
        const file = new File([blob], 'face.png', {type: 'image/png'});
        const sources = [url, img, canvas, await createImageBitmap(blob), blob, file,
                         canvas.getContext('2d').getImageData(0, 0, 48, 48)];
        const out = [];
        for (const s of sources) out.push((await facemood.classifyFace(s)).scores);
        return out;
    }""", url)
    first = np.array(list(scores[0].values()))
    for other in scores[1:]:
        assert np.abs(np.array(list(other.values())) - first).max() < 1e-6
    control = page.evaluate("u => facemood.classifyFace(u).then((r) => r.scores)",
                            png_data_url(np.asarray(faces.face("frown", 48, seed=5))))
    assert np.abs(np.array(list(control.values())) - first).max() > 1e-3
    assert log.errors == []


def astronaut():
    """A real, public-domain face photo (NASA portrait shipped with scikit-image), 512x512 RGB."""
    from skimage import data

    return data.astronaut()


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_classify_finds_faces_with_boxes_in_source_pixels(tiny_site, open_page):
    """Paste the same face at known places and scales: each box must land where the face went."""
    page, log = open_page(tiny_site["url"])
    photo = astronaut()
    found = page.evaluate("u => facemood.classify(u)", png_data_url(photo))
    assert len(found["faces"]) == 1
    reference = found["faces"][0]["box"]
    assert 100 < reference[0] + reference[2] / 2 < 320 and 40 < reference[1] + reference[3] / 2 < 220
    # A wide composite: the photo's top half at two scales on a plain background.
    head = Image.fromarray(photo[:256])
    canvas = Image.new("RGB", (1200, 500), (70, 80, 90))
    placements = [(40, 100, 1.0), (620, 60, 1.6)]
    for x, y, scale in placements:
        canvas.paste(head.resize((int(512 * scale), int(256 * scale))), (x, y))
    result = page.evaluate("u => facemood.classify(u)", png_data_url(np.asarray(canvas)))
    assert (result["width"], result["height"]) == (1200, 500)
    expected = [[x + reference[0] * s, y + reference[1] * s, reference[2] * s, reference[3] * s]
                for x, y, s in placements]
    assert len(result["faces"]) == 2
    for want in expected:
        assert max(iou(want, face["box"]) for face in result["faces"]) > 0.6
    for face in result["faces"]:
        assert abs(sum(face["scores"].values()) - 1) < 1e-4 and face["label"] in face["scores"]
    assert result["ms"] > 0 and log.errors == []


def test_photo_without_a_face_says_so(tiny_site, open_page, tmp_path):
    from skimage import data

    page, _ = open_page(tiny_site["url"])
    # A real photo without a face (a rocket on its launch pad): neither detector finds one.
    assert page.evaluate("u => facemood.classify(u)", png_data_url(data.rocket()))["faces"] == []
    path = tmp_path / "wall.png"
    Image.new("RGB", (300, 200), (120, 100, 90)).save(path)
    page.set_input_files("#file-input", str(path))
    card = page.wait_for_selector("article.result")
    assert card.get_attribute("data-faces") == "0"
    assert "No face found" in card.inner_text()
    assert page.text_content("#results-announce").startswith("wall.png: No face found in this photo.")
    assert page.text_content("#results-summary") == "Photos read: 1 · faces: 0"
    # The file cannot be read again (moved or deleted since it was picked): the page says so and the
    # button stays, to try again.
    page.evaluate("""() => { window.__createImageBitmap = window.createImageBitmap;
        window.createImageBitmap = () => Promise.reject(new DOMException('gone', 'NotReadableError'));
        window.__createObjectURL = URL.createObjectURL;  // an <img> cannot read a file that is gone either
        URL.createObjectURL = () => 'blob:' + location.origin + '/gone'; }""")
    page.click("article.result button.whole-photo")
    wait_until(page, "document.getElementById('status').dataset.kind === 'error'")
    assert page.text_content("#status") == ("The photo could not be read as one face: this file could not be "
                                            "read as image/png: it is damaged, or this browser does not read "
                                            "that format")
    assert not page.is_disabled("article.result button.whole-photo")
    page.evaluate("() => { window.createImageBitmap = window.__createImageBitmap; URL.createObjectURL = window.__createObjectURL; }")
    # A tight crop no detector sees can still be read: the whole photo's centre square as one face.
    page.click("article.result button.whole-photo")
    card = page.wait_for_selector("article.result[data-faces='1']")
    assert "No face found" not in card.inner_text() and card.query_selector("section.face .verdict")
    box = page.eval_on_selector("article.result .face-box", "b => [b.style.left, b.style.top, b.style.width, b.style.height]")
    assert [round(float(v.rstrip("%")), 1) for v in box] == [16.7, 0.0, 66.7, 100.0]  # 200x200 of 300x200
    assert len(page.query_selector_all("article.result")) == 1
    label = page.get_attribute("article.result section.face", "data-label")
    assert page.text_content("#results-summary") == f"Photos read: 1 · faces: 1 · {label} 1"
    # The button pressed is gone with the card it was on: the focus moves to the face it read.
    assert page.evaluate("document.activeElement.classList.contains('face-box')")
    # Screen readers hear the new reading, not the "no face" said before.
    assert page.text_content("#results-announce") == f"wall.png: faces found: {label}"


def test_a_browser_without_offscreen_canvas_reads_photos_too(shipped_site, browser):
    """Safari before 16.4 has no OffscreenCanvas: every canvas the page draws on falls back to a
    <canvas> element, the warm-up's blank included."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script("delete window.OffscreenCanvas;")
        log = PageLog(page)
        page.goto(shipped_site["url"])
        page.wait_for_selector("body[data-ready=true]")
        assert page.evaluate("typeof OffscreenCanvas") == "undefined"
        assert len(page.evaluate("u => facemood.classify(u)", png_data_url(astronaut()))["faces"]) == 1
        assert log.errors == []
    finally:
        context.close()


def test_dropped_photo_gets_a_prediction_card(site, open_page, tmp_path):
    page, log = open_page(site["url"])
    png = tmp_path / "smile.png"
    Image.fromarray(astronaut()).save(png)
    data = base64.b64encode(png.read_bytes()).decode()
    page.evaluate("""async (data) => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'smile.png', {type: 'image/png'}));
        document.getElementById('drop-zone').dispatchEvent(
            new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""", data)
    card = page.wait_for_selector("article.result:not(.error)")
    assert card.get_attribute("data-faces") == "1"
    assert page.query_selector_all("article.result .face-box")
    labels = json.loads((site["model_dir"] / "metadata.json").read_text())["labels"]
    bars = page.query_selector_all("article.result .bar")
    assert [b.get_attribute("data-class") for b in bars] == labels
    total = sum(float(b.get_attribute("data-probability")) for b in bars)
    assert total == pytest.approx(1, abs=1e-4)
    assert "smile.png" in card.inner_text()
    assert log.errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"dropped-{site['model_dir'].name}.png", full_page=True)


def test_a_photo_dropped_anywhere_on_the_page_is_taken_not_opened(tiny_site, open_page, tmp_path):
    page, log = open_page(tiny_site["url"])
    png = tmp_path / "edge.png"
    Image.fromarray(astronaut()).save(png)
    data = base64.b64encode(png.read_bytes()).decode()
    handled = page.evaluate("""async (data) => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'edge.png', {type: 'image/png'}));
        const footer = document.querySelector('footer');
        const send = (type) => footer.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
        send('dragenter');
        const lit = document.getElementById('drop-zone').classList.contains('over');
        // false: the page cancelled the browser's own handling (opening the file in place of the page)
        return {lit, over: send('dragover'), drop: send('drop'),
                unlit: !document.getElementById('drop-zone').classList.contains('over')};
    }""", data)
    assert handled == {"lit": True, "over": False, "drop": False, "unlit": True}
    card = page.wait_for_selector("article.result")
    assert "edge.png" in card.inner_text()
    assert log.errors == []


def test_picked_file_and_undecodable_file(tiny_site, open_page, tmp_path):
    page, _ = open_page(tiny_site["url"])
    good, bad = tmp_path / "good.png", tmp_path / "notes.png"
    Image.fromarray(astronaut()).save(good)
    bad.write_text("this is not an image")
    page.set_input_files("#file-input", [str(good), str(bad)])
    page.wait_for_selector("article.result.error")
    assert "notes.png" in page.inner_text("article.result.error")
    assert "could not be read as image/png" in page.inner_text("article.result.error")
    assert len(page.query_selector_all("article.result:not(.error)")) == 1
    # An alert when it came, for screen readers to say at once; drawn again in another language, not
    # an alert again (every error of a run would be said again).
    assert page.get_attribute("article.result.error", "role") == "alert"
    page.wait_for_selector("body[data-ready=true]")
    page.click("#language")
    wait_until(page, "document.documentElement.lang === 'ko'")
    assert "notes.png" in page.inner_text("article.result.error")
    assert page.get_attribute("article.result.error", "role") is None


@pytest.fixture
def sub_path_site(tiny_site, tmp_path):
    from web.serve import start_server

    root = tmp_path / "host"
    shutil.copytree(tiny_site["dist"], root / "some" / "where")
    (root / "index.html").write_text("host root")
    server, url = start_server(root)
    yield url + "some/where/"
    server.shutdown()


def test_relative_urls_work_below_a_sub_path(sub_path_site, open_page):
    page, log = open_page(sub_path_site)
    result = page.evaluate("u => facemood.classifyFace(u)", png_data_url(np.asarray(faces.face("open"))))
    assert result["label"] in result["scores"]
    assert log.errors == []
    assert all("/some/where/" in u for u, _ in log.requests if not u.startswith("data:"))


def test_close_range_detector_finds_the_same_face_and_range_is_checked(tiny_site, open_page):
    """The webcam's 128x128 detector, loaded on first use, boxes the portrait like the photo detector."""
    page, log = open_page(tiny_site["url"])
    url = png_data_url(astronaut())
    far = page.evaluate("u => facemood.classify(u)", url)
    assert not any("blazeface-front" in u for u, _ in log.requests)  # not loaded with the page
    close = page.evaluate("u => facemood.classify(u, {range: 'close'})", url)
    assert any("blazeface-front" in u for u, _ in log.requests)
    assert len(close["faces"]) == 1 and iou(close["faces"][0]["box"], far["faces"][0]["box"]) > 0.6
    error = page.evaluate("u => facemood.classify(u, {range: 'near'}).then(() => null, (e) => e.message)", url)
    assert error == "range must be 'close' or 'far', not near"
    assert log.errors == []


def test_the_photo_detector_at_a_smaller_input_keeps_boxes_in_source_pixels_and_misses_small_faces(tiny_site, open_page):
    """`loadFaceDetector(url, {side})`, as bench/detector_scale.py drives it: with the photo's longer
    side at 160 instead of 256, a large face keeps its box and a face 5 % of the photo's width is no
    longer found (the benchmark's portrait, at fixed places)."""
    from bench import detector_scale

    page, log = open_page(tiny_site["url"])
    page.evaluate(detector_scale._LOAD, [256, 160])
    head = Image.fromarray(astronaut()).crop(detector_scale.HEAD)
    face_in_head = detector_scale.face_in_portrait(page, head)
    rng = np.random.default_rng(0)
    photos = [detector_scale.pasted_portrait(head, face_in_head, share, rng) for share in (0.2, 0.05)]
    large, small = page.evaluate(detector_scale._DETECT, [[detector_scale.jpeg_url(photo) for photo, _ in photos], [256, 160]])
    (large_box,) = large["256"]["boxes"]
    assert detector_scale.found([large_box], photos[0][1]) and iou(large_box, photos[0][1]) > 0.5
    assert max(iou(large_box, box) for box in large["160"]["boxes"]) > 0.8
    assert detector_scale.found(small["256"]["boxes"], photos[1][1])
    assert not detector_scale.found(small["160"]["boxes"], photos[1][1])
    assert log.errors == []


@pytest.mark.parametrize("turn", [-40, 0, 40])
def test_a_tilted_face_is_measured_and_classified_upright(shipped_site, open_page, turn):
    """The portrait turned by Pillow (counter-clockwise for a positive angle): the eyes' keypoints
    give its roll (clockwise on screen, so the opposite sign), and only the default crop of a face
    leaning that far is turned back by it (the shipped model: the tiny test model's scores hardly depend on its input)."""
    page, log = open_page(shipped_site["url"])
    photo = Image.fromarray(astronaut()).rotate(turn, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))
    levelled, as_it_lies = page.evaluate("async (u) => [await facemood.classify(u), await facemood.classify(u, {level: false})]",
                                         png_data_url(np.asarray(photo)))
    assert len(levelled["faces"]) == 1 and len(as_it_lies["faces"]) == 1
    face = levelled["faces"][0]
    assert len(face["keypoints"]) == 6 and face["keypoints"][0][0] < face["keypoints"][1][0]  # image-left eye first
    assert abs(face["roll"] - (-turn)) <= 8  # the upright portrait's own eyes lean about 1 degree
    assert as_it_lies["faces"][0]["roll"] == face["roll"] and as_it_lies["faces"][0]["box"] == face["box"]
    # Turned only from facemood.levelFrom degrees on (30): below them the model copes.
    assert page.evaluate("facemood.levelFrom") == 30
    assert (levelled["faces"][0]["scores"] != as_it_lies["faces"][0]["scores"]) == (turn != 0)
    assert log.errors == []


def test_level_from_sets_how_far_a_face_leans_before_it_is_turned(shipped_site, open_page):
    """`{levelFrom: degrees}` moves the 15-degree threshold: at 40 the portrait turned by 30 degrees
    is classified as it lies, at 0 even the upright one (its eyes lean about a degree) is turned."""
    page, log = open_page(shipped_site["url"])
    upright = png_data_url(astronaut())
    tilted = png_data_url(np.asarray(Image.fromarray(astronaut()).rotate(30, resample=Image.Resampling.BICUBIC,
                                                                         fillcolor=(128, 128, 128))))
    scores = page.evaluate("""async ([upright, tilted]) => {
        const scores = async (u, options) => (await facemood.classify(u, options)).faces[0].scores;
        return [await scores(tilted, {levelFrom: 40}), await scores(tilted, {level: false}),
                await scores(upright, {levelFrom: 0}), await scores(upright, {level: false})];
    }""", [upright, tilted])
    assert scores[0] == scores[1]
    assert scores[2] != scores[3]
    error = page.evaluate("u => facemood.classify(u, {levelFrom: -5}).then(() => null, (e) => e.message)", upright)
    assert error == "levelFrom must be degrees, 0 or more, not -5"
    assert log.errors == []


def test_a_levelled_crop_is_the_tilted_box_turned_upright(tiny_site, open_page):
    """image.js' greyCrop on a drawn picture: a black bar through the middle of a white square,
    turned 30 degrees clockwise on screen. Turned back by that lean, the crop's bar is level again:
    its middle rows dark from edge to edge, the rows above and below white."""
    page, _ = open_page(tiny_site["url"])
    rows = page.evaluate("""async () => {
      const { greyCrop } = await import('./assets/js/image.js');
      const canvas = new OffscreenCanvas(200, 200);
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, 200, 200);
      ctx.translate(100, 100);
      ctx.rotate(Math.PI / 6);
      ctx.fillStyle = '#000';
      ctx.fillRect(-150, -10, 300, 20);
      const drawable = { image: canvas, width: 200, height: 200 };
      const crop = (lean) => {
        const grey = greyCrop(drawable, [50, 50, 100, 100], 40, [0.299, 0.587, 0.114], lean);
        return Array.from({ length: 40 }, (_, y) => Array.from(grey.subarray(y * 40, y * 40 + 40)));
      };
      return [crop(Math.PI / 6), crop(0)];
    }""")
    levelled, as_it_lies = (np.asarray(r) for r in rows)
    assert levelled[17:23].max() < 60 and levelled[:12].min() > 200 and levelled[28:].min() > 200
    assert as_it_lies[17:23].max() > 200  # the tilted bar leaves the middle rows at the sides


def test_a_crop_reaching_past_the_image_shows_it_mirrored_about_the_edge(tiny_site, open_page):
    """image.js' greyCrop on a drawn picture whose grey rises to the right and downwards: a box
    hanging half past the top-left corner comes out mirrored about both edges, as training's
    augmentation filled what it uncovered, not white; the part inside is the picture itself."""
    page, _ = open_page(tiny_site["url"])
    crop = np.asarray(page.evaluate("""async () => {
      const { greyCrop } = await import('./assets/js/image.js');
      const canvas = new OffscreenCanvas(100, 100);
      const ctx = canvas.getContext('2d');
      for (let y = 0; y < 100; y++) {
        for (let x = 0; x < 100; x++) {
          const v = Math.round(x + 1.5 * y);
          ctx.fillStyle = `rgb(${v},${v},${v})`;
          ctx.fillRect(x, y, 1, 1);
        }
      }
      const grey = greyCrop({ image: canvas, width: 100, height: 100 }, [-50, -50, 100, 100], 40, [0.299, 0.587, 0.114]);
      return Array.from({ length: 40 }, (_, y) => Array.from(grey.subarray(y * 40, y * 40 + 40)));
    }"""))
    inside = crop[20:, 20:]  # the picture's top-left 50x50 pixels, 2.5 to a crop pixel
    expected = np.add.outer(1.5 * (np.arange(20) * 2.5 + 1.25), np.arange(20) * 2.5 + 1.25)
    assert np.abs(inside - expected).max() < 3
    assert np.abs(crop[:20, 20:] - inside[::-1]).max() < 3      # above the top edge
    assert np.abs(crop[20:, :20] - inside[:, ::-1]).max() < 3   # left of the left edge
    assert np.abs(crop[:20, :20] - inside[::-1, ::-1]).max() < 3  # the corner, both ways
    assert crop.max() < 130  # no white (255): the picture's grey there is 122 at most


def test_a_face_that_fills_the_photo_is_found_with_a_border_around_it(tiny_site, open_page):
    """The portrait's face cut inside its own box (a photo cropped to the face): neither detector
    finds it as it is; the page's third look, the close-range detector with a border around the
    photo, does, and its box (in the photo's pixels) reaches past the photo's edges."""
    page, log = open_page(tiny_site["url"])
    portrait = astronaut()
    x, y, w, h = page.evaluate("u => facemood.classify(u)", png_data_url(portrait))["faces"][0]["box"]
    side = 0.8 * max(w, h)
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    cut = np.asarray(Image.fromarray(portrait).crop((left, top, left + round(side), top + round(side))).resize((192, 192)))
    url = png_data_url(cut)
    assert page.evaluate("u => facemood.classify(u, {range: 'far'})", url)["faces"] == []
    assert page.evaluate("u => facemood.classify(u, {range: 'close'})", url)["faces"] == []
    faces = page.evaluate("u => facemood.classify(u)", url)["faces"]
    assert len(faces) == 1
    bx, by, bw, bh = faces[0]["box"]
    assert bx < 0 and by < 0 and bx + bw > 192 and by + bh > 192
    assert abs(bx + bw / 2 - 96) < 25 and abs(by + bh / 2 - 96) < 25
    assert log.errors == []


def test_a_photo_the_far_detector_misses_goes_to_the_close_range_one(tiny_site, open_page, tmp_path):
    """A site whose far-range detector never fires (its two score heads' biases set to -100): the
    portrait is still found, by the close-range detector, unless the caller asked for 'far'."""
    import hashlib
    import math

    from web.serve import start_server

    dist = tmp_path / "dist"
    shutil.copytree(tiny_site["dist"], dist)
    spec = json.loads((dist / "detector" / "blazeface.json").read_text())
    nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
    score_biases = {nodes[n["input"][0]]["input"][2] for n in nodes.values()
                    if n["op"] == "Reshape" and "classificators" in n["name"]}
    shard = dist / "detector" / spec["weightsManifest"][0]["paths"][0]
    data, offset = bytearray(shard.read_bytes()), 0
    for weight in spec["weightsManifest"][0]["weights"]:
        width = 2 if weight.get("quantization", {}).get("dtype") == "float16" else 4
        count = math.prod(weight["shape"])
        if weight["name"] in score_biases:
            assert width == 2
            data[offset:offset + 2 * count] = np.full(count, -100, "<f2").tobytes()
        offset += width * count
    assert len(score_biases) == 2 and offset == len(data)
    shard.write_bytes(bytes(data))
    integrity = json.loads((dist / "integrity.json").read_text())
    integrity[f"detector/{shard.name}"] = hashlib.sha256(bytes(data)).hexdigest()
    (dist / "integrity.json").write_text(json.dumps(integrity))
    server, url = start_server(dist)
    try:
        page, log = open_page(url)
        photo = png_data_url(astronaut())
        assert page.evaluate("u => facemood.classify(u, {range: 'far'})", photo)["faces"] == []
        assert not any("blazeface-front" in u for u, _ in log.requests)
        found = page.evaluate("u => facemood.classify(u)", photo)["faces"]
        assert len(found) == 1 and any("blazeface-front" in u for u, _ in log.requests)
        assert 100 < found[0]["box"][0] + found[0]["box"][2] / 2 < 320
        assert log.errors == []
    finally:
        server.shutdown()


def controlled_page(context, url):
    """A page of the site at `url` once its service worker has cached the site and controls it."""
    page = context.new_page()
    page.log = PageLog(page)
    page.goto(url)
    page.evaluate("facemood.ready.then(() => navigator.serviceWorker.ready).then(() => true)")
    wait_until(page, "navigator.serviceWorker.controller !== null", timeout=20)
    return page


def test_works_offline_after_the_first_visit(tiny_site, browser):
    context = browser.new_context()
    try:
        page = controlled_page(context, tiny_site["url"])  # the worker has cached every file
        log = page.log
        context.set_offline(True)
        page.reload()
        page.evaluate("facemood.ready.then(() => true)")
        result = page.evaluate("u => facemood.classify(u)", png_data_url(astronaut()))
        assert len(result["faces"]) == 1
        # The webcam's detector was never used online, yet it is there offline too.
        result = page.evaluate("u => facemood.classify(u, {range: 'close'})", png_data_url(astronaut()))
        assert len(result["faces"]) == 1
        assert log.errors == []
    finally:
        context.close()


def test_service_worker_cache_changes_with_the_build(tiny_build, tmp_path):
    from web.render import render_site

    first = (tiny_build["dist"] / "sw.js").read_text()
    other = render_site(tiny_build["model_dir"], tmp_path / "again")
    assert (other / "sw.js").read_text() == first  # same inputs, same cache name
    metadata = tiny_build["model_dir"] / "metadata.json"
    copy = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], copy)
    data = json.loads(metadata.read_text())
    data["crop"]["margin"] = 0.3
    (copy / "metadata.json").write_text(json.dumps(data))
    changed = render_site(copy, tmp_path / "changed")
    cache_name = lambda text: text.split("const CACHE = ")[1].split(";")[0]  # noqa: E731
    assert cache_name((changed / "sw.js").read_text()) != cache_name(first)


def caches_and_worker(page):
    """The page's cache names and whether a new service worker is waiting."""
    return page.evaluate("""async () => ({ caches: (await caches.keys()).filter((n) => n.startsWith('facemood-')),
        waiting: Boolean((await navigator.serviceWorker.getRegistration())?.waiting) })""")


def new_build(tiny_build, tmp_path):
    """The tiny site rendered again with another model setting (crop margin 0.3) and another webcam
    detector file (its checksum updated): a new build, whose worker has a cache of its own."""
    from web.render import render_site

    model = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model)
    metadata = json.loads((model / "metadata.json").read_text())
    metadata["crop"]["margin"] = 0.3
    (model / "metadata.json").write_text(json.dumps(metadata))
    new = render_site(model, tmp_path / "new")
    front = new / "detector" / "blazeface-front.json"
    front.write_text(front.read_text() + "\n")
    integrity = json.loads((new / "integrity.json").read_text())
    integrity["detector/blazeface-front.json"] = hashlib.sha256(front.read_bytes()).hexdigest()
    (new / "integrity.json").write_text(json.dumps(integrity))
    return new


def deploy_while_open(page, site, new):
    """`site` (a link to the build served) now points to `new`; returns once `page`, controlled by
    the old build's worker, has the new build's worker installed and waiting. Returns the old cache."""
    [old_cache] = caches_and_worker(page)["caches"]
    site.unlink()
    site.symlink_to(new)
    page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update()).then(() => true)")
    deadline = time.monotonic() + 20
    while not caches_and_worker(page)["waiting"]:
        assert time.monotonic() < deadline, "the new build's worker never finished installing"
        time.sleep(0.2)
    return old_cache


@contextlib.contextmanager
def old_build_served(tiny_build, browser, tmp_path):
    """The tiny site served through a link a test can point at a new build, and a browser context
    to visit it: (context, url, the link, the new build)."""
    from web.serve import start_server

    new = new_build(tiny_build, tmp_path)
    site = tmp_path / "site"
    site.symlink_to(tiny_build["dist"])
    server, url = start_server(site)
    context = browser.new_context()
    try:
        yield context, url, site, new
    finally:
        context.close()
        server.shutdown()


def test_a_new_build_takes_over_once_the_old_pages_are_closed(tiny_build, browser, tmp_path):
    """The site is rebuilt, with another model setting and another webcam detector file, while a page
    is open. That page goes on loading its own build's files, the webcam's detector included, which it
    loads only now: its checksums describe those. The new build's worker waits, and takes over with
    its own cache alone once the old page is closed."""
    with old_build_served(tiny_build, browser, tmp_path) as (context, url, site, new):
        page = controlled_page(context, url)
        log = page.log
        old_cache = deploy_while_open(page, site, new)
        result = page.evaluate("u => facemood.classify(u, {range: 'close'})", png_data_url(astronaut()))
        assert len(result["faces"]) == 1
        assert old_cache in caches_and_worker(page)["caches"]
        assert log.errors == []
        page.close()
        page = context.new_page()
        page.goto(url)
        deadline = time.monotonic() + 20
        while (state := caches_and_worker(page))["caches"] != [state["caches"][-1]] or state["caches"] == [old_cache]:
            assert time.monotonic() < deadline, f"the new build did not take over: {state}"
            time.sleep(0.2)
            page.reload()
        page.evaluate("facemood.ready.then(() => true)")
        assert page.evaluate("u => facemood.classify(u, {range: 'close'})", png_data_url(astronaut()))["faces"]


def test_a_page_open_when_a_new_build_arrives_offers_to_reload_into_it(tiny_build, browser, tmp_path):
    """A reload alone leaves a page on the old build while the new one's worker waits; the page says
    a new version is ready, and its button switches to it: the new build's worker takes over, its
    cache alone is kept, and the page reloads into the new build (its model setting)."""
    with old_build_served(tiny_build, browser, tmp_path) as (context, url, site, new):
        page = controlled_page(context, url)
        assert page.is_hidden("#update")
        # Said by screen readers as it appears: inside a live region shown before it was.
        assert page.evaluate("""() => { const region = document.getElementById('update').closest('[role=status]');
            return region !== null && region.id !== 'update' && region.checkVisibility(); }""")
        old_cache = deploy_while_open(page, site, new)
        wait_until(page, "!document.getElementById('update').hidden")
        assert " ".join(page.inner_text("#update").split()) == "A new version of this page is ready. Reload to use it"
        page.reload()  # what a person would try first: still the old build, still offered
        page.wait_for_selector("body[data-ready=true]")
        assert page.evaluate("facemood.metadata.crop.margin") != 0.3
        wait_until(page, "!document.getElementById('update').hidden")
        with page.expect_navigation():
            page.click("#update-reload")
        page.wait_for_selector("body[data-ready=true]")
        assert page.evaluate("facemood.metadata.crop.margin") == 0.3
        state = caches_and_worker(page)
        assert state["caches"] != [old_cache] and len(state["caches"]) == 1 and not state["waiting"]
        assert page.is_hidden("#update")
        assert page.log.errors == []



def test_copies_of_the_site_at_two_paths_of_one_origin_keep_their_own_caches(tiny_build, browser, tmp_path):
    """Cache storage belongs to the whole origin. A copy of the site at another path (another build)
    keeps this copy's cache, so both still work offline; a cache named the way earlier builds named
    them is removed only when it holds this copy's page."""
    from web.serve import start_server

    root = tmp_path / "origin"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>another page of the origin</title>")
    shutil.copytree(tiny_build["dist"], root / "a")
    shutil.copytree(new_build(tiny_build, tmp_path), root / "b")
    server, url = start_server(root)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url)
        page.evaluate("""async (origin) => {
            await (await caches.open('facemood-0123456789abcdef')).put(origin + 'a/', new Response('an earlier build of a'));
            await (await caches.open('facemood-fedcba9876543210')).put(origin + 'c/', new Response('a copy at c'));
        }""", url)
        a = controlled_page(context, url + "a/")
        b = controlled_page(context, url + "b/")
        names = caches_and_worker(b)["caches"]
        # a's own, b's own, and c's of an earlier build; a's of an earlier build is gone.
        assert len(names) == 3 and "facemood-fedcba9876543210" in names, names
        assert [n for n in names if n.endswith(f" {url}a/")] and [n for n in names if n.endswith(f" {url}b/")], names
        context.set_offline(True)
        for page, folder in ((a, "a/"), (b, "b/")):
            page.reload()
            page.wait_for_selector("body[data-ready=true]")
            assert page.evaluate("u => facemood.classify(u, {range: 'close'})", png_data_url(astronaut()))["faces"]
        assert a.log.errors == [] and b.log.errors == []
    finally:
        context.close()
        server.shutdown()

# An init script: every Content-Security-Policy violation the page reports, in window.__violations.
RECORD_CSP_VIOLATIONS = """window.__violations = [];
document.addEventListener('securitypolicyviolation',
    e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"""


def test_content_security_policy_holds_with_no_violation(tiny_site, browser):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script(RECORD_CSP_VIOLATIONS)
        log = PageLog(page)
        page.goto(tiny_site["url"])
        page.evaluate("facemood.ready.then(() => true)")
        page.evaluate("u => facemood.classify(u)", png_data_url(astronaut()))
        policy = page.get_attribute("meta[http-equiv=Content-Security-Policy]", "content")
        assert "script-src 'self' 'wasm-unsafe-eval'" in policy and "unsafe-inline" not in policy
        assert page.evaluate("window.__violations") == []
        # The policy is enforced: an injected inline script does not run.
        page.evaluate("""() => { const s = document.createElement('script');
            s.textContent = 'window.__inline = true'; document.body.append(s); }""")
        assert page.evaluate("window.__inline === undefined")
        assert log.errors == [] or all("Content Security Policy" in e for e in log.errors)
    finally:
        context.close()


def test_without_webassembly_binaries_the_page_falls_back_to_plain_javascript(tiny_site, browser):
    """A host that fails to serve .wasm files still gets a working page, on the CPU backend."""
    context = browser.new_context()
    try:
        context.route("**/*.wasm", lambda route: route.abort())
        page = context.new_page()
        log = PageLog(page)
        page.goto(tiny_site["url"])
        info = page.evaluate("facemood.ready")
        assert info["backend"] == "cpu"
        assert any(url.endswith("tf-backend-cpu.es2017.min.js") for url, _ in log.requests)
        result = page.evaluate("u => facemood.classify(u)", png_data_url(astronaut()))
        assert len(result["faces"]) == 1
    finally:
        context.close()


def test_corrupted_shard_is_refused_with_a_clear_message(tiny_site, browser, tmp_path):
    from web.serve import start_server

    dist = tmp_path / "dist"
    shutil.copytree(tiny_site["dist"], dist)
    shard = next((dist / "model").glob("*.bin"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    server, url = start_server(dist)
    context = browser.new_context()
    # The language file arrives after the failure: it must translate the error, not bring back
    # the page's first "Loading the model…".
    context.route("**/i18n/*.json", lambda route: (time.sleep(1.0), route.continue_()))
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#status[data-kind=error]")
        page.wait_for_load_state("networkidle")
        text = page.inner_text("#status")
        assert f"model/{shard.name} is damaged or incomplete" in text
        # In Korean the file's problem is told in Korean too, not in the English of the code.
        korean = browser.new_context(locale="ko-KR")
        page = korean.new_page()
        page.goto(url)
        page.wait_for_selector("#status[data-kind=error]")
        page.wait_for_load_state("networkidle")
        assert page.inner_text("#status") == (f"모델을 불러오지 못했습니다: model/{shard.name} 파일이 손상되었거나 "
                                              "불완전합니다. 페이지를 새로 고치세요")
        korean.close()
    finally:
        context.close()
        server.shutdown()


def test_labels_and_file_names_are_never_inserted_as_html(tiny_build, browser, tmp_path):
    """A class folder named like markup must show as text, never run."""
    from web.render import render_site
    from web.serve import start_server

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    evil = "<img src=x onerror=alert(1)>"
    renamed = dict(zip(metadata["labels"], [evil, "<b>bold</b>", "smile"]))
    metadata["labels"] = [renamed[label] for label in metadata["labels"]]
    counts = metadata["training"]["data"]["counts"]
    for split in counts:
        counts[split] = {renamed[label]: n for label, n in counts[split].items()}
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    dist = render_site(model_dir, tmp_path / "dist")
    server, url = start_server(dist)
    context = browser.new_context()
    try:
        page = context.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        photo = tmp_path / "<img src=y onerror=alert(2)>.png"
        Image.fromarray(astronaut()).save(photo)
        page.set_input_files("#file-input", str(photo))
        page.wait_for_selector("article.result")
        page.click("#language")  # redraw in another language, through the same code
        page.wait_for_selector("article.result")
        assert dialogs == []
        injected = page.evaluate("""() => [...document.querySelectorAll('img[src=x], img[src=y], article b')]
            .map(e => e.outerHTML)""")
        assert injected == []
        text = page.inner_text("article.result")
        assert evil in text and "<b>bold</b>" in text  # every card lists every class, as text
        assert "<img src=y onerror=alert(2)>.png" in text
        assert evil in page.inner_text("footer")
    finally:
        context.close()
        server.shutdown()
