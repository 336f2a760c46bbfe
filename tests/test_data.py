"""Data loading: both input forms, splits, counts, and a clear one-line error for each bad input."""
import gzip
import hashlib

import numpy as np
import pytest
from PIL import Image

import faces
from common.errors import FacemoodError
from train.data import FER2013_LABELS, _read_image, load_dataset


def test_fer_csv_honours_usage_and_labels(tmp_path):
    path = faces.write_fer_csv(tmp_path / "fer.csv", rows_per_usage=(9, 3, 6))
    ds = load_dataset(path)
    assert ds.kind == "fer2013-csv" and ds.labels == FER2013_LABELS
    assert (len(ds.train), len(ds.val), len(ds.test)) == (9, 3, 6)
    assert ds.train.images.shape == (9, 48, 48) and ds.train.images.dtype == np.uint8
    assert set(ds.train.labels) == {0, 3, 5}
    # The first row's pixels come back exactly, in row-major order.
    first = path.read_text().splitlines()[1].split(",")[1].split()
    assert ds.train.images[0].ravel().tolist() == [int(v) for v in first]


def test_gzip_is_detected_by_content_and_hash_is_of_the_content(tmp_path):
    """The data's hash is its CSV's, however it is packed: gzip writes the file's name and date
    into its bytes, so two gzips of one CSV differ byte for byte. A model trained before recorded
    the gzip file's own hash: that still names it."""
    plain = faces.write_fer_csv(tmp_path / "fer.csv")
    packed = tmp_path / "fer.data"  # no .gz suffix on purpose
    packed.write_bytes(gzip.compress(plain.read_bytes(), mtime=1))
    other_gzip = tmp_path / "copy.csv.gz"
    other_gzip.write_bytes(gzip.compress(plain.read_bytes(), mtime=2, compresslevel=1))
    assert packed.read_bytes() != other_gzip.read_bytes()
    a, b, c = load_dataset(plain), load_dataset(packed), load_dataset(other_gzip)
    assert np.array_equal(a.train.images, b.train.images)
    assert a.sha256 == b.sha256 == c.sha256 == hashlib.sha256(plain.read_bytes()).hexdigest()
    assert b.is_named_by(hashlib.sha256(packed.read_bytes()).hexdigest())  # an older model's record
    assert not c.is_named_by(hashlib.sha256(packed.read_bytes()).hexdigest())
    assert not a.is_named_by(hashlib.sha256(b"other data").hexdigest())


def test_a_csv_saved_with_a_byte_order_mark_reads_as_without(tmp_path):
    """Spreadsheets save CSV with a UTF-8 byte-order mark: the same images, not a refused header."""
    plain = faces.write_fer_csv(tmp_path / "fer.csv", rows_per_usage=(6, 2, 2))
    marked = tmp_path / "marked.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    one, two = load_dataset(plain), load_dataset(marked)
    assert np.array_equal(one.train.images, two.train.images) and np.array_equal(one.test.labels, two.test.labels)


def test_a_csv_with_quoted_fields_reads_as_without(tmp_path):
    """R's write.csv and some spreadsheets quote every text field: the same images and labels."""
    plain = faces.write_fer_csv(tmp_path / "fer.csv", rows_per_usage=(6, 2, 2))
    quoted = tmp_path / "quoted.csv"
    quoted.write_text("\r\n".join(",".join(f'"{field}"' for field in row.split(","))
                                   for row in plain.read_text().splitlines()) + "\r\n")
    one, two = load_dataset(plain), load_dataset(quoted)
    assert np.array_equal(one.train.images, two.train.images) and np.array_equal(one.test.labels, two.test.labels)
    assert np.array_equal(one.val.images, two.val.images)


def test_a_quote_left_open_names_file_and_line(tmp_path):
    path = faces.write_fer_csv(tmp_path / "fer.csv")
    rows = path.read_text().splitlines()
    path.write_text("\n".join(rows[:2] + [rows[2].replace(",", ',"', 1)] + rows[3:]) + "\n")
    with pytest.raises(FacemoodError, match=r"fer\.csv:3: ") as info:
        load_dataset(path)
    assert "\n" not in str(info.value)


