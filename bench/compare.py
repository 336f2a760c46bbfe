"""Backbones side by side under one training budget: accuracy and loss, size, and load time in the browser.

Every backbone gets the same data, splits, input size, augmentation, seed and budget (CPU time,
as minutes of the whole machine, and/or epochs), a new head, and ImageNet weights when Keras has them cached (otherwise it
starts from scratch; the table says which). Each is converted to uint8 TF.js shards and then, in one
headless Chromium session after all training is done, loaded cold in the real page and timed.

Story: per backbone: train -> convert -> record (a crash is recorded in its row; the rest go on)
-> all rows: time in the browser -> compare.json, compare.md, compare.png. A re-run skips the
backbones that already have results unless told to redo them.

    python build.py compare --data fer2013.csv.gz [--backbones mobilenet_v2,vgg16] [--budget 4]
"""
import base64
import io
import os
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bench.browser import launch
from bench.cli import save_results
from common.atomic import atomic_write_bytes, check_can_write_file, read_json
from common.errors import FacemoodError
from web.compare_page import from_fer2013

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# The seven backbones of the original plan plus the width the shipped model uses.
DEFAULT_BACKBONES = ["mobilenet", "mobilenet_v2", "mobilenet_v3_small", "densenet121", "xception", "vgg16",
                     "efficientnet_b0", "mobilenet_v2@0.35"]
WARM_RUNS = 30


@dataclass
class CompareSettings:
    data: Path
    backbones: list = field(default_factory=lambda: list(DEFAULT_BACKBONES))
    input_size: int = 72          # Xception needs at least 71; everyone gets the same
    budget_minutes: float = 4.0   # training time per backbone, in minutes of all cores; 0 = epochs only
    epochs: int = 30
    subset: float = 1.0           # fraction of every split, for quick runs
    weights: str = "auto"         # auto: ImageNet when Keras has it cached, else scratch
    batch_size: int = 64
    seed: int = 0
    browser_runs: int = 3         # cold page loads per model
    work_dir: Path = ROOT / "runs" / "compare"
    out_dir: Path = RESULTS
    redo: bool = False
    remeasure: bool = False

    def fingerprint(self):
        """What makes two runs comparable: a row made with other settings is not reused."""
        keep = ("input_size", "budget_minutes", "epochs", "subset", "weights", "batch_size", "seed")
        return {**{k: v for k, v in asdict(self).items() if k in keep}, "cores": os.cpu_count()}


def parse_backbone(spec):
    """'mobilenet_v2@0.35' -> ('mobilenet_v2', 0.35); width 1.0 when not given."""
    from train.model import BACKBONES, WIDTH_MULTIPLIER

    name, _, alpha = spec.partition("@")
    if name not in BACKBONES:
        raise FacemoodError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    if alpha and name not in WIDTH_MULTIPLIER:
        raise FacemoodError(f"{spec}: only MobileNets have a width multiplier")
    try:
        return name, float(alpha) if alpha else 1.0
    except ValueError:
        raise FacemoodError(f"{spec}: the width after @ must be a number, e.g. mobilenet_v2@0.35") from None


def compare(settings, progress=True):
    """Train, convert and time every backbone in `settings`; write the results. Returns them."""
    if not settings.backbones:
        raise FacemoodError("--backbones: no backbone given")
    check_can_write_file(settings.out_dir / "compare.json")  # before hours of work, too
    for spec in settings.backbones:
        parse_backbone(spec)  # every name checked before hours of work start
    results = _previous_results(settings)
    # Read even when every row is done: rows from other data must not pass for this data's.
    dataset = _load_data(settings, progress)
    results = _same_data(results, dataset, settings)
    results["data"] = {"name": Path(settings.data).name, "kind": dataset.kind, "sha256": dataset.sha256,
                       "counts": dataset.counts()}
    todo = [s for s in settings.backbones if settings.redo or "error" in results["rows"].get(s, {"error": 1})]
    for skipped in sorted(set(settings.backbones) - set(todo)):
        _say(progress, f"{skipped}: already in {settings.out_dir / 'compare.json'} (--redo trains it again)")
    for i, spec in enumerate(todo, 1):
        _say(progress, f"[{i}/{len(todo)}] {spec}: training (budget {settings.budget_minutes:g} min, "
                       f"at most {settings.epochs} epochs)")
        try:
            results["rows"][spec] = _train_and_convert(spec, settings, dataset, progress)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # out of memory, a conversion failure...: this row says so, the rest go on
            if not isinstance(e, FacemoodError):
                traceback.print_exc()
            results["rows"][spec] = {"backbone": spec, "error": _one_line(e)}
            _say(progress, f"{spec}: failed: {_one_line(e)}")
        _write(results, settings)
    measure = [s for s in settings.backbones if "error" not in results["rows"][s]
               and (settings.remeasure or "browser" not in results["rows"][s])]
    if measure:
        _measure_in_browser(results, measure, settings, progress)
    _write(results, settings)
    return results


