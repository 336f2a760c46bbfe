"""What the comparison page shows: the backbone table (with sort keys) and the accuracy-vs-load-time chart.

Reads the compare.json that `build.py compare` writes; the chart is laid out here as plain SVG
numbers so the page needs no charting library and no inline script.
"""
import math
from pathlib import Path

from common.atomic import read_json
from common.errors import FacemoodError

DEFAULT_COMPARISON = Path(__file__).resolve().parent.parent / "bench" / "results" / "compare.json"
CHART = {"width": 640, "height": 360, "left": 56, "right": 20, "top": 16, "bottom": 44}


def comparison_context(path, required=False):
    """Template context for compare.html, or None when there is no comparison to show. `required`
    (a file the user named): a missing file is an error, not a site without the page."""
    path = Path(path)
    if not path.is_file():
        if required:
            raise FacemoodError(f"{path}: comparison results not found (the compare.json of `build.py compare`)")
        return None
    results = read_json(path, "comparison results")
    try:
        rows = [_row(r) for r in results.get("rows", {}).values()]
        if not rows:
            if required:  # the user named it for its page, which would silently be left out
                raise FacemoodError(f"{path}: holds no compared backbones (its \"rows\" are missing or empty)")
            return None
        rows.sort(key=lambda r: -(r["sort"]["val_accuracy"] if r["ok"] else -1))
        return {"comparison": {"rows": rows, "settings": results["settings"], "command": results.get("command", ""),
                               "data": results.get("data", {}).get("name", "?"),
                               "fer2013": from_fer2013(results),
                               "chart": _chart([r for r in rows if r["ok"] and r["sort"]["load_ms"] is not None])}}
    # Another JSON file, one cut short, or one with figures no run gives (a load time or size of 0).
    except (AttributeError, KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        raise FacemoodError(f"{path}: not the compare.json of `build.py compare` "
                            f"({type(e).__name__}: {e})") from None


def from_fer2013(results):
    """Whether the comparison's data is FER2013's CSV, whose splits are PublicTest and PrivateTest.
    Results from before the data's kind was recorded all came from it."""
    return results.get("data", {}).get("kind", "fer2013-csv") == "fer2013-csv"


def _row(r):
    if "error" in r:
        return {"ok": False, "backbone": r["backbone"], "error": r["error"]}
    browser = r.get("browser", {})
    sort = {"backbone": r["backbone"], "val_accuracy": r["val_accuracy"], "val_loss": r["val_loss"],
            "test_accuracy": r["test_accuracy"], "parameters": r["parameters"], "keras_bytes": r["keras_bytes"],
            "tfjs_weight_bytes": r["tfjs_weight_bytes"], "load_ms": browser.get("load_ms"),
            "first_inference_ms": browser.get("first_inference_ms"), "warm_median_ms": browser.get("warm_median_ms")}
    return {"ok": True, "backbone": r["backbone"], "weights": "ImageNet" if r["weights"] == "imagenet" else "scratch",
            "weights_note": r.get("weights_note", ""), "epochs_run": r["epochs_run"], "images_seen": r["images_seen"],
            "browser": browser, "sort": sort}


def _chart(rows):
    """Point positions in SVG units: x = cold load time (log scale), y = validation accuracy."""
    if not rows:
        return None
    w, h = CHART["width"], CHART["height"]
    x0, x1 = CHART["left"], w - CHART["right"]
    y0, y1 = h - CHART["bottom"], CHART["top"]
    loads = [math.log10(r["sort"]["load_ms"]) for r in rows]
    accs = [r["sort"]["val_accuracy"] * 100 for r in rows]
    # A little room around the points so none sits on an axis.
    lo_x, hi_x = min(loads) - 0.15, max(loads) + 0.15
    lo_y, hi_y = math.floor(min(accs) / 5 - 0.2) * 5, math.ceil(max(accs) / 5 + 0.2) * 5 + 0.001
    sx = lambda v: x0 + (v - lo_x) / (hi_x - lo_x) * (x1 - x0)  # noqa: E731
    sy = lambda v: y0 - (v - lo_y) / (hi_y - lo_y) * (y0 - y1)  # noqa: E731
    biggest = max(r["sort"]["tfjs_weight_bytes"] for r in rows)
    points = [{"x": round(sx(lx), 1), "y": round(sy(a), 1), "label": r["backbone"],
               "label_left": sx(lx) > x0 + 0.7 * (x1 - x0),  # labels near the right edge go on the left
               "r": round(4 + 10 * math.sqrt(r["sort"]["tfjs_weight_bytes"] / biggest), 1),
               "title": f"{r['backbone']}: {a:.1f} % validation accuracy, {r['sort']['load_ms']:.0f} ms to load, "
                        f"{r['sort']['tfjs_weight_bytes'] / 1e6:.2f} MB of shards"}
              for r, lx, a in zip(rows, loads, accs)]
    x_ticks = [{"at": round(sx(math.log10(v)), 1), "text": f"{v:g}"} for v in _log_ticks(10 ** lo_x, 10 ** hi_x)]
    y_ticks = [{"at": round(sy(v), 1), "text": f"{v:.0f} %"} for v in range(int(lo_y), int(hi_y) + 1, 5)]
    return {**CHART, "x0": x0, "x1": x1, "y0": y0, "y1": y1, "points": points, "x_ticks": x_ticks, "y_ticks": y_ticks}


def _log_ticks(lo, hi):
    """Round values in [lo, hi] for a log axis: 1, 2 and 5 times powers of ten, or every multiple of
    one (1-9 times them) when the range is too narrow to hold two of those."""
    def multiples(factors):
        ticks = []
        decade = 10 ** math.floor(math.log10(lo))
        while decade <= hi:
            ticks += [m * decade for m in factors if lo <= m * decade <= hi]
            decade *= 10
        return ticks

    ticks = multiples((1, 2, 5))
    return ticks if len(ticks) >= 2 else multiples(range(1, 10))
