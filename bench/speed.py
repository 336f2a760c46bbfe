"""Speed of the facemood page against face-api, measured side by side in one run.

Renders the site for --model-dir and a face-api harness page (tiny face detector + expression net,
WASM and WebGL backends), serves both on 127.0.0.1 as `build.py serve` does (gzip, and the
cross-origin isolation headers unless --no-isolate), and drives headless Chromium:
cold runs (fresh browser, a photo given from inside the page in the task after the page's script
has set up its file input, in both pages alike: time to its result, bytes
received until then, long main-thread tasks), warm pages (latency per photo over
--warm-count classifications in each of --warm-pages pages, pooled, every kind's pages interleaved,
then of facemood's expression
model alone; live tensors after the
first and the last; for facemood also on a second visit, as its service worker serves the page,
and, when the model flips only the faces it is unsure of, with every face counted as unsure: what a
face costs whose mirror image runs too) and the webcam mode on
a 640x480 fake camera. The photos are composites made here (a real face pasted on generated
backgrounds). Writes --out/speed.json (every run), --out/speed.md (the table) and --out/speed.png
(every run drawn: bench/speed_chart.py).

    python -m bench.speed [--runs 5] [--warm-count 100] [--out bench/results]
"""
import argparse
import contextlib
import datetime
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.browser import ROOT
from bench.cli import run_and_print, save_results
from common.atomic import atomic_write_bytes, atomic_write_json
from common.errors import FacemoodError

CONTENDERS = ("facemood", "faceapi_wasm", "faceapi_webgl")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default", help="model to build the site from")
    parser.add_argument("--runs", type=int, default=5, help="cold runs per page (default 5); figures are medians")
    parser.add_argument("--warm-count", type=int, default=100,
                        help="facemood's classifications in the warm page (default 100: the tensor-leak check)")
    parser.add_argument("--peer-warm-count", type=int, default=20,
                        help="face-api's warm classifications (default 20; its WebGL backend takes seconds each here)")
    parser.add_argument("--warm-pages", type=int, default=3,
                        help="warm pages per page and visit, each in a fresh browser, pooled (default 3)")
    parser.add_argument("--webcam-seconds", type=float, default=4.0, help="webcam measuring window (default 4)")
    parser.add_argument("--only", choices=CONTENDERS, action="append",
                        help="measure only this page (repeatable); the default is all three")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=True,
                        help="serve every page, face-api's too, with the cross-origin isolation headers, as "
                             "`build.py serve` does, so each may run on several threads from the first visit; "
                             "--no-isolate serves them as a host without the headers would")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for speed.json and speed.md")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: write speed.md (and speed.json's figures) again from the runs in "
                             "--out/speed.json, as this version of the report sums them up")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warm_pages < 1 or min(args.warm_count, args.peer_warm_count) < 4:
        parser.error("--runs and --warm-pages must be at least 1, --warm-count and --peer-warm-count at least 4")
    if args.only and "facemood" not in args.only:
        parser.error("--only must include facemood: every figure is facemood's, or a ratio to it")
    return args


def progress(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv=None):
    return run_and_print("python -m bench.speed", argv, parse_args, run)