def _previous_results(settings):
    path = settings.out_dir / "compare.json"
    fresh = {"settings": settings.fingerprint(), "rows": {}}
    if not path.exists():
        return fresh
    previous = read_json(path, "comparison results")
    if previous.get("settings") != settings.fingerprint():
        if not settings.redo:
            raise FacemoodError(f"{path} was made with other settings ({previous.get('settings')}); "
                                f"pass --redo to start over, or --out elsewhere")
        return fresh
    return previous


def _same_data(results, dataset, settings):
    """`results`, or a fresh start under --redo when its rows were trained on other data."""
    before = results.get("data")
    if not results["rows"] or before is None or dataset.is_named_by(before.get("sha256")):
        return results
    if not settings.redo:
        raise FacemoodError(f"{settings.out_dir / 'compare.json'} was made from other data ({before.get('name')}); "
                            f"pass --redo to start over, or --out elsewhere")
    return {"settings": settings.fingerprint(), "rows": {}}


def _load_data(settings, progress):
    import numpy as np

    from train.data import Split, load_dataset

    dataset = load_dataset(settings.data, image_size=48, seed=settings.seed, progress=progress)
    if settings.subset >= 1:
        return dataset
    rng = np.random.default_rng(settings.seed)

    def part(split):
        keep = np.sort(rng.permutation(len(split))[:max(1, int(len(split) * settings.subset))])
        return Split(split.images[keep], split.labels[keep])

    return replace(dataset, train=part(dataset.train), val=part(dataset.val), test=part(dataset.test))


def _train_and_convert(spec, settings, dataset, progress):
    from convert.export import convert
    from train.config import TrainConfig
    from train.train import MODEL_FILE, train

    name, alpha = parse_backbone(spec)
    weights, weights_note = _weights_for(name, alpha, settings)
    config = TrainConfig(backbone=name, alpha=alpha, image_size=48, input_size=settings.input_size, weights=weights,
                         epochs=settings.epochs, batch_size=settings.batch_size, patience=settings.epochs,
                         seed=settings.seed)
    model_dir = settings.work_dir / spec
    budget = _budget_callback(settings.budget_minutes)
    started = time.time()
    metadata = train(settings.data, model_dir, config, progress=progress, callbacks=[budget], dataset=dataset)
    train_seconds = time.time() - started
    metadata = convert(model_dir, quantize="uint8", data=None, progress=progress)
    metrics = read_json(model_dir / "metrics.json", "metrics")["float"]
    return {
        "backbone": spec, "name": name, "alpha": alpha if name.startswith("mobilenet") else None,
        "weights": weights, "weights_note": weights_note,
        "parameters": metadata["architecture"]["parameters"],
        "keras_bytes": (model_dir / MODEL_FILE).stat().st_size,
        "tfjs_weight_bytes": metadata["tfjs"]["weight_bytes"],
        "epochs_run": metadata["training"]["epochs_run"], "best_epoch": metadata["training"]["best_epoch"],
        "stopped_by_budget": budget.stopped, "train_seconds": round(train_seconds, 1),
        "images_seen": budget.batches * settings.batch_size,
        "val_accuracy": metrics["val"]["accuracy"], "val_loss": metrics["val"]["loss"],
        "val_macro_f1": metrics["val"]["macro_f1"],
        # Data without a test split has no test figures.
        "test_accuracy": metrics.get("test", {}).get("accuracy"), "test_macro_f1": metrics.get("test", {}).get("macro_f1"),
        "model_dir": str(model_dir),
    }


