"""Every way a photo reaches the page, and the photos people really have: rotated by EXIF, grey,
transparent, CMYK, huge, pasted, many at once, in a dropped folder, undecodable."""
import base64
import io

import numpy as np
import pytest
from PIL import Image

from conftest import PageLog, wait_until
from test_browser import astronaut, iou

pytestmark = pytest.mark.browser

# Where the astronaut's face is in the 512x512 photo, as a rough box [x, y, w, h].
FACE = [170, 70, 110, 110]


@pytest.fixture
def page(shipped_site, browser):
    context = browser.new_context()
    page = context.new_page()
    page.log = PageLog(page)
    page.goto(shipped_site["url"])
    page.wait_for_selector("body[data-ready=true]")
    yield page
    context.close()


def classify_file(page, path, mime):
    data = base64.b64encode(path.read_bytes()).decode()
    return page.evaluate("""async ([data, mime]) => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        return facemood.classify(new File([bytes], 'photo', {type: mime}));
    }""", [data, mime])


def test_exif_orientation_is_honoured(page, tmp_path):
    # Stored sideways with orientation 6 ("rotate 90 degrees clockwise to display"), as phones do.
    stored = Image.fromarray(astronaut()).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    stored.save(path, quality=92, exif=exif)
    result = classify_file(page, path, "image/jpeg")
    assert (result["width"], result["height"]) == (512, 512)
    assert len(result["faces"]) == 1 and iou(result["faces"][0]["box"], FACE) > 0.4
    # The labelled copy is upright too: below the face, it matches the upright photo.
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("article.result .save-image")
    with page.expect_download() as download:
        page.click("article.result .save-image")
    saved = np.asarray(Image.open(download.value.path()).convert("RGB"), float)
    upright = astronaut().astype(float)
    assert np.abs(saved[300:] - upright[300:]).mean() < 8 < np.abs(saved[300:] - np.rot90(upright)[300:]).mean()


@pytest.mark.parametrize("mode, suffix, mime", [("L", ".jpg", "image/jpeg"), ("RGBA", ".png", "image/png"),
                                                ("CMYK", ".jpg", "image/jpeg")])
def test_grey_transparent_and_cmyk_photos(page, tmp_path, mode, suffix, mime):
    image = Image.fromarray(astronaut())
    if mode == "RGBA":
        alpha = Image.new("L", image.size, 255)
        alpha.paste(0, (0, 300, 512, 512))  # bottom transparent
        image.putalpha(alpha)
    else:
        image = image.convert(mode)
    path = tmp_path / f"photo{suffix}"
    image.save(path)
    result = classify_file(page, path, mime)
    assert len(result["faces"]) == 1 and iou(result["faces"][0]["box"], FACE) > 0.4


def test_huge_photo_is_decoded_and_scaled_down_off_the_main_thread(page, tmp_path):
    canvas = Image.new("RGB", (8000, 6000), (90, 100, 110))
    canvas.paste(Image.fromarray(astronaut()).resize((2048, 2048)), (3000, 2000))
    path = tmp_path / "huge.jpg"
    canvas.save(path, quality=70)
    # Decoding and scaling down are both createImageBitmap's, which the browser does off the main
    # thread: recorded here, with the size asked for.
    page.evaluate("""() => { window.__bitmaps = [];
        const original = window.createImageBitmap;
        window.createImageBitmap = (source, ...rest) => {
          const options = rest.length === 1 ? rest[0] : rest[4];
          window.__bitmaps.push({ blob: source instanceof Blob, resizeWidth: options?.resizeWidth ?? null,
                                  resizeHeight: options?.resizeHeight ?? null });
          return original(source, ...rest);
        }; }""")
    page.set_input_files("#file-input", str(path))
    card = page.wait_for_selector("article.result", timeout=60000)
    assert card.get_attribute("data-faces") == "1"
    assert page.evaluate("window.__bitmaps") == [{"blob": True, "resizeWidth": None, "resizeHeight": None},
                                                 {"blob": False, "resizeWidth": 2048, "resizeHeight": 1536}]
    result = classify_file(page, path, "image/jpeg")
    assert (result["width"], result["height"]) == (8000, 6000)
    expected = [3000 + FACE[0] * 4, 2000 + FACE[1] * 4, FACE[2] * 4, FACE[3] * 4]
    assert iou(result["faces"][0]["box"], expected) > 0.4


