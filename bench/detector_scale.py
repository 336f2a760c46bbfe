"""How small may a face be and still be found, at each size the photo detector could run at?

The page runs BlazeFace's back-camera model with a photo's longer side scaled to 256 pixels, the
size it was trained at. A smaller input is faster (`python -m bench.networks`: 15.8 ms at 256x192,
10.4 ms at 192x160 on one thread), but every face reaches the network smaller. Here faces are
pasted at random places on 1024x768 photos at several sizes (the face's width a share of the
photo's), and the page's own detector code (`loadFaceDetector` in web/static/js/faces.js, with the
shipped weights) looks for them with the photo's longer side at each of SIDES. Two kinds of face:
- --count validation (PublicTest) faces, grey, each with its border extended around it as in
  bench/crop_margin.py, on colour noise: many people, but FER2013's tight grey crops;
- the speed benchmark's colour portrait (bench/composites.py: head and shoulders from a real
  photo) on its blurred, room-like backgrounds, at --count places per size: one person.
A face is found when a detection's centre lies inside the face's box and its width is within a
factor of two of the box's (the portrait's face box is where the detector puts it when the head
fills half the photo's height). Writes bench/results/detector_scale.json and .md.

    python -m bench.detector_scale --data path/to/fer2013.csv.gz [--count 200]
"""
import sys
import time

import numpy as np
from PIL import Image

from bench.browser import site_page
from bench.cli import one_line_errors, save_results
from bench.composites import HEAD, astronaut, background
from bench.crop_margin import CONTEXT, data_url, noise_background, validation_face_args, with_border
from common.errors import FacemoodError
from train.data import load_dataset

SIDES = [256, 224, 192, 160]  # the photo's longer side in the detector's input; 256 as shipped
SHARES = [0.03, 0.04, 0.05, 0.06, 0.07, 0.085, 0.1, 0.14, 0.2]  # a face's width as a share of the photo's
PHOTO = (1024, 768)
BATCH = 8  # photos per call into the page
KINDS = {
    "fer2013": "PublicTest faces (grey, border extended) on colour noise",
    "portrait": "the speed benchmark's colour portrait on blurred backgrounds",
}

_LOAD = """async (sides) => {
  const { loadFaceDetector } = await import(new URL('assets/js/faces.js', document.baseURI).href);
  const url = new URL('detector/blazeface.json', document.baseURI);
  window.detectorsBySide = {};
  for (const side of sides) window.detectorsBySide[side] = await loadFaceDetector(url, { side });
}"""

_DETECT = """async ([urls, sides]) => {
  const out = [];
  for (const url of urls) {
    const image = await createImageBitmap(await (await fetch(url)).blob());
    const drawable = { image, width: image.width, height: image.height };
    const row = {};
    for (const side of sides) {
      const started = performance.now();
      const faces = await window.detectorsBySide[side].detect(drawable);
      row[side] = { ms: performance.now() - started, boxes: faces.map((f) => f.box) };
    }
    image.close();
    out.push(row);
  }
  return out;
}"""


def jpeg_url(image):
    return data_url(image, "JPEG", quality=92)  # a 1024x768 photo of noise: a PNG would be several MB


def pasted_fer2013(face, share, rng):
    """(photo, face box): the grey `face` with its border extended, its own square `share` of the
    photo's width, at a random place on colour noise."""
    width, height = PHOTO
    side = int(round(share * width))
    pad = int(round(side * CONTEXT))
    x = int(rng.integers(pad, width - side - pad))
    y = int(rng.integers(pad, height - side - pad))
    photo = noise_background(rng, width, height)
    photo.paste(with_border(face, side + 2 * pad).convert("RGB"), (x - pad, y - pad))
    return photo, [x, y, side, side]


def pasted_portrait(head, face_in_head, share, rng):
    """(photo, face box): the portrait's `head` scaled so that its face (`face_in_head`: x, y, w, h
    as shares of the head's width) is `share` of the photo's width, at a random place."""
    width, height = PHOTO
    fx, fy, fw, fh = face_in_head
    scale = share * width / (fw * head.width)
    size = max(1, round(head.width * scale))
    if size > min(width, height):
        raise FacemoodError(f"a face {share:.0%} of the photo's width puts a head larger than the photo")
    x = int(rng.integers(0, width - size + 1))
    y = int(rng.integers(0, height - size + 1))
    photo = background(PHOTO, int(rng.integers(1 << 31)))
    photo.paste(head.resize((size, size), Image.Resampling.LANCZOS), (x, y))
    return photo, [x + fx * size, y + fy * size, fw * size, fh * size]


def found(boxes, face):
    """Whether one of the detector's `boxes` is the face whose box is `face`."""
    x, y, w, h = face
    for bx, by, bw, bh in boxes:
        cx, cy = bx + bw / 2, by + bh / 2
        if x <= cx <= x + w and y <= cy <= y + h and 0.5 <= bw / w <= 2:
            return True
    return False


