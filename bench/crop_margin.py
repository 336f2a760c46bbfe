"""How much context around a detected face makes the crop look like the training faces?

FER2013 faces are pre-cropped with some forehead and chin around them. Here each validation
(PublicTest) face is up-scaled and pasted at a random place and size onto a random background; the
page's detector finds it, and the expression model classifies the crop for several margins. The
margin whose accuracy is best (and whose crop best matches the pasted square) goes into the
model's metadata. Writes bench/results/crop_margin.json and .md.

Each face is pasted twice, at the same place and size: on bare colour noise, and with its own
border pixels extended around it (`CONTEXT` of its side on every side) before the noise. On bare
noise a crop wider than the pasted square takes in noise and the square's hard edge, which no
real photo has, so that background alone favours tight crops; the extended border stands in for
the hair, ears and background around a face in a real photo.

Each face is also given alone, scaled up to 192x192 with nothing around it (a photo cropped to
the face): how many of those the page finds with its far-range detector alone, how many as it
looks at a photo (far range, then close range, then close range with a border around the photo,
each only while nothing was found), and how many it classifies correctly that way.

    python -m bench.crop_margin --data path/to/fer2013.csv.gz [--count 300]
"""
import argparse
import base64
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.browser import ROOT, site_page
from bench.cli import one_line_errors, recorded_command, save_results
from common.atomic import check_can_write_file
from common.metadata import load_metadata

MARGINS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
RESULTS = ROOT / "bench" / "results"


CONTEXT = 0.3
TIGHT_SIDE = 192
BACKGROUNDS = ("noise", "context")