@pytest.mark.parametrize("size", [(5184, 3456), (1, 5000)])
def test_scaled_down_photos_keep_their_size(page, tmp_path, size):
    """A camera's 5184x3456 photo is read at 2048x1365, each side by its own ratio: its size is
    given back as it is (one ratio for both read its height as 3455). A strip 5000 pixels long and
    one wide is still an image, scaled to a pixel's width rather than none."""
    path = tmp_path / "photo.png"
    Image.new("RGB", size, (90, 100, 110)).save(path)
    result = classify_file(page, path, "image/png")
    assert (result["width"], result["height"]) == size
    assert result["faces"] == []


def test_a_photo_too_large_to_scale_down_says_so_in_the_pages_language(page, tmp_path):
    """The browser cannot scale a huge photo down (out of memory): its card says that, in words each
    language translates, not the browser's own English message."""
    path = tmp_path / "wide.png"
    Image.new("RGB", (2100, 100), (90, 100, 110)).save(path)
    page.evaluate("""() => { const original = window.createImageBitmap;
        window.createImageBitmap = (source, options) => (options?.resizeWidth
            ? Promise.reject(new DOMException('The ImageBitmap could not be allocated.', 'InvalidStateError'))
            : original(source, options)); }""")
    page.set_input_files("#file-input", str(path))
    card = page.wait_for_selector("article.result.error")
    assert card.inner_text() == "wide.png: this browser could not scale down this 2100×100 photo (too large for its memory)"


def test_an_svg_picture_is_read_as_the_browser_shows_it(page, tmp_path):
    """The picker offers SVG files (accept="image/*") and browsers show them; createImageBitmap
    reads none, so the page draws one through an <img>: the portrait inside is found."""
    portrait = io.BytesIO()
    Image.fromarray(astronaut()).save(portrait, format="PNG")
    inside = base64.b64encode(portrait.getvalue()).decode()
    path = tmp_path / "portrait.svg"
    path.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512">'
                    f'<image href="data:image/png;base64,{inside}" width="512" height="512"/></svg>')
    page.set_input_files("#file-input", str(path))
    card = page.wait_for_selector("article.result")
    assert card.get_attribute("data-faces") == "1" and "error" not in card.get_attribute("class")
    result = classify_file(page, path, "image/svg+xml")
    assert (result["width"], result["height"]) == (512, 512) and iou(result["faces"][0]["box"], FACE) > 0.4
    assert page.log.errors == []


