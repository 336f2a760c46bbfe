"""What cross-origin isolation costs and earns the page, side by side in one run.

Renders the site once and serves it twice on 127.0.0.1 with gzip: as a static host without the
isolation headers serves it (`build.py serve --no-isolate`), and with them (`build.py serve`). In
headless Chromium, over the photos of `bench.speed`, in rounds (plain then isolated, isolated then
plain, ...):
- a first visit, cold (fresh browser): time to the first result, and the longest main-thread task
  until the page has settled (an isolated page moves to the multi-threaded runtime after its first
  results);
- a second and a third visit in the same tab (reloads), once the page's service worker controls
  it (the worker serves the page isolated either way): time to the first result of each;
- per photo in warm first-visit pages (--warm-pages per way, the ways alternating, pooled: a
  busy spell of this shared machine can slow one page's whole run), and the threads it settled on.
Writes --out/isolation.json (every run) and isolation.md (medians).

    python -m bench.isolation [--runs 8] [--warm-count 40] [--warm-pages 3]
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

WAYS = {"plain": "served without the headers (`--no-isolate`)", "isolated": "served isolated (`build.py serve`)"}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.isolation", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default", help="model folder")
    parser.add_argument("--runs", type=int, default=8, help="rounds of cold runs (default 8)")
    parser.add_argument("--warm-count", type=int, default=40, help="classifications in each warm page (default 40)")
    parser.add_argument("--warm-pages", type=int, default=3, help="warm pages per way (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for isolation.json and .md")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warm_pages < 1 or args.warm_count < 4:
        parser.error("--runs and --warm-pages must be at least 1, --warm-count at least 4")
    check_model_dir(parser, args.model_dir)
    return args


def main(argv=None):
    return run_and_print("python -m bench.isolation", argv, parse_args, run)


def later_visits(playwright, contender, photo, visits=3):
    """Times to the first result of the second and later visits: the page loaded in a fresh
    browser, then, once its service worker controls it, reloaded with the photo given the same way
    each time."""
    from bench import measure
    from bench.browser import launch

    browser = launch(playwright)
    try:
        page = browser.new_context().new_page()
        page.add_init_script(measure.observers(contender.api, photo))
        shown = "window.__bench && window.__bench.firstResult !== null"
        page.goto(contender.url, wait_until="commit")
        measure.wait_for(page, shown)
        times, isolated = [], []
        for _ in range(visits - 1):
            page.evaluate(f"{contender.threads}.then(() => navigator.serviceWorker.ready).then(() => true)")
            measure.wait_for(page, "navigator.serviceWorker.controller !== null")
            page.reload(wait_until="commit")
            measure.wait_for(page, shown)
            times.append(page.evaluate("window.__bench.firstResult"))
            isolated.append(page.evaluate("crossOriginIsolated"))
        return {"first_result_ms": times, "isolated": isolated}
    finally:
        browser.close()


def run(args, command):
    from playwright.sync_api import sync_playwright

    from bench import composites, measure, sites
    from web.render import render_site

    runs = {way: {"first_visit": [], "later_visits": [], "warm": []} for way in WAYS}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dist = render_site(args.model_dir, tmp / "site")
        photos = composites.write_photos(tmp / "photos")
        with contextlib.ExitStack() as stack:
            pages = {way: sites.facemood(stack.enter_context(sites.served(dist, isolate=way == "isolated")))
                     for way in WAYS}
            playwright = stack.enter_context(sync_playwright())
            for n in range(args.runs):
                print(f"[{time.strftime('%H:%M:%S')}] round {n + 1}/{args.runs}", file=sys.stderr, flush=True)
                for way in (WAYS if n % 2 == 0 else reversed(WAYS)):
                    photo = photos[n % len(photos)]
                    try:
                        runs[way]["first_visit"].append(measure.cold_run(playwright, pages[way], photo))
                        runs[way]["later_visits"].append(later_visits(playwright, pages[way], photo))
                    except (RuntimeError, TimeoutError) as e:
                        raise FacemoodError(f"the page {WAYS[way]} could not be measured: {e}") from None
            warm = {way: [] for way in WAYS}
            for n in range(args.warm_pages):
                for way in (WAYS if n % 2 == 0 else reversed(WAYS)):
                    print(f"[{time.strftime('%H:%M:%S')}] warm page {n + 1}/{args.warm_pages}, {WAYS[way]}",
                          file=sys.stderr, flush=True)
                    warm[way].append(measure.warm_run(playwright, pages[way], photos, count=args.warm_count))
            for way, pages_run in warm.items():
                runs[way]["warm"] = {"ms": [ms for run in pages_run for ms in run["ms"]],
                                     "threads": pages_run[0]["threads"],
                                     "page_medians": [statistics.median(run["ms"]) for run in pages_run]}
    report = {"command": command, "date": datetime.date.today().isoformat(), "runs": runs,
              "summary": {way: summarize(r) for way, r in runs.items()}}
    report["markdown"] = markdown(report["summary"], command, report["date"], args.runs, args.warm_pages)
    save_results(args.out, "isolation", report, report["markdown"])
    return report


def summarize(runs):
    first, later, warm = runs["first_visit"], runs["later_visits"], runs["warm"]
    return {
        "first_visit_ms": statistics.median(r["first_result_ms"] for r in first),
        "longest_task_ms": statistics.median(r["longest_task_after_load_ms"] for r in first),
        "worst_task_ms": max(r["longest_task_after_load_ms"] for r in first),
        "second_visit_ms": statistics.median(r["first_result_ms"][0] for r in later),
        "third_visit_ms": statistics.median(r["first_result_ms"][1] for r in later),
        "later_visits_isolated": all(all(r["isolated"]) for r in later),
        "per_photo_ms": statistics.median(warm["ms"]),
        "threads": warm["threads"],
        "pages": "–".join(f"{f(warm['page_medians']):.0f}" for f in (min, max)),
    }


def markdown(summary, command, date, runs, warm_pages):
    plain, isolated = summary["plain"], summary["isolated"]
    rows = [
        ("First visit: time to the first result, cold (median)", "{first_visit_ms:.0f} ms"),
        ("First visit: longest main-thread task after load, until settled (median; worst)",
         "{longest_task_ms:.0f} ms ({worst_task_ms:.0f})"),
        ("Second visit (a reload once the service worker controls the page): time to the first result (median)",
         "{second_visit_ms:.0f} ms"),
        ("Third visit (another reload): time to the first result (median)", "{third_visit_ms:.0f} ms"),
        ("Second and third visits cross-origin isolated", "{later_visits_isolated}"),
        ("Per photo, one face, warm, first visit (median; threads; each page's median)",
         "{per_photo_ms:.1f} ms ({threads}; pages {pages})"),
    ]
    lines = [f"| metric | {WAYS['plain']} | {WAYS['isolated']} |", "|---|---|---|"]
    lines += [f"| {title} | {cell.format(**plain)} | {cell.format(**isolated)} |" for title, cell in rows]
    return "\n".join(lines) + (
        f"\n\n`{command}` on {date}: {runs} rounds, the two ways in alternating order; each round one cold first "
        "visit per way (fresh Chromium, the photo given the moment the page listens, as in `bench.speed`) and one "
        f"first, second and third visit in another fresh browser; then {warm_pages} warm pages per way, the ways "
        "alternating, pooled.\n")


if __name__ == "__main__":
    sys.exit(main())