def test_csv_without_usage_gets_a_seeded_split(tmp_path):
    path = faces.write_fer_csv(tmp_path / "fer.csv", rows_per_usage=(30, 0, 0))
    text = path.read_text().replace("emotion,pixels,Usage", "emotion,pixels").replace(",Training", "")
    path.write_text(text)
    one, two, other = load_dataset(path, seed=3), load_dataset(path, seed=3), load_dataset(path, seed=4)
    assert len(one.train) + len(one.val) + len(one.test) == 30
    assert len(one.val) >= 3 and np.array_equal(one.val.images, two.val.images)  # the seed decides
    assert not np.array_equal(one.val.images, other.val.images)  # and is not ignored


@pytest.mark.parametrize("mutate, message", [
    (lambda rows: ["emotion,pix,Usage"] + rows[1:], "not a FER2013 CSV"),
    # drop the first pixel value
    (lambda rows: rows[:1] + [rows[1].split(",")[0] + "," + rows[1].split(" ", 1)[1]] + rows[2:],
     "pixel count 2303 != 2304"),
    (lambda rows: rows[:1] + [rows[1].replace(",", ",x", 1)] + rows[2:], "is not an integer"),
    (lambda rows: rows[:1] + ["9" + rows[1][1:]] + rows[2:], "emotion 9 is out of range"),
    (lambda rows: rows[:1] + [rows[1].replace("Training", "Later")] + rows[2:], "Usage 'Later'"),
    (lambda rows: rows[:1] + [rows[1] + ",extra"] + rows[2:], "expected 3 fields"),
    (lambda rows: rows[:1], "no data rows"),
])
def test_malformed_csv_names_file_line_and_problem(tmp_path, mutate, message):
    path = faces.write_fer_csv(tmp_path / "fer.csv")
    rows = path.read_text().splitlines()
    path.write_text("\n".join(mutate(rows)) + "\n")
    with pytest.raises(FacemoodError, match=message) as info:
        load_dataset(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_pixel_out_of_range(tmp_path):
    path = faces.write_fer_csv(tmp_path / "fer.csv")
    rows = path.read_text().splitlines()
    emotion, pixels, usage = rows[1].split(",")
    rows[1] = ",".join([emotion, "300 " + pixels.split(" ", 1)[1], usage])
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(FacemoodError, match=r"fer.csv:2: pixel values must lie in 0-255"):
        load_dataset(path)


def test_folder_tree_any_class_names_and_stratified_split(tmp_path):
    root = faces.write_class_folders(tmp_path / "data", per_class=20, classes=("smile", "frown"))
    (root / "smile").rename(root / "Positive")
    (root / "frown").rename(root / "Neutral")
    ds = load_dataset(root, image_size=32, seed=1)
    assert ds.labels == ["Neutral", "Positive"] and ds.image_size == 32
    assert ds.train.images.shape[1:] == (32, 32)
    counts = ds.counts()
    assert counts["val"] == {"Neutral": 2, "Positive": 2} and counts["test"] == {"Neutral": 2, "Positive": 2}
    assert counts["train"] == {"Neutral": 16, "Positive": 16}
    assert load_dataset(root, image_size=32, seed=1).sha256 == ds.sha256


@pytest.mark.parametrize("names", [("train", "val", "test"), ("Training", "PublicTest", "PrivateTest")])
def test_folder_with_split_subtrees(tmp_path, names):
    """FER2013's split names too (image exports of it use them): they are splits, not classes."""
    for name, count in zip(names, (6, 2, 3)):
        faces.write_class_folders(tmp_path / "d" / name, per_class=count)
    ds = load_dataset(tmp_path / "d")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (18, 6, 9)
    assert ds.labels == sorted(faces.MOUTHS)


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    root = faces.write_class_folders(tmp_path / "d", per_class=10)
    (root / "smile" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "smile" / "empty.png").write_bytes(b"")
    Image.new("L", (1, 1)).save(root / "open" / "dot.png")
    (root / "open" / "notes.txt").write_text("ignored: not an image suffix")
    ds = load_dataset(root)
    assert len(ds.skipped) == 3
    assert sum(len(ds.split(s)) for s in ("train", "val", "test")) == 30
    assert any("broken.jpg" in path for path, _ in ds.skipped)


def test_image_modes_become_the_same_grey(tmp_path):
    root = tmp_path / "d"
    grey = np.asarray(faces.face("smile"))
    variants = {
        "a_grey.png": Image.fromarray(grey),
        "b_rgb.jpg": Image.fromarray(grey).convert("RGB"),
        "c_rgba.png": Image.fromarray(grey).convert("RGBA"),
        "d_16bit.png": Image.fromarray(grey.astype(np.uint16) * 257),
        "e_cmyk.jpg": Image.fromarray(grey).convert("RGB").convert("CMYK"),
    }
    for name, im in variants.items():
        (root / "x").mkdir(parents=True, exist_ok=True)
        im.save(root / "x" / name, quality=100) if name.endswith(".jpg") else im.save(root / "x" / name)
    for name in variants:
        array = _read_image(root / "x" / name, 48, hashlib.sha256(), root, [])
        tolerance = 6 if name.endswith(".jpg") else 1
        assert np.abs(array.astype(int) - grey.astype(int)).max() <= tolerance, name


@pytest.mark.parametrize("make, message", [
    (lambda r: None, "does not exist"),
    (lambda r: r.mkdir(), "need at least 2 class folders, found none"),
    (lambda r: faces.write_class_folders(r, per_class=5, classes=("only",)), "found only 'only'"),
    (lambda r: (faces.write_class_folders(r, per_class=5, classes=("a",)), (r / "b").mkdir()),
     "class 'b' has no readable images"),
])
def test_bad_folders_get_one_line_errors(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(FacemoodError, match=message):
        load_dataset(root)


def test_fer_image_size_is_fixed(tmp_path):
    path = faces.write_fer_csv(tmp_path / "fer.csv")
    with pytest.raises(FacemoodError, match="--image-size must be 48"):
        load_dataset(path, image_size=64)


def test_gzip_truncated_is_a_clear_error(tmp_path):
    plain = faces.write_fer_csv(tmp_path / "fer.csv")
    packed = tmp_path / "fer.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes())[:-200])
    with pytest.raises(FacemoodError, match="cannot read FER2013 CSV"):
        load_dataset(packed)


@pytest.mark.parametrize("rows_per_usage, message", [
    ((12, 0, 4), "no PublicTest rows: no images set aside for validation"),
    ((0, 4, 4), "no Training rows: nothing to train on"),
])
def test_csv_without_validation_or_training_rows_is_refused(tmp_path, rows_per_usage, message):
    path = faces.write_fer_csv(tmp_path / "fer.csv", rows_per_usage=rows_per_usage)
    with pytest.raises(FacemoodError, match=message):
        load_dataset(path)


@pytest.mark.parametrize("value, message", [
    ("99999999999", "pixel values must lie in 0-255"),  # more than int32 holds: OverflowError before
    ("\u00b2", "pixel value '\u00b2' is not an integer"),  # str.isdigit() takes '²' for a digit
    ("-", "pixel value '-' is not an integer"),
])
def test_odd_pixel_values_name_file_and_line(tmp_path, value, message):
    path = faces.write_fer_csv(tmp_path / "fer.csv")
    rows = path.read_text().splitlines()
    emotion, pixels, usage = rows[2].split(",")
    rows[2] = ",".join([emotion, value + " " + pixels.split(" ", 1)[1], usage])
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(FacemoodError, match=f"fer.csv:3: {message}") as info:
        load_dataset(path)
    assert "\n" not in str(info.value)


def test_gzip_with_a_damaged_body_is_a_clear_error(tmp_path):
    import zlib

    packed = gzip.compress(faces.write_fer_csv(tmp_path / "fer.csv").read_bytes())
    damaged = tmp_path / "fer.csv.gz"
    damaged.write_bytes(packed[:10] + b"\xff" + packed[11:])  # the first deflate block: an invalid type
    with pytest.raises(zlib.error):
        gzip.decompress(damaged.read_bytes())  # the failure this test is about
    with pytest.raises(FacemoodError, match="fer.csv.gz: cannot read FER2013 CSV .*invalid block type"):
        load_dataset(damaged)
