"""How much to soften each crop before the network sees it (metadata.json inference.smoothing)?

The network learned from augmented faces: every one was rotated, zoomed or shifted, so resampled
bilinearly, which softens it. A crop straight from a photo is sharper than anything it saw. Here
the shipped TF.js graph classifies every validation (PublicTest) face as the page would, with the
crop smoothed by the kernel (w, 1 - 2w, w) along both axes for several weights w: in one pass, with
every face's mirror image averaged in, and as the page does it (the mirror image for the faces the
model's recorded rule calls unsure). Only the validation split is read: this is how the weight is chosen.
Writes bench/results/smoothing.json and .md.

    python -m bench.smoothing --data path/to/fer2013.csv.gz
"""
import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

from bench.browser import ROOT
from bench.cli import one_line_errors, recorded_command, save_results
from common.atomic import check_can_write_file
from common.errors import FacemoodError
from common.metadata import load_metadata
from convert.export import TFJS_DIR, load_evaluation_data
from convert.graph_model import MAX_SMOOTHING, GraphModel, page_input
from convert.selective_flip import combined, unsure

WEIGHTS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
RESULTS = ROOT / "bench" / "results"


def accuracy_by_weight(graph, images, labels, metadata, weights):
    """{weight: {"one_pass": accuracy, "flipped": accuracy with every face flipped, "as_page": accuracy
    with the faces flipped that the model's rule picks}} for (n, size, size) grey faces."""
    out = {}
    for weight in weights:
        changed = copy.deepcopy(metadata)
        changed.setdefault("inference", {})["smoothing"] = weight
        fed = page_input(images[..., None].astype(np.float32), changed)
        single, mirror = graph(fed), graph(fed[:, :, ::-1])
        scores = {"one_pass": single, "flipped": (single + mirror) / 2,
                  "as_page": combined(single, mirror, unsure(single, changed))}
        out[weight] = {kind: round(float((p.argmax(1) == labels).mean()), 4) for kind, p in scores.items()}
        print(f"smoothing {weight}: {out[weight]}", flush=True)
    return out


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the FER2013 CSV the model was trained on")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--weights", type=float, nargs="+", default=WEIGHTS,
                        help="smoothing weights to measure, each in 0-0.33 (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for smoothing.json and .md")
    args = parser.parse_args(argv)
    if any(not 0 <= w <= MAX_SMOOTHING for w in args.weights):
        parser.error("every --weights value must lie in 0-0.33")

    check_can_write_file(args.out / "smoothing.json")  # before the measuring, not after
    metadata = load_metadata(args.model_dir)
    dataset = load_evaluation_data(args.data, metadata, progress=True)
    val = dataset.val
    if not len(val):
        raise FacemoodError(f"{args.data}: no validation split")
    started = time.time()
    accuracy = accuracy_by_weight(GraphModel(args.model_dir / TFJS_DIR), val.images, val.labels, metadata,
                                  args.weights)
    report = {
        "command": recorded_command("python -m bench.smoothing", parser, args),
        "faces": len(val),
        "shipped_smoothing": metadata.get("inference", {}).get("smoothing", 0),
        "shipped_flips": bool(metadata.get("inference", {}).get("test_time_flip")),
        "shipped_flips_unsure_only": "flip_when_unsure" in metadata.get("inference", {}),
        "accuracy": {str(w): a for w, a in accuracy.items()},
        "seconds": round(time.time() - started, 1),
    }
    save_results(args.out, "smoothing", report, _markdown(report))
    print(_markdown(report))


def _markdown(r):
    kinds = ("one_pass", "flipped", "as_page")
    best = {kind: max(r["accuracy"], key=lambda w: r["accuracy"][w][kind]) for kind in kinds}

    def cell(weight, kind):
        text = f"{r['accuracy'][weight][kind]:.2%}"
        return f"**{text}**" if weight == best[kind] else text

    rows = "\n".join(f"| {w} | " + " | ".join(cell(w, kind) for kind in kinds) + " |" for w in r["accuracy"])
    flips = ("flips only the faces it is unsure of" if r.get("shipped_flips_unsure_only")
             else "flips every face" if r["shipped_flips"] else "does not flip")
    return (f"# Smoothing each crop before classifying it\n\n`{r['command']}`\n\n"
            f"{r['faces']} PublicTest faces, the shipped TF.js graph as the page runs it (standardizing and the "
            f"class bias included), each crop smoothed with the kernel (w, 1 - 2w, w) along both axes. The shipped "
            f"model smooths with {r['shipped_smoothing']} and {flips}. Best of each column in bold.\n\n"
            f"| weight w | accuracy, one pass | accuracy, every face flipped | accuracy as the page reads faces "
            f"(flipping as the model's rule says) |\n|---|---|---|---|\n{rows}\n")


if __name__ == "__main__":
    sys.exit(main())
