"""Two models in the page, side by side in one run: what a change of model costs or saves.

Renders the site once per model folder, serves both on 127.0.0.1 with gzip, and drives headless
Chromium over the same generated photos as `bench.speed`: per photo in warm pages (and the
expression model alone), then the time to the first result in cold runs. Both are taken in rounds,
A B then B A, ..., so that a slow spell of this noisy machine falls on both models alike. Writes
--out/side_by_side.json (every run) and side_by_side.md (medians).

    python -m bench.side_by_side OLD_MODEL_DIR NEW_MODEL_DIR [--runs 10] [--warm-count 30]

A model from an earlier commit: `git archive COMMIT models/default | tar -x -C /tmp/old`, then
pass /tmp/old/models/default.
"""
import argparse
import contextlib
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.browser import ROOT
from bench.cli import check_model_dir, run_and_print, save_results
from common.errors import FacemoodError

WARM_ROUNDS = 4


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.side_by_side", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dirs", type=Path, nargs=2, metavar="MODEL_DIR", help="the two model folders")
    parser.add_argument("--runs", type=int, default=10, help="cold runs per model, interleaved (default 10)")
    parser.add_argument("--warm-count", type=int, default=30,
                        help=f"classifications in each warm page (default 30; {WARM_ROUNDS} pages per model)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for side_by_side.json and .md")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warm_count < 4:
        parser.error("--runs must be at least 1 and --warm-count at least 4")
    for model_dir in args.model_dirs:
        check_model_dir(parser, model_dir)
    return args


def main(argv=None):
    return run_and_print("python -m bench.side_by_side", argv, parse_args, run)


def run(args, command):
    from playwright.sync_api import sync_playwright

    from bench import composites, measure, sites
    from web.render import render_site

    names = [f"{chr(ord('A') + i)}: {d}" for i, d in enumerate(args.model_dirs)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i, model_dir in enumerate(args.model_dirs):
            render_site(model_dir, tmp / str(i))
        photos = composites.write_photos(tmp / "photos")
        cold = [[] for _ in args.model_dirs]
        with contextlib.ExitStack() as stack:
            urls = [stack.enter_context(sites.served(tmp / str(i))) for i in range(len(args.model_dirs))]
            playwright = stack.enter_context(sync_playwright())
            pages = [sites.facemood(url) for url in urls]
            warm = [{"per_photo_ms": [], "expression_model_ms": []} for _ in pages]
            for n in range(WARM_ROUNDS):
                print(f"[{time.strftime('%H:%M:%S')}] warm pages {n + 1}/{WARM_ROUNDS}", file=sys.stderr, flush=True)
                for i in _round_order(n, len(pages)):
                    result = measure.warm_run(playwright, pages[i], photos, count=args.warm_count)
                    warm[i]["per_photo_ms"] += result["ms"]
                    warm[i]["expression_model_ms"] += result["classify_only_ms"]
            for n in range(args.runs):
                print(f"[{time.strftime('%H:%M:%S')}] cold runs {n + 1}/{args.runs}", file=sys.stderr, flush=True)
                for i in _round_order(n, len(pages)):
                    try:
                        result = measure.cold_run(playwright, pages[i], photos[n % len(photos)])
                    except (RuntimeError, TimeoutError) as e:  # one line, as bench.speed reports a failed page
                        raise FacemoodError(f"{names[i]} could not be measured: {e}") from None
                    cold[i].append(result["first_result_ms"])
    models = [{"model_dir": str(d), "first_result_ms": c, **w} for d, c, w in zip(args.model_dirs, cold, warm)]
    report = {"command": command, "date": datetime.date.today().isoformat(), "models": models}
    report["markdown"] = _markdown(names, models, command, report["date"])
    save_results(args.out, "side_by_side", report, report["markdown"])
    return report


def _round_order(n, count):
    """The models' order in round `n`: A B, then B A, ..."""
    return range(count) if n % 2 == 0 else range(count - 1, -1, -1)


def _markdown(names, models, command, date):
    median = lambda values: f"{statistics.median(values):.1f} ms"
    rows = [("Time to first result, cold (median of interleaved runs)", "first_result_ms"),
            ("Per photo, one face, warm (median)", "per_photo_ms"),
            ("The expression model alone: crop and classification (median)", "expression_model_ms")]
    lines = [f"| metric | {' | '.join(names)} |", "|---|" + "---|" * len(names)]
    lines += [f"| {title} | {' | '.join(median(m[key]) for m in models)} |" for title, key in rows]
    return "\n".join(lines) + f"\n\n`{command}` on {date}: {len(models[0]['first_result_ms'])} cold runs per model, " \
        f"and {WARM_ROUNDS} warm pages per model, in rounds A B, B A, ...; the photos of `bench.speed`.\n"


if __name__ == "__main__":
    sys.exit(main())
