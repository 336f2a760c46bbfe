"""From raw runs to the figures, ratios and targets of the speed benchmark, and its Markdown table."""
import random
import statistics

MB = 1_000_000  # the byte budget is in decimal megabytes


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(contender, cold, warm, fps, second=None, unsure=None):
    """One contender's figures: medians over its cold runs, its warm runs (first and, where the page
    has a service worker that changes it, second visit; `unsure`: first visit with every face
    counted as unsure, when the page flips only those) and its webcam run."""
    if not cold:
        return None
    return {
        "first_result_ms": median([r["first_result_ms"] for r in cold]),
        "ready_ms": median([r["ready_ms"] for r in cold]),
        "photo_given_ms": median([r.get("photo_given_ms") for r in cold]),
        "bytes_gzip": median([r["bytes_gzip"] for r in cold]),
        "bytes_raw": median([r["bytes_raw"] for r in cold]),
        "longest_task_after_load_ms": median([r["longest_task_after_load_ms"] for r in cold]),
        "worst_task_after_load_ms": max(r["longest_task_after_load_ms"] for r in cold),
        "faces_in_first_photo": [r["faces"] for r in cold],
        "per_image_ms": median(warm["ms"]) if warm else None,
        "threads": warm.get("threads") if warm else None,
        "per_image_second_visit_ms": median(second["ms"]) if second else None,
        "threads_second_visit": second.get("threads") if second else None,
        "per_image_unsure_ms": median(unsure["ms"]) if unsure else None,
        "per_page_unsure_ms": unsure.get("page_medians") if unsure else None,
        "threads_unsure": unsure.get("threads") if unsure else None,
        "classify_only_ms": median(warm.get("classify_only_ms", [])) if warm else None,
        "faces_per_photo": sorted(set(warm["faces"])) if warm else None,
        "tensors_after_1": warm["tensors_after_1"] if warm else None,
        "tensors_after_n": warm["tensors_after_n"] if warm else None,
        "tensors_grew": warm.get("tensors_grew") if warm else None,
        "per_page_ms": warm.get("page_medians") if warm else None,
        "per_page_second_visit_ms": second.get("page_medians") if second else None,
        "warm_count": warm["n"] if warm else None,
        "webcam_fps": fps,
    }


def _ratio(ours, theirs, higher_is_better=False):
    if ours is None or theirs is None or ours == 0:
        return None
    return ours / theirs if higher_is_better else theirs / ours


def ratio_interval(ours, theirs, draws=2000, seed=0):
    """95 % interval of the ratio of medians theirs / ours, from runs measured in pairs (run i of
    each page back to back, interleaved): the pairs resampled with replacement `draws` times (a
    seeded bootstrap, so the same runs give the same interval). None with fewer than 3 pairs."""
    pairs = [(a, b) for a, b in zip(ours, theirs) if a is not None and b is not None]
    if len(pairs) < 3:
        return None
    rng = random.Random(seed)
    ratios = []
    for _ in range(draws):
        sample = [rng.choice(pairs) for _ in pairs]
        ratios.append(statistics.median(b for _, b in sample) / statistics.median(a for a, _ in sample))
    ratios.sort()
    return ratios[int(0.025 * draws)], ratios[int(0.975 * draws) - 1]


def first_result_interval(summaries, cold):
    """ratio_interval of the first result against the peer with the quickest median, or None."""
    peers = [name for name, s in summaries.items() if name != "facemood" and s and s.get("first_result_ms")]
    if "facemood" not in cold or not peers:
        return None
    best = min(peers, key=lambda name: summaries[name]["first_result_ms"])
    interval = ratio_interval([r["first_result_ms"] for r in cold["facemood"]], [r["first_result_ms"] for r in cold[best]])
    return None if interval is None else {"peer": best, "low": interval[0], "high": interval[1]}


