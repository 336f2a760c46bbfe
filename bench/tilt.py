"""Does turning a tilted face upright before classifying it pay?

FER2013's faces are upright. In real photos heads lean: selfies, people leaning together. The page
measures each face's roll from BlazeFace's eye keypoints and, when it is `facemood.levelFrom`
degrees or more, turns the crop back by it (`facemood.classify(src)`). Here each validation
(PublicTest) face, with its border extended around it as in bench/crop_margin.py, is turned by a
known angle (clockwise or counter-clockwise at random), pasted onto colour noise, and classified
by the page both ways: as the page does ("levelled") and as it lies (`{level: false}`). Also
recorded: how often the face is found at each angle and how far the measured roll is from the true
one.

Where should levelling start? Each face is classified a third time turned upright whatever its
roll (`{levelFrom: 0}`); a threshold T then gives the face the label of that turned crop when its
measured roll (whole degrees, as the page reports it) is T or more, and the label as it lies
otherwise. The table of thresholds that follows is computed so, from the same runs. Writes
bench/results/tilt.json and .md.

    python -m bench.tilt --data path/to/fer2013.csv.gz [--count 300]
"""
import sys
import time

import numpy as np
from PIL import Image

from bench.browser import site_page
from bench.cli import one_line_errors, save_results
from bench.crop_margin import (CONTEXT, data_url, model_validation_faces, noise_background, validation_face_args,
                               with_border)
from common.metadata import load_metadata

ANGLES = [0, 10, 20, 30, 45]
THRESHOLDS = [0, 5, 10, 15, 20, 25, 30, 35]  # degrees; and never (classified as it lies)


def tilted(face, angle, rng):
    """(png data URL, true roll in degrees clockwise on screen): `face` (grey, square) with its
    border extended, turned by `angle` degrees (direction drawn at random) and pasted onto noise."""
    canvas_w, canvas_h = 640, 480
    side = int(rng.integers(96, 200))  # turned by 45°, the largest still fits
    big = int(round(side * (1 + 2 * CONTEXT)))
    clockwise = bool(rng.integers(0, 2))
    extended = with_border(face, big)
    # Pillow turns counter-clockwise for positive angles; the mask keeps the corners it uncovers
    # transparent, so the noise shows there instead of a black wedge.
    turn = -angle if clockwise else angle
    face_rgba = extended.convert("RGBA").rotate(turn, resample=Image.Resampling.BICUBIC, expand=True)
    canvas = noise_background(rng, canvas_w, canvas_h)
    x = int(rng.integers(0, canvas_w - face_rgba.width + 1))
    y = int(rng.integers(0, canvas_h - face_rgba.height + 1))
    canvas.paste(face_rgba, (x, y), face_rgba)
    return data_url(canvas), -turn


@one_line_errors
def main(argv=None):
    args = validation_face_args(argv, __doc__, "validation faces, each given at every angle", "bench.tilt")

    metadata = load_metadata(args.model_dir)
    labels = metadata["labels"]
    val = model_validation_faces(args.data, metadata)
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(val), size=min(args.count, len(val)), replace=False)
    found = {a: 0 for a in ANGLES}
    correct = {a: {"levelled": 0, "as it lies": 0} for a in ANGLES}
    roll_errors = {a: [] for a in ANGLES}
    # Per angle, one (measured |roll|, right turned, right as it lies) per face found.
    outcomes = {a: [] for a in ANGLES}
    started = time.time()
    with site_page(args.model_dir) as page:
        level_from = page.evaluate("facemood.levelFrom")
        for n, index in enumerate(pick):
            truth = labels[val.labels[index]]
            for angle in ANGLES:
                url, true_roll = tilted(val.images[index], angle, rng)
                levelled, as_it_lies, turned = page.evaluate("""async (u) => [
                    (await facemood.classify(u)).faces, (await facemood.classify(u, {level: false})).faces,
                    (await facemood.classify(u, {levelFrom: 0})).faces]""", url)
                if not levelled:
                    continue
                found[angle] += 1
                best = max(range(len(levelled)), key=lambda i: levelled[i]["detection"])
                roll_errors[angle].append(abs(levelled[best]["roll"] - true_roll))
                correct[angle]["levelled"] += levelled[best]["label"] == truth
                correct[angle]["as it lies"] += as_it_lies[best]["label"] == truth
                outcomes[angle].append((abs(levelled[best]["roll"]), turned[best]["label"] == truth,
                                        as_it_lies[best]["label"] == truth))
            print(f"\r{n + 1}/{len(pick)} faces", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    total = len(pick)
    report = {
        "command": args.command,
        "faces_per_angle": total,
        "page_levels_from_degrees": level_from,
        "angles": {str(a): {
            "detection_rate": round(found[a] / total, 4),
            "roll_error_median_degrees": float(np.median(roll_errors[a])) if roll_errors[a] else None,
            "accuracy": {way: round(c / total, 4) for way, c in correct[a].items()},
        } for a in ANGLES},
        "thresholds": _sweep(outcomes, total),
        "seconds": round(time.time() - started, 1),
    }
    save_results(args.out, "tilt", report, _markdown(report))
    print(_markdown(report))


def _sweep(outcomes, total):
    """Accuracy per angle, and the mean over angles, for each threshold (module docstring)."""
    rows = {}
    for threshold in [*THRESHOLDS, None]:
        per_angle = {}
        for angle, faces in outcomes.items():
            right = sum(turned if threshold is not None and roll >= threshold else lies
                        for roll, turned, lies in faces)
            per_angle[str(angle)] = round(right / total, 4)
        rows["never" if threshold is None else str(threshold)] = {
            "accuracy": per_angle, "mean": round(float(np.mean(list(per_angle.values()))), 4)}
    return rows


def _markdown(r):
    rows = "\n".join(
        f"| {a}° | {v['detection_rate']:.1%} | {v['roll_error_median_degrees']} | "
        f"{v['accuracy']['as it lies']:.1%} | {v['accuracy']['levelled']:.1%} |"
        for a, v in r["angles"].items())
    return (f"# Tilted faces: levelled or classified as they lie\n\n`{r['command']}`\n\n"
            f"{r['faces_per_angle']} validation faces, each turned by every angle below (clockwise or "
            f"counter-clockwise at random) with its border extended around it, on colour noise. Accuracy "
            f"counts undetected faces as wrong. Levelled: as the page does, turning faces whose measured roll "
            f"is {r.get('page_levels_from_degrees', 15)} degrees or more.\n\n"
            f"| tilt | detected | roll error, median (degrees) | accuracy as it lies | accuracy levelled |\n"
            f"|---|---|---|---|---|\n{rows}\n" + _sweep_markdown(r))


def _sweep_markdown(r):
    if "thresholds" not in r:
        return ""
    angles = list(r["angles"])
    head = " | ".join(f"{a}°" for a in angles)
    rows = "\n".join(
        f"| {'never' if t == 'never' else t + '°'} | "
        + " | ".join(f"{v['accuracy'][a]:.1%}" for a in angles) + f" | {v['mean']:.2%} |"
        for t, v in r["thresholds"].items())
    return (f"\nLevelling from a threshold: a face whose measured roll (whole degrees) is at least the threshold "
            f"takes the label of its crop turned upright, any other the label as it lies (each face classified "
            f"both ways in the runs above; `never`: as it lies).\n\n"
            f"| levelled from | {head} | mean |\n|---|{'---|' * len(angles)}---|\n{rows}\n")


if __name__ == "__main__":
    sys.exit(main())
