"""How much context around a detected face makes the crop look like the training faces?

FER2013 faces are pre-cropped with some forehead and chin around them. Here each validation
(PublicTest) face is up-scaled and pasted at a random place and size onto a random background; the
page's detector finds it, and the expression model classifies the crop for several margins. The
margin whose accuracy is best (and whose crop best matches the pasted square) goes into the
model's metadata. Writes bench/results/crop_margin.json and .md.

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
from common.atomic import atomic_write_bytes, atomic_write_json
from common.metadata import load_metadata
from train.data import load_dataset

MARGINS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
RESULTS = ROOT / "bench" / "results"


def composites(images, seed):
    """(png data URL, pasted box) per face: a grey face pasted on a random colour-noise background."""
    rng = np.random.default_rng(seed)
    for face in images:
        side = int(rng.integers(96, 260))
        canvas_w, canvas_h = 640, 480
        background = rng.integers(0, 255, (canvas_h // 16, canvas_w // 16, 3), dtype=np.uint8)
        canvas = Image.fromarray(background).resize((canvas_w, canvas_h), Image.Resampling.BICUBIC)
        x, y = int(rng.integers(0, canvas_w - side)), int(rng.integers(0, canvas_h - side))
        canvas.paste(Image.fromarray(face).resize((side, side), Image.Resampling.BICUBIC).convert("RGB"), (x, y))
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        yield "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), [x, y, side, side]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the FER2013 CSV the model was trained on")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--count", type=int, default=300, help="validation faces to paste")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    metadata = load_metadata(args.model_dir)
    val = load_dataset(args.data).val
    pick = np.random.default_rng(args.seed).choice(len(val), size=min(args.count, len(val)), replace=False)
    labels = metadata["labels"]
    found, implied_margins, direct_correct = 0, [], 0
    correct = {m: 0 for m in MARGINS}
    started = time.time()
    with site_page(args.model_dir) as page:
        for n, ((url, pasted), index) in enumerate(zip(composites(val.images[pick], args.seed), pick)):
            truth = labels[val.labels[index]]
            direct = page.evaluate("u => facemood.classifyFace(u)", _png(val.images[index]))
            direct_correct += direct["label"] == truth
            per_margin = page.evaluate("""async ([u, margins]) => {
                const out = [];
                for (const margin of margins) out.push(await facemood.classify(u, {margin}));
                return out;
            }""", [url, MARGINS])
            faces = per_margin[0]["faces"]
            if faces:
                found += 1
                box = max(faces, key=lambda f: f["detection"])["box"]
                implied_margins.append((pasted[2] / max(box[2], box[3]) - 1) / 2)
                for margin, result in zip(MARGINS, per_margin):
                    best = max(result["faces"], key=lambda f: f["detection"])
                    correct[margin] += best["label"] == truth
            print(f"\r{n + 1}/{len(pick)} faces", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    total = len(pick)
    report = {
        "command": "python -m bench.crop_margin --data " + args.data.name + f" --count {args.count}",
        "faces": total,
        "detected": found,
        "detection_rate": round(found / total, 4),
        "implied_margin_median": round(float(np.median(implied_margins)), 4) if implied_margins else None,
        "implied_margin_quartiles": [round(float(q), 4) for q in np.percentile(implied_margins, [25, 75])]
        if implied_margins else None,
        "accuracy_direct_crop": round(direct_correct / total, 4),
        "accuracy_by_margin": {str(m): round(c / total, 4) for m, c in correct.items()},
        "model_margin": metadata["crop"]["margin"],
        "seconds": round(time.time() - started, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / "crop_margin.json", report)
    atomic_write_bytes(RESULTS / "crop_margin.md", _markdown(report).encode())
    print(_markdown(report))


def _png(grey):
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _markdown(r):
    rows = "\n".join(f"| {m} | {a:.1%} |" for m, a in r["accuracy_by_margin"].items())
    return (f"# Crop margin around detected faces\n\n`{r['command']}`\n\n"
            f"{r['faces']} validation faces pasted on random backgrounds; detected {r['detected']} "
            f"({r['detection_rate']:.1%}). Margin implied by the pasted square: median "
            f"{r['implied_margin_median']}, quartiles {r['implied_margin_quartiles']}.\n\n"
            f"Accuracy on the original 48x48 crops (no detection): {r['accuracy_direct_crop']:.1%}.\n\n"
            f"| margin per side | accuracy (undetected faces count as wrong) |\n|---|---|\n{rows}\n")


if __name__ == "__main__":
    main()