def noise_background(rng, width, height):
    """Smooth random colour noise (cells of 16 pixels, bicubic), an RGB image width x height."""
    cells = rng.integers(0, 255, (height // 16, width // 16, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((width, height), Image.Resampling.BICUBIC)


def data_url(image, kind="PNG", **options):
    """`image` as a data: URL of a PNG (or another `kind` Pillow writes, with its save `options`)."""
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return f"data:image/{kind.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def with_border(face, size):
    """The grey `face` with its own border pixels extended by CONTEXT of its side on every side,
    scaled to `size` x `size`: the hair, ears and background a face has around it in a photo."""
    border = round(face.shape[0] * CONTEXT)
    return Image.fromarray(np.pad(face, border, mode="edge")).resize((size, size), Image.Resampling.BICUBIC)


def composites(images, seed):
    """{background: (png data URL, pasted face box)} per face: the grey face pasted onto random
    colour noise, bare ("noise") and with its border extended around it ("context")."""
    rng = np.random.default_rng(seed)
    canvas_w, canvas_h = 640, 480
    for face in images:
        side = int(rng.integers(96, 260))
        pad = int(round(side * CONTEXT))
        noise = noise_background(rng, canvas_w, canvas_h)
        x = int(rng.integers(pad, canvas_w - side - pad))
        y = int(rng.integers(pad, canvas_h - side - pad))
        out = {}
        for kind in BACKGROUNDS:
            canvas = noise.copy()
            if kind == "noise":
                canvas.paste(Image.fromarray(face).resize((side, side), Image.Resampling.BICUBIC).convert("RGB"), (x, y))
            else:
                canvas.paste(with_border(face, side + 2 * pad).convert("RGB"), (x - pad, y - pad))
            out[kind] = (data_url(canvas), [x, y, side, side])
        yield out


def validation_face_args(argv, doc, count_help, module):
    """The command line of a benchmark that gives the page validation faces: --data, --model-dir,
    --count, --seed; `args.command` is the command line to record (`module`: the benchmark's)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the FER2013 CSV the model was trained on")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--count", type=int, default=300, help=count_help)
    parser.add_argument("--seed", type=int, default=0)
    name = module.rpartition(".")[2]
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"folder for {name}.json and .md")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1, not {args.count}")
    check_can_write_file(args.out / f"{name}.json")  # before the measuring, not after
    args.command = recorded_command(f"python -m {module}", parser, args)
    return args


def model_validation_faces(data, metadata):
    """The validation split of `data` as the model was trained on it; refused when it is other data
    (its truth labels would be read against the model's classes by index)."""
    from convert.export import load_evaluation_data

    return load_evaluation_data(data, metadata, progress=True).val


@one_line_errors
def main(argv=None):
    args = validation_face_args(argv, __doc__, "validation faces to paste", "bench.crop_margin")

    metadata = load_metadata(args.model_dir)
    val = model_validation_faces(args.data, metadata)
    pick = np.random.default_rng(args.seed).choice(len(val), size=min(args.count, len(val)), replace=False)
    labels = metadata["labels"]
    found = {kind: 0 for kind in BACKGROUNDS}
    implied_margins = {kind: [] for kind in BACKGROUNDS}
    correct = {kind: {m: 0 for m in MARGINS} for kind in BACKGROUNDS}
    direct_correct = 0
    tight_found = {"far": 0, "as the page looks": 0}
    tight_correct = 0
    started = time.time()
    with site_page(args.model_dir) as page:
        for n, (pasted_faces, index) in enumerate(zip(composites(val.images[pick], args.seed), pick)):
            truth = labels[val.labels[index]]
            direct = page.evaluate("u => facemood.classifyFace(u)", _png(val.images[index]))
            direct_correct += direct["label"] == truth
            far, tight = page.evaluate("""async (u) => [(await facemood.classify(u, {range: 'far'})).faces.length,
                                                       (await facemood.classify(u)).faces]""",
                                       _png(val.images[index], TIGHT_SIDE))
            tight_found["far"] += far > 0
            tight_found["as the page looks"] += len(tight) > 0
            tight_correct += bool(tight) and max(tight, key=lambda f: f["detection"])["label"] == truth
            for kind, (url, pasted) in pasted_faces.items():
                per_margin = page.evaluate("""async ([u, margins]) => {
                    const out = [];
                    for (const margin of margins) out.push(await facemood.classify(u, {margin}));
                    return out;
                }""", [url, MARGINS])
                faces = per_margin[0]["faces"]
                if not faces:
                    continue
                found[kind] += 1
                box = max(faces, key=lambda f: f["detection"])["box"]
                implied_margins[kind].append((pasted[2] / max(box[2], box[3]) - 1) / 2)
                for margin, result in zip(MARGINS, per_margin):
                    best = max(result["faces"], key=lambda f: f["detection"])
                    correct[kind][margin] += best["label"] == truth
            print(f"\r{n + 1}/{len(pick)} faces", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    total = len(pick)
    report = {
        "command": args.command,
        "faces": total,
        "context": CONTEXT,
        "accuracy_direct_crop": round(direct_correct / total, 4),
        "tight_crops_found": {way: round(n / total, 4) for way, n in tight_found.items()},
        "tight_crops_accuracy": round(tight_correct / total, 4),
        "backgrounds": {kind: {
            "detected": found[kind],
            "detection_rate": round(found[kind] / total, 4),
            "implied_margin_median": round(float(np.median(implied_margins[kind])), 4) if implied_margins[kind] else None,
            "implied_margin_quartiles": [round(float(q), 4) for q in np.percentile(implied_margins[kind], [25, 75])]
            if implied_margins[kind] else None,
            "accuracy_by_margin": {str(m): round(c / total, 4) for m, c in correct[kind].items()},
        } for kind in BACKGROUNDS},
        "model_margin": metadata["crop"]["margin"],
        "seconds": round(time.time() - started, 1),
    }
    save_results(args.out, "crop_margin", report, _markdown(report))
    print(_markdown(report))


def _png(grey, side=None):
    image = Image.fromarray(grey)
    return data_url(image.resize((side, side), Image.Resampling.BICUBIC) if side else image)


def _markdown(r):
    noise, context = r["backgrounds"]["noise"], r["backgrounds"]["context"]
    rows = "\n".join(f"| {m} | {noise['accuracy_by_margin'][m]:.1%} | {context['accuracy_by_margin'][m]:.1%} |"
                     for m in noise["accuracy_by_margin"])
    found = "; ".join(f"{kind}: detected {b['detected']} ({b['detection_rate']:.1%}), margin implied by the "
                      f"pasted square median {b['implied_margin_median']}, quartiles {b['implied_margin_quartiles']}"
                      for kind, b in r["backgrounds"].items())
    return (f"# Crop margin around detected faces\n\n`{r['command']}`\n\n"
            f"{r['faces']} validation faces pasted on random colour noise, each twice at the same place and "
            f"size: bare (noise) and with its border pixels extended by {r['context']:.0%} of its side around "
            f"it (context). {found}.\n\n"
            f"Accuracy on the original 48x48 crops (no detection): {r['accuracy_direct_crop']:.1%}. "
            f"The same crops alone, scaled to {TIGHT_SIDE}x{TIGHT_SIDE} (a photo cropped to the face), found by "
            "the page: " + ", ".join(f"{share:.1%} ({way})" for way, share in r["tight_crops_found"].items())
            + f"; classified correctly as the page looks: {r['tight_crops_accuracy']:.1%} (undetected faces count "
            "as wrong). "
            f"The shipped model's margin: {r['model_margin']}.\n\n"
            f"| margin per side | accuracy, noise (undetected faces count as wrong) | accuracy, context |\n"
            f"|---|---|---|\n{rows}\n")


if __name__ == "__main__":
    sys.exit(main())
