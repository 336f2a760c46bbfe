"""How accurate are the peers on FER2013, measured here?

face-api's expression net (@vladmandic/face-api) and mini-Xception (the emotion model that
@vladmandic/human ships) run in headless Chromium with real TensorFlow.js (face-api's bundled
build, WASM backend) on FER2013's PublicTest and PrivateTest 48x48 crops as given (no detection),
each prepared as its own library prepares a face. Their models, the bundle and the WASM binaries
are copied from node_modules into a temporary folder served on 127.0.0.1; nothing is downloaded.
Writes NAME.json and NAME.md (NAME: peers) into --out.

    python -m bench.peers --data fer2013.csv.gz [--count N] [--out bench/results]
"""
import argparse
import base64
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.browser import ROOT, launch
from bench.cli import recorded_command, run_and_print, save_results
from common.errors import FacemoodError

NODE = ROOT / "node_modules"
FACEAPI = NODE / "@vladmandic" / "face-api"
HUMAN = NODE / "@vladmandic" / "human"
WASM_DIR = NODE / "@tensorflow" / "tfjs-backend-wasm" / "dist"
FACEAPI_MANIFEST = FACEAPI / "model" / "face_expression_model-weights_manifest.json"
HUMAN_MODEL = HUMAN / "models" / "emotion.json"
SPLITS = {"PublicTest": "val", "PrivateTest": "test"}  # FER2013's Usage -> train.data's split
MODELS = {
    "faceapi_expression": {"title": "face-api expression net", "package": FACEAPI, "manifest": FACEAPI_MANIFEST,
                           "input": "the grey crop tiled to RGB (0-255) and given to face-api's own "
                                    "faceExpressionNet.predictExpressions as one tensor per face: face-api resizes "
                                    "it to 112x112 (tf.image.resizeBilinear), subtracts its mean RGB "
                                    "(122.782, 117.001, 104.298) and divides by 255"},
    "mini_xception": {"title": "mini-Xception (Human's emotion model)", "package": HUMAN, "manifest": HUMAN_MODEL,
                      "input": "as Human's emotion module prepares its face tensor: the crop tiled to RGB and "
                               "divided by 255, resized to 64x64 (tf.image.resizeBilinear), grey as "
                               "0.2989 R + 0.587 G + 0.114 B, then (x - 0.5) * 2"},
}

# The page: face-api's bundle (its tf too), both models, and one function that scores a batch of
# grey crops with each. Scores come back in FER2013's label order.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>peers on FER2013 (benchmark)</title></head>
<body><script type="module">
import * as faceapi from './face-api.esm.js';
const tf = faceapi.tf;
// face-api's FACE_EXPRESSION_LABELS, each under FER2013's name, in FER2013's order.
const FACEAPI_AS_FER = ['angry', 'disgusted', 'fearful', 'happy', 'sad', 'surprised', 'neutral'];
const GREY = [0.2989, 0.587, 0.114];  // Human's constants.rgb

window.peers = (async () => {
  tf.setWasmPaths(new URL('wasm/', location.href).href);  // the binaries served beside the page
  if (!(await tf.setBackend('wasm'))) throw new Error('TF.js WASM backend unavailable');
  await tf.ready();
  await faceapi.nets.faceExpressionNet.loadFromUri('model');
  const emotion = await tf.loadGraphModel('human/emotion.json');

  async function scores(b64, n, side) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const grey = tf.tensor4d(bytes, [n, side, side, 1], 'int32');
    const rgb = tf.tile(grey, [1, 1, 1, 3]);
    // face-api: one RGB tensor per face through its own predictExpressions (its resize and normalization).
    const faces = tf.unstack(rgb);
    const found = await faceapi.nets.faceExpressionNet.predictExpressions(faces);
    faces.forEach((t) => t.dispose());
    const faceapiScores = found.map((e) => FACEAPI_AS_FER.map((name) => e[name]));
    // mini-Xception, as Human's emotion module feeds it (its label order is FER2013's).
    const x = tf.tidy(() => {
      const resized = tf.image.resizeBilinear(tf.div(tf.cast(rgb, 'float32'), 255), [64, 64], false);
      const g = tf.sum(tf.mul(resized, tf.tensor1d(GREY)), 3, true);
      return tf.mul(tf.sub(g, 0.5), 2);
    });
    const out = emotion.execute(x);
    const miniScores = await out.array();
    tf.dispose([grey, rgb, x, out]);
    return { faceapi_expression: faceapiScores, mini_xception: miniScores };
  }
  return { scores, backend: tf.getBackend(), tfjs: tf.version.tfjs, numTensors: () => tf.memory().numTensors };
})();
</script></body></html>
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="FER2013's CSV (fer2013.csv or .csv.gz)")
    parser.add_argument("--count", type=int, default=None,
                        help="the first N faces of each split (default: the whole split)")
    parser.add_argument("--batch-size", type=int, default=64, help="faces scored in one call into the page")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for peers.json/.md")
    args = parser.parse_args(argv)
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    args.recorded = recorded_command("python -m bench.peers", parser, args)
    return args


def weight_files(manifest):
    """The .bin files a TF.js weights manifest (or graph model's JSON) names, beside it."""
    try:
        spec = json.loads(Path(manifest).read_text())
    except (OSError, ValueError) as e:
        raise FacemoodError(f"{manifest}: cannot read the model ({e}); run `npm ci`") from None
    groups = spec["weightsManifest"] if isinstance(spec, dict) else spec
    return [Path(manifest).parent / path for group in groups for path in group["paths"]]


