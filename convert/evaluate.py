"""Evaluate a converted model on a data set and write a report people can read and diff.

Story: load the model folder and the data -> run the float Keras model and the shipped TF.js
graph (de-quantized weights) on the validation and test splits -> also score the test split
without the images that occur, pixel for pixel, in the training split (FER2013 has such
duplicates) -> score test-time flipping too (the mean of a face and its mirror image) ->
write report/report.json, report/report.md and a confusion matrix PNG.
"""
import hashlib
from pathlib import Path

import numpy as np

from common.atomic import atomic_dir, atomic_write_json
from common.metadata import as_the_page_runs_it, check_converted, weights_kind
from convert.class_bias import recorded_bias, shifted_probabilities
from convert.export import TFJS_DIR, load_evaluation_data, shipped_network
from convert.graph_model import GraphModel, page_input, page_probabilities
from convert.selective_flip import combined, unsure
from train.metrics import classification_report
from train.plots import plot_confusion
from train.train import load_trained

REPORT_DIR = "report"


def evaluate(model_dir, data, progress=True):
    """Write `model_dir/report/` for `data` (the data the model was trained on). Returns the report."""
    model_dir = Path(model_dir)
    model, metadata = load_trained(model_dir)
    shipped_network(model, metadata)
    check_converted(model_dir / TFJS_DIR, metadata)  # the shards the site would publish, or none
    dataset = load_evaluation_data(data, metadata, progress)
    graph = GraphModel(model_dir / TFJS_DIR)
    labels = metadata["labels"]
    seen_in_training = {hashlib.sha256(image.tobytes()).digest() for image in dataset.train.images}
    flipping = bool(metadata.get("inference", {}).get("test_time_flip"))
    bias = recorded_bias(metadata)
    report = {"model": metadata["architecture"], "test_time_flip": flipping,
              "flip_when_unsure": metadata.get("inference", {}).get("flip_when_unsure") if flipping else None,
              "class_bias": metadata.get("inference", {}).get("class_bias"),
              "standardize": metadata.get("inference", {}).get("standardize"),
              "smoothing": metadata.get("inference", {}).get("smoothing"), "data": metadata["training"]["data"]["name"],
              "weight_bytes": metadata["tfjs"]["weight_bytes"], "quantize": metadata["tfjs"]["quantize"],
              "weights": weights_kind(metadata["tfjs"]),
              # What was evaluated, for the site to tell this report from one of another conversion.
              "evaluated": as_the_page_runs_it(metadata),
              "splits": {}}
    for split in ("val", "test"):
        part = dataset.split(split)
        if not len(part):
            continue
        x = part.images[..., None].astype(np.float32)
        # The float model the way the page runs the shipped one (flipping included when it flips).
        float_probs = page_probabilities(lambda batch: model.predict(batch, batch_size=256, verbose=0), x, metadata)
        fed = page_input(x, metadata)
        single_probs = graph(fed)
        # Does averaging with the mirrored face pay for a second inference? Both are measured;
        # "quantized" is what the page does (metadata.json: inference.test_time_flip).
        mirror_probs = graph(fed[:, :, ::-1])
        flip_probs = (single_probs + mirror_probs) / 2
        flipped = unsure(single_probs, metadata)  # all, none, or the faces below the margin
        quant_probs = combined(single_probs, mirror_probs, flipped)
        unseen = np.array([hashlib.sha256(image.tobytes()).digest() not in seen_in_training
                           for image in part.images])
        without_bias = {}
        if bias is not None:
            # What the same graph scores with its class bias taken back out of every pass (the same
            # faces flipped).
            single_unbiased, mirror_unbiased = (shifted_probabilities([np.log(np.clip(p, 1e-12, 1))], -bias)
                                                for p in (single_probs, mirror_probs))
            unbiased = combined(single_unbiased, mirror_unbiased, flipped)
            without_bias["quantized_without_class_bias"] = classification_report(unbiased, part.labels, labels)
        report["splits"][split] = {
            **without_bias,
            "float": classification_report(float_probs, part.labels, labels),
            "quantized": classification_report(quant_probs, part.labels, labels),
            "quantized_deduplicated": classification_report(quant_probs[unseen], part.labels[unseen], labels),
            "quantized_single_pass": classification_report(single_probs, part.labels, labels),
            "quantized_flip_averaged": classification_report(flip_probs, part.labels, labels),
            "duplicates_of_training_removed": int((~unseen).sum()),
            "share_flipped": round(float(flipped.mean()), 4),
        }
    with atomic_dir(model_dir / REPORT_DIR, marker="report.json") as tmp:
        atomic_write_json(tmp / "report.json", report)
        (tmp / "report.md").write_text(_markdown(report, labels), encoding="utf-8")
        last = "test" if "test" in report["splits"] else "val"
        plot_confusion(report["splits"][last]["quantized"]["confusion"], labels, tmp / "confusion_matrix.png",
                       f"Confusion matrix ({last} split, as shipped)")
    return report


