"""Do dim, over-exposed or washed-out photos, or small faces, cost accuracy, and does standardizing
each crop help?

Each validation (PublicTest) face is changed the way a camera or a room changes a face's grey
values (darker, brighter, flatter), or blurred as a face that covered few pixels of its photo, and
classified by the shipped TF.js graph (de-quantized weights, run in Python as the page runs it,
test-time flipping included when the model uses it) twice: with each crop's mean and contrast
brought into the middle 80 % of the training faces' (metadata.json inference.standardize,
convert/graph_model.page_input) and as it comes. Writes bench/results/exposure.json and .md.

    python -m bench.exposure --data path/to/fer2013.csv.gz
"""
import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.browser import ROOT
from bench.cli import one_line_errors, recorded_command, save_results
from common.atomic import check_can_write_file
from common.errors import FacemoodError
from common.metadata import load_metadata
from convert.export import TFJS_DIR, load_evaluation_data
from convert.graph_model import GraphModel, page_probabilities

RESULTS = ROOT / "bench" / "results"

# name -> (what it stands for, (n, size, size) grey values 0-255 -> changed grey values)
CONDITIONS = {
    "unchanged": ("the validation faces as they are", lambda x: x),
    "underexposed": ("every value x 0.35 (about 1.5 stops darker)", lambda x: x * 0.35),
    "dark": ("gamma 2.2 (shadows crushed, highlights kept)", lambda x: 255 * (x / 255) ** 2.2),
    "over-exposed": ("gamma 0.45 (shadows lifted)", lambda x: 255 * (x / 255) ** 0.45),
    "low contrast": ("0.4 x the distance from mid-grey (haze, a cheap lens)", lambda x: 128 + 0.4 * (x - 128)),
    "washed out": ("x 0.5 + 127 (bright and flat, as against a window)", lambda x: x * 0.5 + 127),
    "small face, 24 px": ("scaled down to 24x24 (box filter) and back up (bicubic), as a face that "
                          "covered 24 pixels of its photo", lambda x: _shrunk(x, 24)),
    "small face, 16 px": ("the same from 16x16", lambda x: _shrunk(x, 16)),
}


def _shrunk(images, side):
    size = images.shape[1]
    return np.stack([np.asarray(Image.fromarray(np.uint8(np.clip(image, 0, 255)))
                                .resize((side, side), Image.Resampling.BOX)
                                .resize((size, size), Image.Resampling.BICUBIC), np.float32) for image in images])


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the FER2013 CSV the model was trained on")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for exposure.json and .md")
    args = parser.parse_args(argv)
    check_can_write_file(args.out / "exposure.json")  # before the measuring, not after

    metadata = load_metadata(args.model_dir)
    target = metadata.get("inference", {}).get("standardize")
    dataset = load_evaluation_data(args.data, metadata, progress=True)
    if not target:
        target = dataset.grey_statistics()  # what `build.py convert --standardize on` would record
    ways = {"as it comes": _with_standardize(metadata, None), "standardized": _with_standardize(metadata, target)}
    graph = GraphModel(args.model_dir / TFJS_DIR)
    val = dataset.val
    if not len(val):
        raise FacemoodError(f"{args.data}: no validation split")
    started = time.time()
    accuracy = {}
    for name, (_, change) in CONDITIONS.items():
        x = np.clip(change(val.images.astype(np.float32)), 0, 255)[..., None]
        accuracy[name] = {way: round(float((page_probabilities(graph, x, m).argmax(1) == val.labels).mean()), 4)
                          for way, m in ways.items()}
        print(f"{name}: {accuracy[name]}", flush=True)
    report = {
        "command": recorded_command("python -m bench.exposure", parser, args),
        "faces": len(val),
        "standardize_to": target,
        "shipped_standardizes": bool(metadata.get("inference", {}).get("standardize")),
        "test_time_flip": bool(metadata.get("inference", {}).get("test_time_flip")),
        "conditions": {name: {"change": CONDITIONS[name][0], "accuracy": accuracy[name]} for name in CONDITIONS},
        "seconds": round(time.time() - started, 1),
    }
    save_results(args.out, "exposure", report, _markdown(report))
    print(_markdown(report))


def _with_standardize(metadata, target):
    changed = copy.deepcopy(metadata)
    inference = changed.setdefault("inference", {})
    inference.pop("standardize", None)
    if target:
        inference["standardize"] = target
    return changed


def _markdown(r):
    rows = "\n".join(f"| {name} | {c['change']} | {c['accuracy']['as it comes']:.1%} | "
                     f"{c['accuracy']['standardized']:.1%} |" for name, c in r["conditions"].items())
    t = r["standardize_to"]
    return (f"# Exposure and resolution: accuracy of the shipped model on changed validation faces\n\n"
            f"`{r['command']}`\n\n"
            f"{r['faces']} PublicTest faces, the shipped TF.js graph as the page runs it"
            f"{' (test-time flipping included)' if r['test_time_flip'] else ''}. Standardized: a crop whose mean "
            f"grey level lies outside {t['mean'][0]:.0f}-{t['mean'][1]:.0f} or whose standard deviation lies outside "
            f"{t['std'][0]:.0f}-{t['std'][1]:.0f} (the middle 80 % of the training faces') shifted and scaled to "
            f"the nearest edge, clipped to 0-255. The shipped model standardizes: "
            f"{'yes' if r['shipped_standardizes'] else 'no'}.\n\n"
            f"| condition | change to the face | accuracy as it comes | accuracy standardized |\n"
            f"|---|---|---|---|\n{rows}\n")


if __name__ == "__main__":
    sys.exit(main())