def _weights_for(name, alpha, settings):
    """('imagenet' | 'none', why): `auto` uses ImageNet weights only when Keras can load them here."""
    from train.model import build_model

    if settings.weights != "auto":
        return settings.weights, "as asked"
    try:
        build_model(7, 48, settings.input_size, name, alpha, "imagenet")
        return "imagenet", "loaded through Keras' cache"
    except FacemoodError as e:
        return "none", f"ImageNet weights not usable here: {e}"


def _budget_callback(minutes):
    """A Keras callback that ends training once `minutes` of the whole machine's CPU are spent.

    Counted as this process's CPU time divided by the core count, so the budget buys the same
    training whatever else runs on the machine (0 = no budget).
    """
    from train.keras_env import keras

    cores = os.cpu_count() or 1

    class Budget(keras.callbacks.Callback):
        stopped, batches, started = False, 0, None

        def on_train_begin(self, logs=None):
            self.started = time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            if minutes and (time.process_time() - self.started) / cores > minutes * 60:
                self.stopped = True
                self.model.stop_training = True  # Keras still validates this epoch and keeps the best one

    return Budget()


# --- the browser ---------------------------------------------------------------------------------

def _measure_in_browser(results, specs, settings, progress):
    """Cold loads (fresh browser each) and warm per-face latency, every model on the same page."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from web.render import render_site
    from web.serve import start_server

    face = _probe_face_url()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        for i, spec in enumerate(specs, 1):
            row = results["rows"][spec]
            _say(progress, f"[{i}/{len(specs)}] {spec}: timing in Chromium ({settings.browser_runs} cold loads, "
                           f"{WARM_RUNS} warm faces)")
            try:
                dist = render_site(row["model_dir"], Path(tmp) / spec)
                server, url = start_server(dist)
                try:
                    row["browser"] = _time_model(playwright, url, face, settings.browser_runs)
                finally:
                    server.shutdown()
            except Exception as e:  # a model the page cannot run is a result too
                row["browser"] = {"error": _one_line(e)}
                _say(progress, f"{spec}: browser timing failed: {_one_line(e)}")
            _write(results, settings)


def _time_model(playwright, url, face, runs):
    loads, first, backend = [], [], None
    warm = []
    for run in range(runs):
        browser = launch(playwright)
        try:
            # No service worker: its background pre-caching of the model would skew the warm timings.
            page = browser.new_context(service_workers="block").new_page()
            page.goto(url)
            ready = page.evaluate("facemood.ready")
            loads.append(ready["model"]["loadMs"])
            first.append(ready["model"]["firstInferenceMs"])
            backend = ready["backend"]
            if run == 0:
                warm = page.evaluate("""async ([face, n]) => {
                    const ms = [];
                    for (let i = 0; i < n; i++) ms.push((await facemood.classifyFace(face)).ms);
                    return ms;
                }""", [face, WARM_RUNS])
        finally:
            browser.close()
    percentiles = statistics.quantiles(warm, n=100, method="inclusive")  # as NumPy's percentile
    return {"backend": backend, "cold_runs": runs,
            "load_ms": round(statistics.median(loads), 1), "first_inference_ms": round(statistics.median(first), 1),
            "warm_median_ms": round(percentiles[49], 2), "warm_p90_ms": round(percentiles[89], 2)}


def _probe_face_url():
    """A 48x48 grey face-like image as a data URL: what the page classifies when warm."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (48, 48), 90)
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 4, 40, 44), fill=170)
    draw.ellipse((15, 16, 21, 21), fill=40)
    draw.ellipse((27, 16, 33, 21), fill=40)
    draw.arc((16, 26, 32, 38), 20, 160, fill=50, width=2)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# --- outputs -------------------------------------------------------------------------------------

def _write(results, settings):
    out = settings.out_dir
    out.mkdir(parents=True, exist_ok=True)
    results["settings"] = settings.fingerprint()
    results["command"] = "python build.py compare " + " ".join(_command_args(settings))
    save_results(out, "compare", results, markdown(results))
    rows = [r for r in results["rows"].values() if "load_ms" in r.get("browser", {})]
    if rows:
        atomic_write_bytes(out / "compare.png", _chart_png(rows))
    else:  # an earlier run's chart would pass for this one's
        (out / "compare.png").unlink(missing_ok=True)