def test_a_labelled_photo_the_browser_cannot_encode_says_so(page, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(astronaut()).save(path)
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("article.result[data-faces='1']")
    page.evaluate("() => { HTMLCanvasElement.prototype.toBlob = function (callback) { callback(null); }; }")
    page.click("article.result button.save-image")
    wait_until(page, "document.getElementById('status').dataset.kind === 'error'")
    assert page.text_content("#status") == "The image could not be saved: this browser could not make an image file of it"


def test_a_file_of_no_known_type_gets_a_message_of_its_own(page):
    """Not "could not be read as" pieced together from English: a message each language translates."""
    code = page.evaluate("""() => facemood.classify(new File(['plain text'], 'notes')).then(() => null, (e) => e.code)""")
    assert code == "cannot_decode_file"


def test_dropping_a_link_keeps_the_page_and_says_what_to_do(page, tmp_path):
    """A link or another site's image dragged in carries no file: the browser would open it in place
    of the page (and its results); the page keeps itself and asks for the file instead."""
    good = tmp_path / "good.png"
    Image.fromarray(astronaut()).save(good)
    page.set_input_files("#file-input", str(good))
    page.wait_for_selector("article.result")
    prevented = page.evaluate("""() => {
        const transfer = new DataTransfer();
        transfer.setData('text/uri-list', 'https://example.com/face.jpg');
        return ['dragover', 'drop'].map((type) => {
            const event = new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true });
            document.querySelector('main, body').dispatchEvent(event);
            return event.defaultPrevented;
        });
    }""")
    assert prevented == [True, True]
    assert page.text_content("#status").startswith("Only files can be dropped here")
    assert len(page.query_selector_all("article.result")) == 1
    assert page.log.errors == []


# A drop as Chromium hands it over, from in-page files: `tree` is {name: bytes or a sub-tree}; each
# top-level name is one dropped item (a folder is a dict), walked through the FileSystemEntry
# interface. Folders give their entries in batches of two, as readEntries gives them in batches.
DROP_TREE = """([tree, types]) => {
  const fromBase64 = (data) => Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const typeOf = (name) => types[name.split('.').pop()] || '';
  const entry = (path, value) => {
    const name = path.split('/').pop();
    if (typeof value === 'string') {
      const file = new File([fromBase64(value)], name, { type: typeOf(name) });
      return { isFile: true, isDirectory: false, name, fullPath: '/' + path, file: (ok) => ok(file), asFile: file };
    }
    const kids = Object.entries(value).map(([child, v]) => entry(`${path}/${child}`, v));
    return { isFile: false, isDirectory: true, name, fullPath: '/' + path, createReader: () => {
      let next = 0;
      return { readEntries: (ok) => { ok(kids.slice(next, next + 2)); next += 2; } };
    } };
  };
  const entries = Object.entries(tree).map(([name, value]) => entry(name, value));
  // A dropped folder is listed in dataTransfer.files too, as a file of no type the browser cannot read.
  const files = entries.map((e) => e.asFile ?? new File([], e.name));
  const transfer = { types: ['Files'], files,
                     items: entries.map((e) => ({ kind: 'file', webkitGetAsEntry: () => e, getAsFile: () => e.asFile })) };
  const event = new Event('drop', { bubbles: true, cancelable: true });
  Object.defineProperty(event, 'dataTransfer', { value: transfer });
  document.body.dispatchEvent(event);
  return event.defaultPrevented;
}"""


def test_a_dropped_folder_gives_its_images_in_name_order(page, tmp_path):
    """A folder dropped with a photo beside it: the photo, then the folder's images, sub-folders'
    too, in the order a file manager lists them (by name whatever the case, IMG_9 before IMG_10,
    a sub-folder where its name falls), each named by its path in the folder; other files, and
    hidden files and folders (a resource fork "._IMG_9.png", ".thumbnails/"), are left out. A
    folder without images says so."""
    buffer = io.BytesIO()
    Image.fromarray(astronaut()).save(buffer, format="PNG")
    photo = base64.b64encode(buffer.getvalue()).decode()
    text = base64.b64encode(b"not a photo").decode()
    tree = {"loose.png": photo,
            "trip": {"IMG_10.png": photo, "notes.txt": text, "IMG_9.png": photo, ".DS_Store": text,
                     "._IMG_9.png": photo, ".thumbnails": {"IMG_9.png": photo}, "day 2": {"a.png": photo}}}
    types = {"png": "image/png", "txt": "text/plain"}
    assert page.evaluate(DROP_TREE, [tree, types]) is True
    wait_until(page, "document.querySelectorAll('article.result').length === 4")
    page.wait_for_timeout(300)  # nothing more comes
    names = page.evaluate("[...document.querySelectorAll('article.result figcaption')].map((c) => c.textContent)")
    assert names[::-1] == ["loose.png", "trip/day 2/a.png", "trip/IMG_9.png", "trip/IMG_10.png"]
    assert len(page.query_selector_all("article.result[data-faces='1']")) == 4
    page.evaluate(DROP_TREE, [{"empty": {"notes.txt": text}}, types])
    wait_until(page, "document.getElementById('status').dataset.kind === 'error'")
    assert page.text_content("#status") == "No images were found in what was dropped."
    assert len(page.query_selector_all("article.result")) == 4
    assert page.log.errors == []


def test_a_picked_folder_gives_its_images_as_the_folder_dropped(page, tmp_path):
    """"Choose a folder": the folder's images, sub-folders' too, with the names and in the order the
    same folder dropped gives (hidden files and folders and other files left out). A folder
    without images says so."""
    folder = tmp_path / "trip"
    (folder / "day 2").mkdir(parents=True)
    (folder / ".thumbnails").mkdir()
    for name in ("IMG_10.png", "IMG_9.png", "day 2/a.png", ".thumbnails/IMG_9.png", "._IMG_9.png"):
        Image.fromarray(astronaut()).save(folder / name, format="PNG")
    (folder / "notes.txt").write_text("not a photo")
    page.set_input_files("#folder-input", str(folder))
    wait_until(page, "document.querySelectorAll('article.result').length === 3")
    page.wait_for_timeout(300)  # nothing more comes
    names = page.evaluate("[...document.querySelectorAll('article.result figcaption')].map((c) => c.textContent)")
    assert names[::-1] == ["trip/day 2/a.png", "trip/IMG_9.png", "trip/IMG_10.png"]
    assert len(page.query_selector_all("article.result[data-faces='1']")) == 3
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("not a photo")
    page.set_input_files("#folder-input", str(notes))
    wait_until(page, "document.getElementById('status').dataset.kind === 'error'")
    assert page.text_content("#status") == "No images were found in the folder."
    assert len(page.query_selector_all("article.result")) == 3
    assert page.log.errors == []


def paste(page, data, name, kind):
    """Pastes one file of `data` bytes into the page, as a clipboard holding it does."""
    page.evaluate("""([data, name, kind]) => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: kind}));
        document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: transfer, bubbles: true}));
    }""", [base64.b64encode(data).decode(), name, kind])


def astronaut_png():
    buffer = io.BytesIO()
    Image.fromarray(astronaut()).save(buffer, format="PNG")
    return buffer.getvalue()


def test_pasted_image(page):
    paste(page, astronaut_png(), "clipboard.png", "image/png")
    card = page.wait_for_selector("article.result")
    assert card.get_attribute("data-faces") == "1"
    assert page.inner_text("article.result figcaption") == "clipboard.png"


def test_a_pasted_image_without_a_name_is_named_in_the_pages_language(page):
    """Named when drawn, not when pasted: a language switch names it anew, its saved copy too."""
    paste(page, astronaut_png(), "", "image/png")
    page.wait_for_selector("article.result")
    assert page.inner_text("article.result figcaption") == "pasted image"
    page.click("#language")
    wait_until(page, "document.documentElement.lang === 'ko'")
    assert page.inner_text("article.result figcaption") == "붙여 넣은 이미지"
    assert page.get_attribute("article.result img", "alt") == "사진 붙여 넣은 이미지"
    with page.expect_download() as download:
        page.click("article.result .save-image")
    assert download.value.suggested_filename == "붙여 넣은 이미지-facemood.png"
    assert page.log.errors == []


def test_a_file_that_is_not_an_image_says_so_picked_or_pasted(page, tmp_path):
    """A text file picked with a photo is "not an image", not a damaged image; pasted alone it is
    answered the same way rather than ignored."""
    notes = tmp_path / "notes.txt"
    notes.write_text("plain text")
    photo = tmp_path / "photo.png"
    Image.fromarray(astronaut()).save(photo)
    page.set_input_files("#file-input", [str(photo), str(notes)])
    wait_until(page, "document.querySelectorAll('article.result').length === 2")
    assert page.inner_text("article.result.error") == "notes.txt: this file is not an image (text/plain)"
    paste(page, b"plain text", "pasted.txt", "text/plain")
    wait_until(page, "document.querySelectorAll('article.result.error').length === 2")
    assert page.inner_text("article.result.error") == "pasted.txt: this file is not an image (text/plain)"


def test_several_files_at_once_make_a_strip_of_results(page, tmp_path):
    paths = []
    for i, flip in enumerate([False, True, False]):
        image = Image.fromarray(astronaut())
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        paths.append(tmp_path / f"photo{i}.png")
        image.save(paths[-1])
    heic = tmp_path / "iphone.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    page.set_input_files("#file-input", [str(p) for p in paths] + [str(heic)])
    wait_until(page, "document.querySelectorAll('article.result').length === 4")
    assert len(page.query_selector_all("article.result:not(.error)")) == 3
    error = page.inner_text("article.result.error")
    assert "iphone.heic" in error and "could not be read" in error
    assert page.log.errors == []


def png_bomb(width=30000, height=30000):
    """A few hundred bytes of valid PNG that declare a 30000x30000 image (3.6 GB decoded)."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = zlib.compress(b"\x00" * (width + 1) * 16, 9)  # only the first rows; the rest is missing
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def test_hostile_files_get_a_message_and_earlier_results_stay(page, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(astronaut()).save(good)
    page.set_input_files("#file-input", str(good))
    page.wait_for_selector("article.result:not(.error)")
    jpeg = io.BytesIO()
    Image.fromarray(astronaut()).save(jpeg, format="JPEG")
    files = {
        "empty.png": b"",
        "truncated.jpg": jpeg.getvalue()[:600],
        "script.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "bomb.png": png_bomb(),
        "notes.txt": b"plain text",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_input_files("#file-input", [str(tmp_path / name) for name in files])
    wait_until(page, f"document.querySelectorAll('article.result').length === {1 + len(files)}", timeout=60)
    errors = [c.inner_text() for c in page.query_selector_all("article.result.error")]
    # Each undecodable file gets its own message naming it; a truncated JPEG may still decode
    # (browsers show what arrived), and the earlier good result is still on the page.
    # An empty file is said to be empty, a text file is said not to be an image, and the others
    # could not be read, whatever the browser's reason. An SVG is read as a picture, as an <img>
    # shows it: its script never runs.
    assert "empty.png: the file is empty" in errors
    assert "notes.txt: this file is not an image (text/plain)" in errors
    assert any("bomb.png" in text and "could not be read" in text for text in errors)
    shown = [c.inner_text() for c in page.query_selector_all("article.result:not(.error) figcaption")]
    assert {"good.png", "script.svg"} <= set(shown) <= {"good.png", "script.svg", "truncated.jpg"}
    assert dialogs == []
    assert page.evaluate("1 + 1") == 2  # still responsive


def test_two_hundred_files_at_once(page, tmp_path):
    paths = []
    for i in range(200):
        paths.append(tmp_path / f"wall{i:03d}.png")
        Image.new("RGB", (64, 48), (i, 100, 200 - i)).save(paths[-1])
    page.set_input_files("#file-input", [str(p) for p in paths])
    wait_until(page, "document.querySelectorAll('article.result').length === 200", timeout=120)
    assert len(page.query_selector_all("article.result[data-faces='0']")) == 200
    assert page.log.errors == []


def test_no_tensor_leaks_over_a_hundred_classifications(page):
    from test_browser import png_data_url

    counts = page.evaluate("""async (url) => {
        await facemood.threads;  // settled: the detector's prepared copies are made (faces.js)
        const blob = await (await fetch(url)).blob();
        await facemood.classify(blob);
        const first = tf.memory().numTensors;
        for (let i = 0; i < 100; i++) await facemood.classify(blob);
        return [first, tf.memory().numTensors];
    }""", png_data_url(astronaut()))
    assert counts[0] == counts[1]


def test_photos_of_many_shapes_in_any_order_give_the_same_faces(page):
    """The detector keeps a set-up copy per input shape for four shapes; a fifth borrows one and sets
    it up again (faces.js, copies.js). Five shapes, given in turn and then in reverse, each get the
    same faces every time, and the tensors do not grow."""
    from test_browser import png_data_url

    head = Image.fromarray(astronaut()).crop((110, 20, 340, 250))
    photos = []
    for size in [(800, 600), (600, 800), (700, 700), (960, 540), (900, 450)]:
        photo = Image.new("RGB", size, (90, 110, 100))
        photo.paste(head, ((size[0] - head.width) // 2, (size[1] - head.height) // 2))
        photos.append(png_data_url(np.asarray(photo)))
    runs = page.evaluate("""async (urls) => {
        await facemood.threads;
        const blobs = await Promise.all(urls.map(async (url) => (await fetch(url)).blob()));
        const faces = async (order) => {
          const out = [];
          for (const i of order) out[i] = (await facemood.classify(blobs[i])).faces.map((f) => [f.box, f.scores]);
          return out;
        };
        const first = await faces([0, 1, 2, 3, 4]);
        const tensors = tf.memory().numTensors;
        const again = await faces([4, 3, 2, 1, 0, 0, 2, 4]);
        return { first, again, tensors, after: tf.memory().numTensors };
    }""", photos)
    assert [len(faces) for faces in runs["first"]] == [1] * 5
    assert runs["again"] == runs["first"]
    assert runs["after"] == runs["tensors"]
    assert page.log.errors == []

