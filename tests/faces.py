"""Synthetic cartoon faces for tests: no data set needed, every class visibly different.

Each class draws a different mouth (smile, frown, open 'O'), so even a few training steps learn
something, and the browser and Python see exactly the same pixels.
"""
import numpy as np
from PIL import Image, ImageDraw

from train.data import FER2013_LABELS

MOUTHS = ("smile", "frown", "open")


def face(mouth, size=48, seed=0):
    """A grey `size` x `size` face with the given mouth; small seeded jitter in position and tone."""
    rng = np.random.default_rng(seed)
    s = size / 48
    background = int(rng.integers(20, 90))
    skin = int(rng.integers(150, 220))
    im = Image.new("L", (size, size), background)
    d = ImageDraw.Draw(im)
    dx, dy = rng.integers(-2, 3, size=2) * s
    d.ellipse([6 * s + dx, 3 * s + dy, 42 * s + dx, 46 * s + dy], fill=skin)
    for ex in (17, 31):
        d.ellipse([(ex - 3) * s + dx, 16 * s + dy, (ex + 3) * s + dx, 21 * s + dy], fill=30)
    box = [15 * s + dx, 29 * s + dy, 33 * s + dx, 39 * s + dy]
    if mouth == "smile":
        d.arc(box, 10, 170, fill=25, width=max(1, int(3 * s)))
    elif mouth == "frown":
        d.arc([box[0], box[1] + 6 * s, box[2], box[3] + 6 * s], 190, 350, fill=25, width=max(1, int(3 * s)))
    else:
        d.ellipse([20 * s + dx, 29 * s + dy, 28 * s + dx, 40 * s + dy], fill=25)
    noise = rng.normal(0, 6, (size, size))
    return Image.fromarray(np.clip(np.asarray(im, float) + noise, 0, 255).astype(np.uint8))


def write_class_folders(root, per_class=12, classes=MOUTHS, size=48, suffix=".png", first_seed=0):
    """Write root/<class>/<n>.png for each class; returns root. Different `first_seed`s give different faces."""
    for c, mouth in enumerate(classes):
        folder = root / mouth
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            face(mouth, size, seed=1000 * c + first_seed + i).save(folder / f"{i:03d}{suffix}")
    return root


def write_fer_csv(path, rows_per_usage=(12, 4, 4), classes=(0, 3, 5)):
    """A tiny FER2013-format CSV (emotion,pixels,Usage) drawn from the synthetic faces."""
    lines = ["emotion,pixels,Usage"]
    usages = ("Training", "PublicTest", "PrivateTest")
    for usage, n in zip(usages, rows_per_usage):
        for i in range(n):
            label = classes[i % len(classes)]
            pixels = np.asarray(face(MOUTHS[i % len(classes)], seed=i + 100 * len(lines)))
            lines.append(f"{label},{' '.join(map(str, pixels.ravel()))},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path


FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
FERPLUS_ORDER = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear"]  # FER+'s first 7 vote columns


def write_ferplus_csv(path, fer_csv, shift=0, not_a_face_rows=()):
    """FER+ votes for the rows of `fer_csv`: 7 of 10 votes for its label (class index + `shift`, so
    shift != 0 gives votes that never agree), 3 for neutral; rows in `not_a_face_rows` get 10 NF votes."""
    lines = [FERPLUS_HEADER]
    for row, line in enumerate(fer_csv.read_text().splitlines()[1:]):
        label, _, usage = line.split(",")
        votes = [0] * 10
        if row in not_a_face_rows:
            votes[9] = 10
        else:
            votes[FERPLUS_ORDER.index(FER2013_LABELS[(int(label) + shift) % 7])] += 7
            votes[FERPLUS_ORDER.index("neutral")] += 3
        lines.append(f"{usage},fer{row:07d}.png," + ",".join(map(str, votes)))
    path.write_text("\n".join(lines) + "\n")
    return path
