"""Where a photo's time goes: each network of the page alone, at the input shapes it runs at.

Renders the site for --model-dir, serves it on 127.0.0.1 and, in a page settled on its first
visit's backend (WASM, one thread), loads the site's own network files again, once for each case,
and runs each on a fixed input, one after another in --runs rounds, so that a slow spell of this
noisy machine falls on all alike: the photo detector at the 256x192 a 4:3 photo runs at, and at smaller sizes it could
run at (faster, but a face must then be larger to be found: bench.detector_scale measures how much); the close-range
detector the webcam uses; the expression model on one crop and on two (a face and its mirror
image). No crop, no drawing, no post-processing: the networks' own time, read back to JavaScript.
Writes --out/networks.json (every run) and networks.md (medians); --render-only writes networks.md
again from the runs in networks.json.

    python -m bench.networks [--model-dir models/default] [--runs 40] [--render-only]
"""
import argparse
import datetime
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench.browser import ROOT
from bench.cli import check_model_dir, run_and_print, save_results
from common.errors import FacemoodError

# (name, network file in the site, input shape [batch, height, width, channels] or None for the
# expression model's own crop size, what it is)
DETECTOR = "detector/blazeface.json"
CLOSE_RANGE = "detector/blazeface-front.json"
EXPRESSION = "model/model.json"
CASES = [
    ("photo_detector_256x192", DETECTOR, [1, 192, 256, 3], "photo detector, 256×192 (a 4:3 photo, as the page runs it)"),
    ("photo_detector_224x192", DETECTOR, [1, 192, 224, 3], "photo detector, 224×192 (if run at 224)"),
    ("photo_detector_192x160", DETECTOR, [1, 160, 192, 3], "photo detector, 192×160 (if run at 192)"),
    ("photo_detector_160x128", DETECTOR, [1, 128, 160, 3], "photo detector, 160×128 (if run at 160)"),
    ("close_range_detector_128x96", CLOSE_RANGE, [1, 96, 128, 3], "close-range detector, 128×96 (a webcam frame)"),
    ("expression_model_1", EXPRESSION, 1, "expression model, one crop"),
    ("expression_model_2", EXPRESSION, 2, "expression model, two crops in one batch (the page runs an unsure "
                                          "face's mirror image as a second batch of one)"),
]
WARM_UP_RUNS = 5


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.networks", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default", help="model folder (default: the shipped one)")
    parser.add_argument("--runs", type=int, default=40, help="rounds over every network (default 40)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for networks.json and .md")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: write networks.md (and networks.json's table) again from the runs "
                             "in --out/networks.json, as this version sums them up")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    check_model_dir(parser, args.model_dir)
    return args


def main(argv=None):
    return run_and_print("python -m bench.networks", argv, parse_args, run)


def run(args, command):
    if args.render_only:
        return render_again(args.out)
    from playwright.sync_api import sync_playwright

    from bench import sites
    from bench.browser import launch
    from web.render import render_site

    with tempfile.TemporaryDirectory() as tmp:
        dist = render_site(args.model_dir, Path(tmp) / "dist")
        with sites.served(dist) as url, sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                page = browser.new_page()
                page.goto(url)
                threads = page.evaluate("facemood.ready.then(() => facemood.threads)")
                timings = page.evaluate(_MEASURE, [[list(c[:3]) for c in CASES], args.runs, WARM_UP_RUNS])
                backend = page.evaluate("tf.getBackend()")
            except Exception as e:  # Playwright's errors: one line, as the other benchmarks report a failed page
                raise FacemoodError(f"the networks could not be measured: {(str(e).splitlines() or [type(e).__name__])[0]}") from None
            finally:
                browser.close()
    model_dir = args.model_dir.resolve()
    shown = model_dir.relative_to(ROOT) if model_dir.is_relative_to(ROOT) else model_dir  # no machine's path
    report = {"command": command, "date": datetime.date.today().isoformat(), "model_dir": str(shown),
              "backend": backend, "threads": threads, "runs": args.runs,
              "networks": [{"name": name, "file": file, "what": what, "input_shape": timings[name]["shape"],
                            "ms": timings[name]["ms"]} for name, file, _, what in CASES]}
    report["markdown"] = _markdown(report)
    save_results(args.out, "networks", report, report["markdown"])
    return report


