"""How closely does the browser reproduce Python on the shipped model?

Runs the same probe images (generated faces, flat, noise, gradient) through the page in
headless Chromium, through the converted graph in Python (`convert/graph_model.py`, the
de-quantized weights the browser loads) and through the float Keras model, and writes the largest
probability differences to bench/results/parity.json.

    python -m bench.parity [--model-dir models/default]
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench.browser import ROOT, site_page
from bench.cli import one_line_errors, recorded_command
from common.atomic import atomic_write_json, check_can_write_file

sys.path.insert(0, str(ROOT / "tests"))
from test_browser import png_data_url, probe_images  # noqa: E402  (the probes the browser test uses)


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for parity.json")
    args = parser.parse_args(argv)
    check_can_write_file(args.out / "parity.json")  # before the measuring, not after

    from convert.export import shipped_network
    from convert.graph_model import GraphModel, page_probabilities
    from train.train import load_trained

    model, metadata = load_trained(args.model_dir)
    model = shipped_network(model, metadata)  # the class bias folded in, as the shipped graph has it
    images = probe_images(metadata["input"]["size"])
    x = np.stack(images)[..., None].astype(np.float32)
    graph = page_probabilities(GraphModel(args.model_dir / "tfjs"), x, metadata)
    # The float model the same way as the page: with the mirrored face averaged in when it flips.
    keras = page_probabilities(lambda batch: model.predict(batch, verbose=0), x, metadata)
    with site_page(args.model_dir) as page:
        results = page.evaluate("urls => Promise.all(urls.map(u => facemood.classifyFace(u)))",
                                [png_data_url(im) for im in images])
    browser = np.array([[r["scores"][label] for label in metadata["labels"]] for r in results])
    report = {
        "command": recorded_command("python -m bench.parity", parser, args),
        "images": len(images),
        "test_time_flip": bool(metadata.get("inference", {}).get("test_time_flip")),
        "max_abs_browser_vs_python_graph": float(np.abs(browser - graph).max()),
        "max_abs_browser_vs_float_keras": float(np.abs(browser - keras).max()),
        "same_top_label_as_python_graph": int((browser.argmax(1) == graph.argmax(1)).sum()),
    }
    atomic_write_json(args.out / "parity.json", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