def run(args, command="python -m bench.speed"):
    if args.render_only:
        return render_again(args.out)
    from playwright.sync_api import sync_playwright

    from bench import composites, measure, report, sites
    from web.render import render_site

    started = time.time()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="facemood-speed-") as tmp:
        tmp = Path(tmp)
        progress("rendering the site, the face-api page and the photos")
        dist = render_site(args.model_dir, tmp / "facemood")
        unsure_dist = (render_site(every_face_unsure(args.model_dir, tmp / "model-unsure"), tmp / "facemood-unsure")
                       if _flips_only_unsure(args.model_dir) and "facemood" in (args.only or CONTENDERS) else None)
        harness = sites.write_faceapi_harness(tmp / "faceapi")
        photos = composites.write_photos(tmp / "photos")
        video = composites.write_camera_video(tmp / "camera.y4m")
        served = functools.partial(sites.served, isolate=args.isolate)
        with served(dist) as ours, served(harness) as theirs, \
                (served(unsure_dist) if unsure_dist else contextlib.nullcontext()) as ours_unsure, \
                sync_playwright() as playwright:
            contenders = {c.name: c for c in (sites.facemood(ours), sites.faceapi(theirs, "wasm"),
                                              sites.faceapi(theirs, "webgl"))}
            chosen = [contenders[name] for name in (args.only or CONTENDERS)]
            cold = {c.name: [] for c in chosen}
            failures = {}
            # Runs interleave the pages, so a burst of load on this shared machine hits all of them.
            for i in range(args.runs):
                for contender in chosen:
                    if contender.name in failures:
                        continue
                    try:
                        result = measure.cold_run(playwright, contender, photos[i % len(photos)])
                    except (RuntimeError, TimeoutError) as e:
                        failures[contender.name] = str(e)
                        progress(f"{contender.title}: {e}")
                        continue
                    cold[contender.name].append(result)
                    progress(f"cold run {i + 1}/{args.runs} {contender.title}: first result "
                             f"{result['first_result_ms']:.0f} ms, {result['bytes_gzip'] / 1e6:.2f} MB gzip")
            warm, second, unsure, fps = {}, {}, {}, {}
            # Each kind of warm page: (where its figures go, whose they are, the page, classifications,
            # second visit, what it is).
            kinds = []
            for contender in chosen:
                if contender.name in failures:
                    continue
                count = args.warm_count if contender.name == "facemood" else args.peer_warm_count
                kinds.append((warm, contender, contender, count, False, "first visit"))
                if contender.returns:
                    kinds.append((second, contender, contender, count, True, "second visit"))
                if contender.name == "facemood" and unsure_dist:
                    kinds.append((unsure, contender, sites.facemood(ours_unsure), count, False, "every face unsure"))
            # Warm pages interleave like the cold runs: page n of every kind before page n + 1 of any, so
            # a slow spell of this shared machine does not fall on one kind's pages alone.
            pages = [[] for _ in kinds]
            for n in range(args.warm_pages):
                for runs, (store, contender, page, count, second_visit, what) in zip(pages, kinds):
                    progress(f"warm page {n + 1}/{args.warm_pages} {contender.title}, {what}: {count} classifications")
                    runs.append(measure.warm_run(playwright, page, photos, count, second_visit=second_visit))
            for runs, (store, contender, *_) in zip(pages, kinds):
                store[contender.name] = measure.pooled(runs)
            for contender in chosen:
                if contender.name not in failures:
                    progress(f"{contender.title}: webcam")
                    fps[contender.name] = measure.webcam_fps(playwright, contender, video, args.webcam_seconds)
    # A page that failed part-way has some cold runs but no warm or webcam figures: a peer's are left
    # out of the ratios; facemood's own targets cannot be judged without them.
    if "facemood" in failures:
        raise FacemoodError(f"facemood could not be measured: {failures['facemood']}")
    summaries = summarize_all(chosen, cold, warm, fps, second, unsure)
    rows = report.compare(summaries)
    meta = {
        "command": command,
        "date": datetime.date.today().isoformat(), "runs": args.runs, "warm_count": args.warm_count,
        "warm_pages": args.warm_pages, "warm_interleaved": True,
        "peer_warm_count": args.peer_warm_count,
        "webcam_seconds": args.webcam_seconds, "isolated": args.isolate, "cpus": os.cpu_count(), "load_before": load_before,
        "load_after": os.getloadavg()[0], "chromium": chromium_version(), "faceapi_version": faceapi_version(),
        "faceapi_input_size": 416, "seconds": round(time.time() - started, 1), "photos": [p.name for p in photos],
        "first_result_ratio_interval": report.first_result_interval(summaries, cold),
    }
    markdown = report.markdown(summaries, rows, {c.name: c.title for c in chosen}, meta)
    result = {"meta": meta, "summary": summaries, "targets": rows, "failures": failures,
              "cold_runs": cold, "warm": warm, "warm_second_visit": second, "warm_every_face_unsure": unsure,
              "webcam_fps": fps, "markdown": markdown}
    save(args.out, result, markdown, {c.name: c.title for c in chosen})
    progress(f"wrote {args.out / 'speed.json'}, speed.md and speed.png in {meta['seconds']:.0f} s")
    return result


def summarize_all(contenders, cold, warm, fps, second, unsure):
    """Each contender's figures from its runs (report.summarize)."""
    from bench import report

    return {c.name: report.summarize(c, cold[c.name], warm.get(c.name), fps.get(c.name), second.get(c.name),
                                     unsure.get(c.name))
            for c in contenders}


def save(out, result, markdown, titles):
    """speed.json, speed.md and the chart of the runs, speed.png, each written atomically; the chart
    is drawn first, so a failure to draw it leaves the earlier three files together."""
    from bench.speed_chart import chart_png

    png = chart_png(result, titles)
    save_results(out, "speed", result, markdown)
    atomic_write_bytes(Path(out) / "speed.png", png)


def _flips_only_unsure(model_dir):
    from common.metadata import load_metadata

    return "flip_when_unsure" in load_metadata(model_dir).get("inference", {})


def every_face_unsure(model_dir, out):
    """A copy of `model_dir` whose page counts every face as unsure (a margin above any top-two
    margin), so each face also runs its mirror image: the cost of a face the network is unsure of,
    measured on the benchmark's photos, whose face it is sure of."""
    from common.metadata import load_metadata

    shutil.copytree(model_dir, out, ignore=shutil.ignore_patterns("report"))
    metadata = load_metadata(out)
    metadata["inference"]["flip_when_unsure"]["margin"] = 1.01
    atomic_write_json(out / "metadata.json", metadata)
    return out


def render_again(out):
    """speed.md and the summed-up figures of out/speed.json again from its runs, nothing measured."""
    from bench import report, sites

    path = out / "speed.json"
    if not path.is_file():
        raise FacemoodError(f"{path}: no benchmark run to render; run `python -m bench.speed` first")
    result = json.loads(path.read_text())
    cold = result["cold_runs"]
    contenders = [c for c in (sites.facemood(""), sites.faceapi("", "wasm"), sites.faceapi("", "webgl"))
                  if c.name in cold]
    titles = {c.name: c.title for c in contenders}
    summaries = summarize_all(contenders, cold, result["warm"], result["webcam_fps"], result["warm_second_visit"],
                              result["warm_every_face_unsure"])
    meta = {**result["meta"], "first_result_ratio_interval": report.first_result_interval(summaries, cold)}
    rows = report.compare(summaries)
    markdown = report.markdown(summaries, rows, titles, meta)
    result.update(meta=meta, summary=summaries, targets=rows, markdown=markdown)
    save(out, result, markdown, titles)
    progress(f"wrote {path}, speed.md and speed.png again from the runs in {path}")
    return result


def faceapi_version():
    from bench.sites import FACEAPI

    return json.loads((FACEAPI / "package.json").read_text())["version"]


def chromium_version():
    from bench.browser import CHROMIUM

    words = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.split()
    return next((w for w in words if w[:1].isdigit()), "unknown")


if __name__ == "__main__":
    sys.exit(main())