# In the page: each case's network loaded from the site's own files, run on a fixed input until its
# kernels are set up, then timed in interleaved rounds (execute, then read every output back).
_MEASURE = """async ([cases, runs, warmUps]) => {
  // A network of its own for each case: TF.js's WASM kernels set a layer up for the input shape it
  // last ran at, so one network alternating between shapes would pay for that at every run (the
  // page keeps a copy per shape for the same reason, copies.js).
  const networks = [];
  for (const [, file] of cases) networks.push(await tf.loadGraphModel(file));
  const inputs = cases.map(([, , shape], i) => {
    const network = networks[i];
    const full = Array.isArray(shape) ? shape : [shape, ...network.inputs[0].shape.slice(1)];
    const size = full.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: size }, (_, i) => ((i * 7919) % 255) / 127.5 - 1);
    return tf.tensor4d(values, full);
  });
  const once = (i) => {
    const outputs = networks[i].execute(inputs[i]);
    const list = Array.isArray(outputs) ? outputs : [outputs];
    list.forEach((t) => t.dataSync());
    tf.dispose(list);
  };
  cases.forEach((_, i) => { for (let n = 0; n < warmUps; n++) once(i); });
  const ms = cases.map(() => []);
  for (let r = 0; r < runs; r++) {
    cases.forEach((_, i) => {
      const started = performance.now();
      once(i);
      ms[i].push(performance.now() - started);
    });
  }
  const result = Object.fromEntries(cases.map(([name], i) => [name, { shape: inputs[i].shape, ms: ms[i] }]));
  tf.dispose(inputs);
  networks.forEach((network) => network.dispose());
  return result;
}"""


def render_again(out):
    """networks.md and networks.json's table again from the stored runs, with this version's labels."""
    path = out / "networks.json"
    if not path.is_file():
        raise FacemoodError(f"{path}: no benchmark run to render; run `python -m bench.networks` first")
    report = json.loads(path.read_text())
    labels = {name: what for name, _, _, what in CASES}
    for row in report["networks"]:
        row["what"] = labels.get(row["name"], row["what"])
    report["markdown"] = _markdown(report)
    save_results(out, "networks", report, report["markdown"])
    return report


def middle_half(values):
    """The first and third quartiles, interpolated between the runs as NumPy's percentile does."""
    if len(values) < 2:
        return values[0], values[0]
    quarter, _, three_quarters = statistics.quantiles(values, n=4, method="inclusive")
    return quarter, three_quarters


def _markdown(report):
    rows = report["networks"]
    base = statistics.median(rows[0]["ms"])
    lines = ["| network, input | median | range of the middle half | share of the photo detector at 256×192 |",
             "|---|---|---|---|"]
    for row in rows:
        ms = row["ms"]
        quarter, three_quarters = middle_half(ms)
        lines.append(f"| {row['what']} | {statistics.median(ms):.1f} ms | {quarter:.1f}–{three_quarters:.1f} ms "
                     f"| {statistics.median(ms) / base:.0%} |")
    return "\n".join(lines) + (
        f"\n\n`{report['command']}` on {report['date']}: {report['runs']} interleaved rounds after "
        f"{WARM_UP_RUNS} runs each to set the kernels up; the page's backend {report['backend']}, "
        f"{report['threads']} thread(s) (a first visit); {report['model_dir']}. Each network alone on a fixed "
        "input, its outputs read back; a photo also pays for drawing, cropping and reading the results.\n")


if __name__ == "__main__":
    sys.exit(main())