def write_page(folder):
    """The page and everything it loads, copied from node_modules into `folder`."""
    files = {"face-api.esm.js": FACEAPI / "dist" / "face-api.esm.js",
             "model/" + FACEAPI_MANIFEST.name: FACEAPI_MANIFEST, "human/emotion.json": HUMAN_MODEL}
    files.update({f"model/{p.name}": p for p in weight_files(FACEAPI_MANIFEST)})
    files.update({f"human/{p.name}": p for p in weight_files(HUMAN_MODEL)})
    files.update({f"wasm/{p.name}": p for p in WASM_DIR.glob("*.wasm")})
    missing = [p for p in files.values() if not p.is_file()] or ([] if any(WASM_DIR.glob("*.wasm")) else [WASM_DIR])
    if missing:
        raise FacemoodError(f"the peers are not installed ({missing[0]} missing); run `npm ci`")
    for name, source in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, folder / name)
    (folder / "index.html").write_text(PAGE)


def score_split(page, images, batch_size, label):
    """{model: (n, 7) scores in FER2013's order} for the grey crops `images` (n, side, side)."""
    out = {name: [] for name in MODELS}
    for start in range(0, len(images), batch_size):
        batch = np.ascontiguousarray(images[start:start + batch_size], np.uint8)
        got = page.evaluate("([b, n, side]) => peers.then((p) => p.scores(b, n, side))",
                            [base64.b64encode(batch.tobytes()).decode(), len(batch), batch.shape[1]])
        for name in MODELS:
            out[name] += got[name]
        print(f"\r{label}: {min(start + batch_size, len(images))}/{len(images)} faces", end="", file=sys.stderr,
              flush=True)
    print(file=sys.stderr)
    return {name: np.asarray(s, np.float64) for name, s in out.items()}


def run(args, command=None):
    from playwright.sync_api import sync_playwright

    from bench.sites import served
    from train.data import load_dataset
    from train.metrics import classification_report

    data = load_dataset(args.data)  # a missing or malformed file is a FacemoodError
    splits = {usage: data.split(split) for usage, split in SPLITS.items()}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        folder = Path(tmp)
        write_page(folder)
        browser = launch(playwright)
        try:
            with served(folder, isolate=True) as url:  # isolated: WASM may use its threads
                page = browser.new_page()
                page.goto(url)
                info = page.evaluate("peers.then((p) => ({backend: p.backend, tfjs: p.tfjs}))")
                scores = {usage: score_split(page, s.images[:args.count], args.batch_size, usage)
                          for usage, s in splits.items()}
                leaked = page.evaluate("peers.then((p) => p.numTensors())")
            chromium = browser.version
        except Exception as e:  # Playwright's errors: one line, as the other benchmarks report a failed page
            raise FacemoodError(f"the peers could not be measured: {(str(e).splitlines() or [type(e).__name__])[0]}") from None
        finally:
            browser.close()
    seconds = time.time() - started
    models = {}
    for name, model in MODELS.items():
        files = weight_files(model["manifest"])
        results = {}
        for usage, split in splits.items():
            truth = split.labels[:args.count]
            r = classification_report(scores[usage][name], truth, data.labels)
            results[usage] = {"count": r["count"], "correct": int(round(r["accuracy"] * r["count"])),
                              "accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "confusion": r["confusion"]}
        models[name] = {"title": model["title"], "version": _version(model["package"]),
                        "weight_files": [f.relative_to(ROOT).as_posix() for f in files],
                        "weight_bytes": sum(f.stat().st_size for f in files), "input": model["input"],
                        "splits": results}
    report = {"command": args.recorded, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "data": Path(args.data).name, "data_sha256": data.sha256, "labels": data.labels,
              "chromium": chromium, "tfjs": info["tfjs"], "backend": info["backend"],
              "tfjs_backend_wasm": _version(WASM_DIR.parent), "seconds": round(seconds, 1),
              "tensors_left_in_page": leaked, "models": models}
    report["markdown"] = markdown(report)
    save_results(args.out, "peers", {k: v for k, v in report.items() if k != "markdown"}, report["markdown"])
    return report


def _version(package):
    return json.loads((Path(package) / "package.json").read_text())["version"]


def markdown(r):
    rows = "\n".join(
        f"| {m['title']} {m['version']} | {usage} | {s['count']} | {s['accuracy']:.1%} | {s['macro_f1']:.3f} | "
        f"{m['weight_bytes']:,} |" for m in r["models"].values() for usage, s in m["splits"].items())
    inputs = "\n".join(f"- **{m['title']}:** {m['input']}." for m in r["models"].values())
    return (f"# The peers on FER2013, measured in the browser\n\n`{r['command']}`\n\n"
            f"{r['date']}, {r['data']} (sha256 {r['data_sha256'][:12]}), headless Chromium {r['chromium']}, "
            f"TensorFlow.js {r['tfjs']} ({r['backend']} backend, face-api's bundled build), {r['seconds']} s. "
            "FER2013's 48x48 grey crops as given, no detection (images: how many of each split, from its first); "
            "top-1 against FER2013's label. Weight bytes: the model's .bin files as shipped in node_modules.\n\n"
            "| model | split | images | accuracy | macro-F1 | weight bytes |\n|---|---|---|---|---|---|\n"
            f"{rows}\n\nHow each model's input was prepared:\n\n{inputs}\n")


def main(argv=None):
    return run_and_print("python -m bench.peers", argv, parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
