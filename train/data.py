"""Load a labelled face data set into memory: FER2013's CSV or a folder-per-class image tree.

Both forms end up as the same `Dataset`: grey uint8 images of one square size, integer labels,
and a train / val / test split. The form is detected from the path: a file is a FER2013 CSV
(plain or gzip), a folder is an image tree.
"""
import csv
import gzip
import hashlib
import io
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from common.errors import FacemoodError

FER2013_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
FER2013_SIZE = 48
# FER2013's own Usage names, mapped onto the three splits every step uses.
FER2013_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# Split folder names (any case), FER2013's own among them, as image exports of it use them.
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test",
                 "training": "train", "publictest": "val", "privatetest": "test"}
SPLITS = ("train", "val", "test")


@dataclass
class Split:
    images: np.ndarray  # (n, size, size) uint8, grey
    labels: np.ndarray  # (n,) int32 index into Dataset.labels

    def __len__(self):
        return len(self.labels)


@dataclass
class Dataset:
    labels: list
    train: Split
    val: Split
    test: Split
    kind: str  # "fer2013-csv" or "image-folder"
    source: str
    sha256: str
    image_size: int
    skipped: list = field(default_factory=list)  # (path, reason) of images that could not be read
    seeded_split: bool = False  # the seed chose the val/test images (no Usage column, no val/ folder)
    # The file's own bytes, where they differ from its content (a gzip file): models trained before
    # the content was hashed recorded this.
    file_sha256: str = ""

    def is_named_by(self, recorded):
        """Whether a recorded data hash names this data: its content's, or its file's (older records)."""
        return recorded in (self.sha256, self.file_sha256 or self.sha256)

    def split(self, name):
        return getattr(self, name)

    def grey_statistics(self):
        """The training faces' usual grey levels and contrasts: the 10th to 90th percentiles of the
        training images' means and of their standard deviations. The page brings a crop whose
        mean or contrast lies outside them to the nearest edge (see convert/graph_model.py's
        page_input); `min_std` is the smallest contrast divided by, so that a crop of one grey
        stays one grey (a nearly flat one is brought up to the usual contrast, its noise with it)."""
        flat = self.train.images.reshape(len(self.train), -1).astype(np.float64)
        usual = lambda v: [round(float(q), 2) for q in np.percentile(v, [10, 90])]  # noqa: E731
        return {"mean": usual(flat.mean(axis=1)), "std": usual(flat.std(axis=1)), "min_std": 1.0}

    def counts(self):
        """Images per split and class, as stored in the model's metadata."""
        return {
            s: {label: int((self.split(s).labels == i).sum()) for i, label in enumerate(self.labels)}
            for s in SPLITS
        }


def load_dataset(path, image_size=None, seed=0, val_fraction=0.1, test_fraction=0.1, progress=False):
    """Read `path` (FER2013 CSV file or image folder) into a Dataset.

    `image_size` resizes folder images (default 48); FER2013 rows are always 48x48.
    A folder without train/val/test sub-folders is split per class with `seed`.
    """
    path = Path(path)
    if not path.exists():
        raise FacemoodError(f"{path}: data path does not exist")
    if path.is_dir():
        return _load_folder(path, image_size or FER2013_SIZE, seed, val_fraction, test_fraction, progress)
    if image_size not in (None, FER2013_SIZE):
        raise FacemoodError(f"{path}: FER2013 images are {FER2013_SIZE}x{FER2013_SIZE}; --image-size must be {FER2013_SIZE}")
    return _load_fer_csv(path, seed, val_fraction, test_fraction, progress)


# --- FER2013 CSV -------------------------------------------------------------------------------

class _HashingReader(io.RawIOBase):
    """Pass bytes through while hashing them (and counting them on `bar`), so the file is read once."""

    def __init__(self, f, bar=None):
        self.f, self.hash, self.bar = f, hashlib.sha256(), bar

    def readable(self):
        return True

    def readinto(self, buf):
        n = self.f.readinto(buf)
        self.hash.update(memoryview(buf)[:n])
        if self.bar is not None:
            self.bar.update(n)
        return n