def _command_args(settings):
    args = [f"--data {Path(settings.data).name}", f"--input-size {settings.input_size}",
            f"--budget {settings.budget_minutes:g}", f"--epochs {settings.epochs}"]
    if settings.subset < 1:
        args.append(f"--subset {settings.subset:g}")
    if list(settings.backbones) != DEFAULT_BACKBONES:
        args.append("--backbones " + ",".join(settings.backbones))
    defaults = CompareSettings(data=None)
    for name, flag in (("weights", "--weights"), ("seed", "--seed")):  # the rest of fingerprint()
        if getattr(settings, name) != getattr(defaults, name):
            args.append(f"{flag} {getattr(settings, name)}")
    return args


COLUMNS = [  # (heading, row -> text)
    ("backbone", lambda r: r["backbone"]),
    ("weights", lambda r: "ImageNet" if r["weights"] == "imagenet" else "scratch"),
    ("epochs (images seen)", lambda r: f"{r['epochs_run']} ({r['images_seen']:,})"),
    ("val acc", lambda r: f"{r['val_accuracy'] * 100:.1f} %"),
    ("val loss", lambda r: f"{r['val_loss']:.3f}"),
    ("test acc", lambda r: "—" if r["test_accuracy"] is None else f"{r['test_accuracy'] * 100:.1f} %"),
    ("params", lambda r: f"{r['parameters'] / 1e6:.2f} M"),
    ("Keras file", lambda r: _mb(r["keras_bytes"])),
    ("TF.js uint8", lambda r: _mb(r["tfjs_weight_bytes"])),
    ("load (cold)", lambda r: _browser(r, "load_ms", "{:.0f} ms")),
    ("first inference", lambda r: _browser(r, "first_inference_ms", "{:.0f} ms")),
    ("per face median / p90", lambda r: _browser(r, "warm_median_ms", "{:.1f}") + " / "
     + _browser(r, "warm_p90_ms", "{:.1f} ms")),
    ("backend", lambda r: r.get("browser", {}).get("backend") or "—"),
]


def markdown(results):
    """The comparison as a Markdown table, best validation accuracy first."""
    s = results["settings"]
    lines = ["# Backbones compared", "",
             f"Same data ({results.get('data', {}).get('name', '?')}), splits, {s['input_size']} px input, "
             f"augmentation and seed; training budget per backbone: "
             + (f"{s['budget_minutes']:g} min of this machine's {s.get('cores', '?')} cores (process CPU time / cores, "
                f"so other work does not change it; at most {s['epochs']} epochs)"
                if s["budget_minutes"] else f"{s['epochs']} epochs")
             + (f", {s['subset']:.0%} of each split" if s["subset"] < 1 else "") + ". "
             + ("Validation = PublicTest (used to pick the best epoch), test = PrivateTest. "
                if from_fer2013(results) else
                "Validation (used to pick the best epoch) and test are the data's own held-out images. ")
             + "Browser: headless "
             "Chromium, model load from request to ready (median of cold loads), first inference (warm-up), "
             "then per-face latency warm.", "",
             f"Command: `{results['command']}`", "",
             "| " + " | ".join(h for h, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in sorted(results["rows"].values(), key=lambda r: -(r.get("val_accuracy") or -1)):
        if "error" in row:
            lines.append(f"| {row['backbone']} | failed: {row['error']} |" + " |" * (len(COLUMNS) - 2))
        else:
            lines.append("| " + " | ".join(text(row) for _, text in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _browser(row, key, fmt):
    value = row.get("browser", {}).get(key)
    return fmt.format(value) if value is not None else "—"


def _mb(n):
    return f"{n / 1e6:.2f} MB"


def _chart_png(rows):
    """Validation accuracy against cold load time, one labelled point per backbone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for row in rows:
        x, y = row["browser"]["load_ms"], row["val_accuracy"] * 100
        ax.scatter(x, y, s=30 + row["tfjs_weight_bytes"] / 1e5, alpha=0.7)
        ax.annotate(row["backbone"], (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("model load time in the browser, cold (ms, log scale)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Accuracy against load time (point area ~ shard bytes)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _one_line(e):
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _say(progress, message):
    if progress:
        print(message, file=sys.stderr, flush=True)