def face_in_portrait(page, head):
    """The portrait's face box as shares of the head's width: where the shipped detector puts it
    when the head fills half of a photo's height."""
    size = PHOTO[1] // 2
    x, y = (PHOTO[0] - size) // 2, (PHOTO[1] - size) // 2
    photo = background(PHOTO, 0)
    photo.paste(head.resize((size, size), Image.Resampling.LANCZOS), (x, y))
    (row,) = page.evaluate(_DETECT, [[jpeg_url(photo)], [SIDES[0]]])
    boxes = row[str(SIDES[0])]["boxes"]
    if len(boxes) != 1:
        raise FacemoodError(f"the detector found {len(boxes)} faces in the portrait at a large size, not one")
    bx, by, bw, bh = boxes[0]
    return [(bx - x) / size, (by - y) / size, bw / size, bh / size]


def measure(page, photos):
    """{side: {share: faces found}} and {side: [ms per photo]} over `photos`: (share, make) pairs,
    `make()` giving (photo, face box)."""
    hits = {side: {share: 0 for share in SHARES} for side in SIDES}
    times = {side: [] for side in SIDES}
    for start in range(0, len(photos), BATCH):
        shares, made = zip(*[(share, make()) for share, make in photos[start:start + BATCH]])
        rows = page.evaluate(_DETECT, [[jpeg_url(photo) for photo, _ in made], SIDES])
        for share, (_, face), row in zip(shares, made, rows):
            for side in SIDES:
                hits[side][share] += found(row[str(side)]["boxes"], face)
                times[side].append(row[str(side)]["ms"])
        print(f"\r{min(start + BATCH, len(photos))}/{len(photos)} photos", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return hits, times


def smallest_found(rates, at_least=0.9):
    """The smallest share from which up every share has at least `at_least` of its faces found."""
    smallest = None
    for share in sorted(rates, key=float, reverse=True):
        if rates[share] < at_least:
            break
        smallest = share
    return smallest


@one_line_errors
def main(argv=None):
    args = validation_face_args(argv, __doc__, "validation faces, each pasted at every size; as many places per size "
                                "for the portrait", "bench.detector_scale")
    val = load_dataset(args.data).val
    rng = np.random.default_rng(args.seed)
    faces = val.images[rng.choice(len(val), size=min(args.count, len(val)), replace=False)]
    head = astronaut().crop(HEAD)
    started = time.time()
    results = {}
    with site_page(args.model_dir) as page:
        page.evaluate(_LOAD, SIDES)
        face_box = face_in_portrait(page, head)
        made = {
            "fer2013": [(share, lambda face=face, share=share: pasted_fer2013(face, share, rng))
                        for face in faces for share in SHARES],
            "portrait": [(share, lambda share=share: pasted_portrait(head, face_box, share, rng))
                         for _ in range(args.count) for share in SHARES],
        }
        for kind, photos in made.items():
            hits, times = measure(page, photos)
            total = len(photos) // len(SHARES)
            results[kind] = {str(side): {
                "found_by_share": {str(share): round(hits[side][share] / total, 4) for share in SHARES},
                "detect_ms_median": round(float(np.median(times[side])), 2),
            } for side in SIDES}
            for side in results[kind].values():
                side["smallest_share_90"] = smallest_found(side["found_by_share"])
    report = {
        "command": args.command,
        "count": args.count,
        "photo": list(PHOTO),
        "context": CONTEXT,
        "portrait_face_in_head": [round(v, 4) for v in face_box],
        "kinds": results,
        "seconds": round(time.time() - started, 1),
    }
    save_results(args.out, "detector_scale", report, markdown(report))
    print(markdown(report))


def _share(share, width):
    return "none" if share is None else f"{float(share):.1%} ({round(float(share) * width)} px)"


def markdown(r):
    width = r["photo"][0]
    tables = []
    for kind, sides in r["kinds"].items():
        shares = list(next(iter(sides.values()))["found_by_share"])
        header = " | ".join(f"{float(s):.1%} ({round(float(s) * width)} px)" for s in shares)
        rows = "\n".join(
            f"| {side}{' (shipped)' if side == str(SIDES[0]) else ''} | {s['detect_ms_median']:.1f} ms | "
            + " | ".join(f"{s['found_by_share'][share]:.0%}" for share in shares)
            + f" | {_share(s['smallest_share_90'], width)} |"
            for side, s in sides.items())
        tables.append(f"**{KINDS[kind]}**\n\n"
                      f"| longer side of the detector's input | per photo | {header} | found 90 % of the time or more, from |\n"
                      f"|---|---|{'---|' * len(shares)}---|\n{rows}\n")
    return (f"# Faces found by the photo detector, by face size and input size\n\n`{r['command']}`\n\n"
            f"Faces pasted at random places on {r['photo'][0]}×{r['photo'][1]} photos, {r['count']} photos for "
            "every size (the face's width as a share of the photo's, and in pixels), looked for by the page's "
            "detector code with the photo's longer side at each input size; the share of faces found. Per "
            "photo: the median time of one detection in this run, drawing the photo and reading the results "
            "included (the page's first-visit backend, one thread).\n\n" + "\n".join(tables))


if __name__ == "__main__":
    sys.exit(main())
