"""Benchmark inputs made here, so no data set is needed: photos with one real face pasted on a
generated background, and a fake-camera video of one of them.

The face is the astronaut portrait bundled with scikit-image (NASA, public domain); both BlazeFace
and face-api's tiny detector find it, where neither fires on drawn cartoon faces.
"""
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
# Head and shoulders of the 512x512 astronaut photo (x0, y0, x1, y1).
HEAD = (60, 0, 400, 340)
# (photo size, face height as a fraction of the photo height, face centre as fractions, seed)
LAYOUTS = [((1024, 768), 0.45, (0.30, 0.45), 1),
           ((1024, 768), 0.38, (0.68, 0.42), 2),
           ((800, 1067), 0.35, (0.50, 0.35), 3)]


def background(size, seed):
    """A smooth random colour field with some grain: like an out-of-focus room, not a flat wall."""
    rng = np.random.default_rng(seed)
    w, h = size
    coarse = rng.integers(40, 210, (6, 8, 3)).astype(np.float32)
    coarse = (0.4 * coarse + 0.6 * coarse.mean(axis=2, keepdims=True)).astype(np.uint8)  # muted colours
    field = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(20))
    grain = rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(field, np.float32) + grain, 0, 255).astype(np.uint8))


def astronaut():
    from skimage import data

    return Image.fromarray(data.astronaut())


def composite_photos():
    """[(name, JPEG bytes)], one face per photo, at different sizes and places."""
    head = astronaut().crop(HEAD)
    photos = []
    for i, ((w, h), fraction, (cx, cy), seed) in enumerate(LAYOUTS):
        photo = background((w, h), seed)
        side = int(h * fraction * head.width / head.height), int(h * fraction)
        pasted = head.resize(side, Image.Resampling.LANCZOS)
        photo.paste(pasted, (int(cx * w - side[0] / 2), int(cy * h - side[1] / 2)))
        buffer = io.BytesIO()
        photo.save(buffer, format="JPEG", quality=90)
        photos.append((f"composite-{i + 1}.jpg", buffer.getvalue()))
    return photos


def write_photos(folder):
    """Write the composites into `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in composite_photos():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def write_camera_video(path, fps=60, frames=30):
    """A 640x480 Y4M clip of the first composite for Chromium's fake camera. 60 frames/s, so the
    camera is never what limits the page's frame rate."""
    sys.path.insert(0, str(ROOT / "tests"))
    from video import write_y4m  # the writer the webcam test uses

    name, data = composite_photos()[0]
    frame = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((640, 480)))
    return write_y4m(path, [frame] * frames, fps=fps)