def _pct(value):
    return "—" if value is None else f"{value:.2%}"


def _markdown(report, labels):
    names = {"val": "validation", "test": "test"}
    lines = [f"# Evaluation of {report['model']['backbone']} (α {report['model']['alpha']}) on {report['data']}",
             "", f"Shipped weights: {report['weight_bytes']:,} bytes ({report.get('weights', report['quantize'])}).", "",
             "| split | float accuracy (run as the page runs the shipped model) | shipped accuracy | "
             "shipped, without training duplicates | "
             "shipped macro-F1 |", "|---|---|---|---|---|"]
    for split, r in report["splits"].items():
        dedup = r["quantized_deduplicated"]
        lines.append(f"| {names[split]} | {_pct(r['float']['accuracy'])} | {_pct(r['quantized']['accuracy'])} | "
                     f"{_pct(dedup['accuracy'])} ({dedup['count']} images, "
                     f"{r['duplicates_of_training_removed']} removed) | {r['quantized']['macro_f1']:.3f} |")
    def figures(key):
        return ", ".join(f"{names[split]} {_pct(r[key]['accuracy'])} (macro-F1 {r[key]['macro_f1']:.3f})"
                         for split, r in report["splits"].items())

    rule = report.get("flip_when_unsure")
    if rule:
        shares = ", ".join(f"{r['share_flipped']:.0%} of the {names[split]} faces" for split, r in report["splits"].items())
        shipped = (f"with test-time flipping (the mean of the scores of the face and of its mirror image) when its "
                   f"two likeliest classes lie less than {rule['margin']:.3f} apart ({shares})")
    else:
        shipped = f"{'with' if report['test_time_flip'] else 'without'} test-time flipping (the mean of the scores " \
                  f"of the face and of its mirror image)"
    lines += ["", f"The page classifies each face {shipped}. Shipped weights with flipping for every face: "
                  f"{figures('quantized_flip_averaged')}; one pass, no flipping: {figures('quantized_single_pass')}."]
    target = report.get("standardize")
    if target:
        lines += ["", f"Before that, as in the page, a crop whose mean grey level lies outside {target['mean'][0]:.0f}-"
                      f"{target['mean'][1]:.0f} or whose standard deviation lies outside {target['std'][0]:.0f}-"
                      f"{target['std'][1]:.0f} (the middle 80 % of the training faces') is brought to the nearest edge."]
    if report.get("smoothing"):
        w = report["smoothing"]
        lines += ["", f"Each crop is also smoothed with the kernel ({w:g}, {1 - 2 * w:g}, {w:g}) along both axes, as the "
                      f"page does: the network learned from resampled, slightly soft training faces."]
    shift = report.get("class_bias")
    if shift:
        raised = ", ".join(f"{label} {value:+.2f}" for label, value in shift["bias"].items() if value)
        lines += ["", f"The shipped network's logits carry a class bias ({raised or 'none needed'}), fitted on the "
                      f"validation split so that every class reaches {shift['min_recall']:.0%} recall there. Without "
                      f"it, the same weights score {figures('quantized_without_class_bias')}."]
    last = "test" if "test" in report["splits"] else "val"
    lines += ["", f"Per class, {names[last]} split, as shipped:", "",
              "| class | precision | recall | F1 | images |", "|---|---|---|---|---|"]
    for label in labels:
        m = report["splits"][last]["quantized"]["per_class"][label]
        lines.append(f"| {label} | {m['precision']:.1%} | {m['recall']:.1%} | {m['f1']:.3f} | {m['support']} |")
    return "\n".join(lines) + "\n"