def compare(summaries):
    """Targets from issue 6, each checked against our figure and face-api's best backend."""
    ours = summaries["facemood"]
    peers = [s for name, s in summaries.items() if name != "facemood" and s]

    def best(key, higher_is_better=False):
        values = [p[key] for p in peers if p.get(key) is not None]
        return (max if higher_is_better else min)(values) if values else None

    first_ratio = _ratio(ours["first_result_ms"], best("first_result_ms"))
    rows = [
        ("first_result", "Time to first result, cold (median)", "first_result_ms", "ms",
         "≤ 500 ms and ≥ 1.3× faster than face-api's best",
         ours["first_result_ms"] <= 500 and first_ratio is not None and first_ratio >= 1.3, first_ratio),
        ("ready", "Page ready to classify, cold (median; information)", "ready_ms", "ms", "—", None,
         _ratio(ours["ready_ms"], best("ready_ms"))),
        ("photo_given", "Photo given: the page listens for one (median; information)", "photo_given_ms", "ms",
         "—", None, None),
        ("per_image", "Per image, one face, warm, first visit (median; threads; each page's median)", "per_image_ms", "ms", "≤ 20 ms",
         ours["per_image_ms"] <= 20, _ratio(ours["per_image_ms"], best("per_image_ms"))),
        ("per_image_second_visit", "Per image, one face, warm, second visit: served by the page's service worker, "
         "cross-origin isolated (median; threads; each page's median)", "per_image_second_visit_ms", "ms", "≤ 20 ms",
         None if ours["per_image_second_visit_ms"] is None else ours["per_image_second_visit_ms"] <= 20,
         _ratio(ours["per_image_second_visit_ms"], best("per_image_ms"))),
        ("per_image_unsure", "Per image, one face the network is unsure of (its mirror image run too), warm, first "
         "visit (median; threads; each page's median; information)", "per_image_unsure_ms", "ms", "—", None,
         _ratio(ours.get("per_image_unsure_ms"), best("per_image_ms"))),
        ("classify_only", "Per image, the expression model alone: crop and classification, no detection "
         "(median; information)", "classify_only_ms", "ms", "—", None, None),
        ("webcam", "Webcam 640×480, frames per second", "webcam_fps", "fps", "≥ 30",
         ours["webcam_fps"] >= 30, _ratio(ours["webcam_fps"], best("webcam_fps", True), True)),
        ("bytes_gzip", "Bytes before first result, gzip as served (median)", "bytes_gzip", "bytes", "≤ 1.5 MB",
         ours["bytes_gzip"] <= 1.5 * MB, _ratio(ours["bytes_gzip"], best("bytes_gzip"))),
        ("bytes_raw", "Bytes before first result, raw (median; information)", "bytes_raw", "bytes", "—", None,
         _ratio(ours["bytes_raw"], best("bytes_raw"))),
        ("longest_task", "Longest main-thread task after load (median of runs; worst run)",
         "longest_task_after_load_ms", "ms", "≤ 200 ms", ours["longest_task_after_load_ms"] <= 200,
         _ratio(ours["longest_task_after_load_ms"], best("longest_task_after_load_ms"))),
        ("tensors", "Live tensors after the first → the last warm classification (how many)", "tensors_after_n",
         "tensors", "no growth over 100", ours["tensors_after_n"] == ours["tensors_after_1"] and not ours["tensors_grew"]
         and ours["warm_count"] >= 100,
         None),
    ]
    return [{"id": row_id, "metric": label, "key": key, "unit": unit, "target": target, "met": met, "ratio": ratio}
            for row_id, label, key, unit, target, met, ratio in rows]


def _cell(summary, row):
    if summary is None:
        return "unavailable"
    value = summary.get(row["key"])
    if value is None:
        return "—"
    if row["id"] == "tensors":
        return f"{summary['tensors_after_1']} → {value} ({summary['warm_count']})"
    if row["id"] in ("per_image", "per_image_second_visit", "per_image_unsure"):
        suffix = {"per_image": "", "per_image_second_visit": "_second_visit", "per_image_unsure": "_unsure"}[row["id"]]
        threads = summary["threads" + suffix]
        pages = summary["per_page" + suffix + "_ms"] or []
        notes = ([f"{threads}"] if threads else []) + ([f"pages {min(pages):.0f}–{max(pages):.0f}"] if len(pages) > 1 else [])
        return f"{value:.0f} ms" + (f" ({'; '.join(notes)})" if notes else "")
    if row["id"] == "longest_task":
        return f"{value:.0f} ms ({summary['worst_task_after_load_ms']:.0f})"
    if row["unit"] == "bytes":
        return f"{value / MB:.2f} MB"
    if row["unit"] == "fps":
        return f"{value:.1f}"
    return f"{value:.0f} ms"


def markdown(summaries, rows, titles, meta):
    """The table: metric | facemood | face-api WASM | face-api WebGL | ratio | target | met?"""
    names = list(titles)
    lines = [f"| metric | {' | '.join(titles[n] for n in names)} | ratio | target | met? |",
             "|---|" + "---|" * (len(names) + 3)]
    for row in rows:
        ratio = f"{row['ratio']:.2f}×" if row["ratio"] is not None else "—"
        met = "—" if row["met"] is None else ("yes" if row["met"] else "**no**")
        cells = " | ".join(_cell(summaries[n], row) for n in names)
        lines.append(f"| {row['metric']} | {cells} | {ratio} | {row['target']} | {met} |")
    notes = [
        "",
        f"`{meta['command']}` on {meta['date']}: every page served "
        f"{'with' if meta.get('isolated') else 'without'} the cross-origin isolation headers"
        f"{' (as `build.py serve` does)' if meta.get('isolated') else ' (as a host without them would)'}; "
        f"{meta['runs']} cold runs per page (fresh Chromium, empty profile; "
        "the photo, decoded off the main thread while the page loads, given from inside the page the moment it "
        "listens), "
        f"{meta['warm_count']} warm classifications ({meta['peer_warm_count']} for face-api) in each of "
        f"{meta.get('warm_pages', 1)} pages, {'every kind of page in turn, ' if meta.get('warm_interleaved') else ''}"
        f"pooled (facemood's on a first and on a second visit, each once the page "
        "has settled), "
        f"{meta['webcam_seconds']:.0f} s of webcam; {meta['cpus']} CPU cores, "
        f"load average {meta['load_before']:.1f} before and {meta['load_after']:.1f} after; Chromium {meta['chromium']}, "
        f"face-api {meta['faceapi_version']} (tiny face detector, input {meta['faceapi_input_size']}, + expression net).",
        "Ratio: face-api's best backend over facemood for times and bytes (above 1: facemood is faster or smaller), "
        "facemood over face-api's best for frames per second. 1 MB = 1,000,000 bytes.",
    ]
    interval = meta.get("first_result_ratio_interval")
    if interval:
        notes.append(f"First result's ratio, 95 % interval: {interval['low']:.2f}–{interval['high']:.2f}× (the cold runs "
                     f"resampled in their interleaved pairs with {titles.get(interval['peer'], interval['peer'])}, a "
                     "seeded bootstrap of 2,000 draws; the target is checked on the medians).")
    return "\n".join(lines + notes) + "\n"