def _open_content(path, raw):
    """The file's content over `raw`, as a hashing reader: gunzipped when the file starts with
    gzip's magic bytes. Its hash names the data whatever compressed it: a gzip file's bytes also
    hold its name and date, so two gzips of one CSV differ."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic != b"\x1f\x8b":
        return raw
    return _HashingReader(gzip.GzipFile(fileobj=io.BufferedReader(raw)))


def _load_fer_csv(path, seed, val_fraction, test_fraction, progress):
    n_pixels = FER2013_SIZE * FER2013_SIZE
    images, labels, splits = [], [], []
    line_no = 0  # the last line read, for an error in what follows it
    try:
        with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                         desc=f"reading {path.name}", disable=not progress) as bar:
            raw = _HashingReader(f, bar)
            content = _open_content(path, raw)
            # utf-8-sig: a byte-order mark at the start (spreadsheets write one) is not part of the header.
            text = io.TextIOWrapper(io.BufferedReader(content), encoding="utf-8-sig", newline="")
            # csv reads quoted fields too, as R's write.csv and spreadsheets save them.
            rows = csv.reader(text)
            header = [h.strip() for h in next(rows, [])]
            line_no = 1
            if header[:2] != ["emotion", "pixels"] or header[2:] not in ([], ["Usage"]):
                raise FacemoodError(
                    f"{path}: not a FER2013 CSV: header is {','.join(header)!r}, expected 'emotion,pixels,Usage'")
            has_usage = len(header) == 3
            for fields in rows:
                line_no = rows.line_num
                if not any(field.strip() for field in fields):
                    continue
                if len(fields) != len(header):
                    raise FacemoodError(f"{path}:{line_no}: expected {len(header)} fields, found {len(fields)}")
                label = _parse_label(fields[0], path, line_no)
                pixels = _parse_pixels(fields[1], n_pixels, path, line_no)
                if has_usage:
                    usage = fields[2].strip()
                    if usage not in FER2013_USAGE:
                        raise FacemoodError(
                            f"{path}:{line_no}: Usage {usage!r} is not one of {', '.join(FER2013_USAGE)}")
                    splits.append(FER2013_USAGE[usage])
                images.append(pixels.reshape(FER2013_SIZE, FER2013_SIZE))
                labels.append(label)
            # Drain what the text layer did not need so the hashes cover the whole file.
            while content.read(1 << 20):
                pass
            while raw.read(1 << 20):
                pass
    except csv.Error as e:  # a quote left open, a NUL byte
        raise FacemoodError(f"{path}:{line_no + 1}: not a FER2013 CSV row ({e})") from None
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as e:  # a damaged gzip body among them
        # Text is decoded a block at a time: the fault lies somewhere after the last line read.
        after = f" after line {line_no}" if line_no else ""
        raise FacemoodError(f"{path}: cannot read FER2013 CSV{after} ({e})") from None
    if not labels:
        raise FacemoodError(f"{path}: no data rows")
    images, labels = np.stack(images), np.asarray(labels, np.int32)
    if has_usage:
        assignment = np.asarray(splits)
    else:
        assignment = _stratified_assignment(labels, seed, val_fraction, test_fraction)
    parts = {s: Split(images[assignment == s], labels[assignment == s]) for s in SPLITS}
    _check_csv_splits(parts, path, has_usage)
    _check_classes(parts["train"].labels, FER2013_LABELS, path)
    return Dataset(FER2013_LABELS, parts["train"], parts["val"], parts["test"], "fer2013-csv",
                   str(path), content.hash.hexdigest(), FER2013_SIZE, seeded_split=not has_usage,
                   file_sha256=raw.hash.hexdigest())


def _check_csv_splits(parts, path, has_usage):
    """Training needs training and validation images (Keras fails deep inside otherwise)."""
    if not len(parts["train"]):
        raise FacemoodError(f"{path}: no Training rows: nothing to train on")
    if not len(parts["val"]):
        raise FacemoodError(f"{path}: no PublicTest rows: no images set aside for validation" if has_usage
                            else f"{path}: too few rows to set any aside for validation")


def _parse_label(text, path, line_no):
    try:
        label = int(text)
    except ValueError:
        raise FacemoodError(f"{path}:{line_no}: emotion {text!r} is not an integer") from None
    if not 0 <= label < len(FER2013_LABELS):
        raise FacemoodError(f"{path}:{line_no}: emotion {label} is out of range 0-{len(FER2013_LABELS) - 1}")
    return label


def _parse_pixels(text, n_pixels, path, line_no):
    values = text.split()
    if len(values) != n_pixels:
        raise FacemoodError(f"{path}:{line_no}: pixel count {len(values)} != {n_pixels}")
    try:
        pixels = np.array(values, dtype=np.int32)
    except (ValueError, OverflowError):  # OverflowError: more than int32 holds, e.g. 99999999999
        pixels = None
    if pixels is None or pixels.min() < 0 or pixels.max() > 255:
        raise FacemoodError(f"{path}:{line_no}: {_pixel_problem(values)}")
    return pixels.astype(np.uint8)


def _pixel_problem(values):
    """What is wrong with a row's pixel values: the first that is not written in ASCII digits
    ('x', or '²', which str.isdigit() takes for one), else their range."""
    for v in values:
        digits = v[1:] if v[0] in "+-" else v
        if not (digits.isascii() and digits.isdigit()):
            return f"pixel value {v[:20]!r} is not an integer"
    return "pixel values must lie in 0-255"


# --- folder-per-class image tree ----------------------------------------------------------------

def _load_folder(root, image_size, seed, val_fraction, test_fraction, progress):
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = {SPLIT_FOLDERS[p.name.lower()]: p for p in subdirs if p.name.lower() in SPLIT_FOLDERS}
    if split_dirs and "train" not in split_dirs:
        raise FacemoodError(f"{root}: has {', '.join(sorted(split_dirs))} sub-folders but no train/")
    labels = _class_names(split_dirs.get("train", root))
    digest, skipped = hashlib.sha256(), []
    with tqdm(unit=" images", desc=f"reading {root.name}", disable=not progress) as bar:
        def read(folder, require_all):
            return _read_classes(folder, labels, image_size, digest, skipped, root, bar, require_all)

        if split_dirs:
            parts = {name: read(split_dirs[name], name == "train") for name in SPLITS if name in split_dirs}
            if "val" not in parts:
                parts["train"], parts["val"] = _split_off(parts["train"], val_fraction, seed)
            if "test" not in parts:
                parts["test"] = Split(np.zeros((0, image_size, image_size), np.uint8), np.zeros(0, np.int32))
        else:
            whole = read(root, True)
            assignment = _stratified_assignment(whole.labels, seed, val_fraction, test_fraction)
            parts = {s: Split(whole.images[assignment == s], whole.labels[assignment == s]) for s in SPLITS}
    if len(parts["val"]) == 0:
        raise FacemoodError(f"{root}: too few images to set any aside for validation")
    return Dataset(labels, parts["train"], parts["val"], parts["test"], "image-folder", str(root),
                   digest.hexdigest(), image_size, skipped, seeded_split="val" not in split_dirs)


def _class_names(folder):
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        found = f"only {names[0]!r}" if names else "none"
        raise FacemoodError(f"{folder}: need at least 2 class folders, found {found}")
    return names


def _read_classes(folder, labels, image_size, digest, skipped, root, bar, require_all):
    images, targets = [], []
    for index, label in enumerate(labels):
        class_dir = folder / label
        files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
            if class_dir.is_dir() else []
        loaded = 0
        for file in files:
            image = _read_image(file, image_size, digest, root, skipped)
            bar.update()
            if image is not None:
                images.append(image)
                targets.append(index)
                loaded += 1
        if loaded == 0 and require_all:
            raise FacemoodError(f"{class_dir}: class {label!r} has no readable images")
    extra = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in labels
                   and not p.name.startswith("."))
    if extra:
        raise FacemoodError(f"{folder}: class folder(s) {', '.join(extra)} not among the training classes")
    if not images:
        return Split(np.zeros((0, image_size, image_size), np.uint8), np.zeros(0, np.int32))
    return Split(np.stack(images), np.asarray(targets, np.int32))


def _read_image(file, image_size, digest, root, skipped):
    """Decode one image to a grey square of `image_size`, or record why it was skipped."""
    try:
        data = file.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im)
            if im.width < 2 or im.height < 2:
                raise ValueError(f"image is only {im.width}x{im.height} pixels")
            grey = _to_grey(im)
            grey = grey.resize((image_size, image_size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            array = np.asarray(grey, np.uint8)
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        skipped.append((str(file), str(e).splitlines()[0] if str(e) else type(e).__name__))
        return None
    digest.update(os.fsencode(file.relative_to(root)))
    digest.update(hashlib.sha256(data).digest())
    return array


def _to_grey(im):
    """Grey with the same luma weights the browser uses (ITU-R 601), whatever the mode."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(im, np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or array.max() > 255 else 255.0
        return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels are shown on white in the browser; do the same here.
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return im.convert("RGB").convert("L")


# --- splitting -----------------------------------------------------------------------------------

def _stratified_assignment(labels, seed, val_fraction, test_fraction):
    """Give each image a split name, per class, reproducibly from `seed`."""
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=object)
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n = len(idx)
        n_val = int(round(n * val_fraction)) if n >= 3 else 0
        n_test = int(round(n * test_fraction)) if n >= 3 else 0
        n_val = max(n_val, 1) if n >= 3 else n_val
        assignment[idx[:n_val]] = "val"
        assignment[idx[n_val:n_val + n_test]] = "test"
        assignment[idx[n_val + n_test:]] = "train"
    return assignment


def _split_off(split, fraction, seed):
    assignment = _stratified_assignment(split.labels, seed, fraction, 0.0)
    keep, held = assignment == "train", assignment == "val"
    return Split(split.images[keep], split.labels[keep]), Split(split.images[held], split.labels[held])


def _check_classes(train_labels, labels, path):
    present = np.unique(train_labels)
    if len(present) < 2:
        raise FacemoodError(f"{path}: the training split holds only one class; need at least 2")
