"""Render the static site into a folder, atomically, from a converted model folder.

Needs only jinja2, Node.js and the npm packages in node_modules (the TF.js runtime and esbuild,
which bundles it); never TensorFlow, so a fresh clone can build the site with the shipped model
in seconds.
"""
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from common.atomic import Marker, atomic_dir, check_replaceable, read_json
from common.errors import FacemoodError
from common.metadata import as_the_page_runs_it, check_converted, kept_float16, load_metadata
from web.compare_page import DEFAULT_COMPARISON, comparison_context
from web.detector import write_detector
from web.serve import CACHE_HEADERS, ISOLATION_HEADERS

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
I18N = Path(__file__).resolve().parent / "i18n"
# How an earlier site is recognised before it is replaced: its service worker's cache name (every
# build since the site had one; another site may well have an index.html).
SITE_MARKER = Marker("sw.js", "const CACHE = 'facemood-")
NODE_MODULES = ROOT / "node_modules" / "@tensorflow"
# The browser runtime the page loads: one script with tfjs-core, the graph-model loader (only the
# ops the site's models use) and the WASM backend, bundled from node_modules at every render
# (web/runtime/bundle.mjs, esbuild): under half the bytes of the stock bundles to fetch and parse.
RUNTIME_BUNDLER = Path(__file__).resolve().parent / "runtime" / "bundle.mjs"
RUNTIME_BUNDLE = "tf-runtime.min.js"
BUNDLER_PACKAGE = ROOT / "node_modules" / "esbuild" / "package.json"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
# The page's own ES modules (main.js and what it imports) as one minified module: a cold load then
# fetches, compiles and links one file instead of twelve (33 ms sooner to the first result, median
# of 13 cold runs each). The modules themselves ship beside it, for embedding and reading.
PAGE_ENTRY = "main.js"
PAGE_BUNDLE = "main.min.js"
# Shipped but fetched only when needed: the plain JS backend (runtime.js loads it when WASM cannot
# start; it extends the global `tf` of the bundle) and the WASM builds; the page starts the SIMD
# one (the plain one where SIMD is missing) and, once it has shown its first results, the
# multi-threaded one where it is cross-origin isolated (runtime.js startThreadedBackend).
RUNTIME_FALLBACK = ["tfjs-backend-cpu/dist/tf-backend-cpu.es2017.min.js"]
RUNTIME_WASM = [
    "tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
    "tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm",
]
PRELOADED_WASM = "tfjs-backend-wasm-simd.wasm"
# Face detector: BlazeFace as converted to TF.js by @vladmandic/human (MIT), vendored with its
# weights stored as float16 (web/detector.py; the same values, half the bytes).
DETECTOR_DIR = ROOT / "node_modules" / "@vladmandic" / "human"
DETECTOR_FILES = ["models/blazeface.json", "models/blazeface.bin", "LICENSE"]
# The licences as the site serves them: with .txt, so that hosts send them as text to be read
# rather than as a file to download.
LICENCE, CLOSE_RANGE_LICENCE = "LICENSE.txt", "LICENSE-blazeface-front.txt"
# The webcam's detector: BlazeFace's 128x128 front-camera model, a quarter of the work for the close
# faces a camera sees (kept in web/vendor with its provenance; loaded only when the camera starts).
CLOSE_RANGE_DETECTOR = Path(__file__).resolve().parent / "vendor" / "blazeface-front" / "blazeface-front.json"
PAGES = ["index.html", "model.html"]
# Only this site's own scripts, models and workers; images also from blob:/data: (the person's own
# photos); WebAssembly compiled from our vendored binaries; nothing inline, nothing elsewhere. The
# multi-threaded WASM build's workers are made by TF.js from blob: URLs of its own bundled code.
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval' blob:; worker-src 'self' blob:; "
       "img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self' blob: data:; "
       "style-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'")
MODEL_PLOTS = ["learning_curves.png", "confusion_matrix.png"]


def check_can_render(out):
    """What render_site would refuse for lack of anything but a model, checked before the steps
    that make the model: `out` is not another folder, and the browser runtime is installed."""
    check_replaceable(Path(out), SITE_MARKER)
    _vendored_files()


def render_site(model_dir, out, comparison=DEFAULT_COMPARISON, comparison_required=False):
    """Write the site for the model in `model_dir` to `out` (replaced as a whole). Returns `out`.

    `comparison`: a compare.json from `build.py compare`; when it exists the site gets compare.html
    (and with `comparison_required`, a file the user named, it must exist).
    """
    model_dir, out = Path(model_dir), Path(out)
    metadata = load_metadata(model_dir)
    tfjs_dir = model_dir / "tfjs"
    check_converted(tfjs_dir, metadata)
    runtime, detector = _vendored_files()
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html.j2"]),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    metrics = read_json(model_dir / "metrics.json", "model metrics")
    context = _context(metadata, metrics, runtime, _matching_report(model_dir / "report" / "report.json", metadata))
    compared = comparison_context(comparison, comparison_required) if comparison else None
    context["has_comparison"] = compared is not None
    context.update(preloads=_preloads(tfjs_dir / "model.json", detector[0]), page_script=f"assets/js/{PAGE_BUNDLE}")
    # Every file is copied without its source's date (shutil.copy, not copy2): a build from an older
    # model must not carry dates older than the build it replaces, or a browser revalidating by
    # date would keep the replaced files.
    with atomic_dir(out, marker=SITE_MARKER) as tmp:
        for page in PAGES:
            (tmp / page).write_text(env.get_template(page + ".j2").render(**context), encoding="utf-8")
        if compared:
            (tmp / "compare.html").write_text(env.get_template("compare.html.j2").render(**context, **compared), encoding="utf-8")
        shutil.copytree(STATIC, tmp / "assets", copy_function=shutil.copy)
        _bundle_page(tmp / "assets" / "js")
        shutil.copytree(I18N, tmp / "i18n", copy_function=shutil.copy)
        (tmp / "vendor").mkdir()
        for path in runtime:
            shutil.copy(path, tmp / "vendor" / path.name)
        (tmp / "detector").mkdir()
        write_detector(detector[0], tmp / "detector")  # float16 weights: half the bytes, same detections
        shutil.copy(detector[2], tmp / "detector" / LICENCE)
        write_detector(CLOSE_RANGE_DETECTOR, tmp / "detector")
        shutil.copy(CLOSE_RANGE_DETECTOR.parent / "LICENSE", tmp / "detector" / CLOSE_RANGE_LICENCE)
        shutil.copytree(tfjs_dir, tmp / "model", copy_function=shutil.copy)
        for name in MODEL_PLOTS:
            shutil.copy(model_dir / name, tmp / "model" / name)
        (tmp / "model" / "metadata.json").write_text(json.dumps(metadata, indent=1, sort_keys=True), encoding="utf-8")
        _bundle_runtime(tmp / "vendor" / RUNTIME_BUNDLE, [tmp / "model" / "model.json",
                                                          *sorted((tmp / "detector").glob("*.json"))])
        _write_integrity(tmp, ["model", "detector"])
        _write_service_worker(env, tmp)
        _write_host_headers(tmp)
    return out


def _preloads(model_json, detector_json):
    """What the page gets with fetch(), as site paths: listed in <head> so the browser downloads all
    of it while it still parses the page and its scripts, instead of one file after another."""
    shards = [f"{folder}/{path}" for folder, spec in (("model", model_json), ("detector", detector_json))
              for group in json.loads(spec.read_text(encoding="utf-8"))["weightsManifest"] for path in group["paths"]]
    return ["integrity.json", f"vendor/{PRELOADED_WASM}", "model/model.json", "model/metadata.json",
            "detector/blazeface.json", *shards]


def _write_integrity(site, folders):
    """integrity.json: SHA-256 of every model file, checked by the page before it loads a model."""
    hashes = {path.relative_to(site).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
              for folder in folders for path in sorted((site / folder).iterdir()) if path.is_file()}
    (site / "integrity.json").write_text(json.dumps(hashes, indent=1, sort_keys=True), encoding="utf-8")


def _write_service_worker(env, site):
    """sw.js precaches every file of the site; its cache name is the hash of all their bytes."""
    digest = hashlib.sha256()
    files = []
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        relative = path.relative_to(site).as_posix()
        digest.update(relative.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        files += ["./", relative] if relative == "index.html" else [relative]
    # The WASM builds and the JS fallback are alternatives: the worker precaches the WASM builds this
    # browser runs (it tests for SIMD and for threads as TF.js does) and caches anything else when
    # first fetched.
    optional = {f"vendor/{Path(p).name}" for p in RUNTIME_WASM + RUNTIME_FALLBACK}
    wasm = dict(zip(["plain", "simd", "threaded"], (f"vendor/{Path(p).name}" for p in RUNTIME_WASM)))
    (site / "sw.js").write_text(env.get_template("sw.js.j2").render(
        build_hash=digest.hexdigest()[:16], files_json=json.dumps([f for f in files if f not in optional], indent=2),
        wasm_json=json.dumps(wasm), isolation_json=json.dumps(ISOLATION_HEADERS)), encoding="utf-8")


def _write_host_headers(site):
    """_headers: the cross-origin isolation and caching headers for every path, in the format of the
    hosts that read a site's headers from such a file (Netlify, Cloudflare Pages), so the page runs
    on several threads from a first visit there too, and never mixes two builds' files. Written
    after sw.js, which has no use for it."""
    lines = ["# Headers for hosts that read them from this file (Netlify, Cloudflare Pages): every path",
             "# cross-origin isolated, as `build.py serve` sends it, so the page can run on several threads,",
             "# and revalidated before each use, so a page never mixes the files of two builds.",
             "/*"]
    lines += [f"  {name}: {value}" for name, value in {**ISOLATION_HEADERS, **CACHE_HEADERS}.items()]
    (site / "_headers").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _bundle_runtime(out, model_files):
    """The page's TF.js runtime for these models, written to `out` by web/runtime/bundle.mjs."""
    _run([_node(), RUNTIME_BUNDLER, out, *model_files], "could not bundle the TF.js runtime")


def _bundle_page(js_dir):
    """PAGE_BUNDLE in `js_dir`: PAGE_ENTRY and every module it imports, bundled and minified by esbuild."""
    _node()  # esbuild's launcher is a Node.js script where npm could not put its binary in place
    _run([ESBUILD, js_dir / PAGE_ENTRY, "--bundle", "--format=esm", "--minify", "--log-level=error",
          f"--outfile={js_dir / PAGE_BUNDLE}"], "could not bundle the page's scripts")


def _node():
    node = shutil.which("node")
    if node is None:
        raise FacemoodError("Node.js not found: it bundles the site's scripts (install Node.js and npm)")
    return node


def _run(args, failure):
    """Run a bundler; when it fails, a FacemoodError of `failure` and the bundler's first error line
    (esbuild's "[ERROR] ..."; its last line is only a count of errors), or its last line."""
    done = subprocess.run(list(map(str, args)), capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).strip().splitlines()] or ["no message"]
        errors = [line.split("[ERROR]", 1)[1].strip() for line in lines if "[ERROR]" in line]
        raise FacemoodError(f"{failure}: {errors[0] if errors else lines[-1]}")


def _vendored_files():
    """(runtime files, detector files) from node_modules, or a clear error when npm has not run."""
    runtime = [NODE_MODULES / p for p in RUNTIME_FALLBACK + RUNTIME_WASM]
    detector = [DETECTOR_DIR / p for p in DETECTOR_FILES]
    missing = [str(p) for p in runtime + detector + [BUNDLER_PACKAGE, ESBUILD] if not p.is_file()]
    if missing:
        raise FacemoodError(f"browser runtime not installed ({missing[0]} missing); run `npm ci`")
    return runtime, detector


def training_stages(training):
    """The training runs behind a model, first to last: a resumed run records the one it continued."""
    stages = []
    while training:
        stages.insert(0, training)
        training = training.get("resumed_from")
    return stages


def _kind_names(inference, float_as_page):
    """Row names of the model card's accuracy table: what each measured model did to a face. The
    float figures are the evaluation's, run as the page runs the shipped model, when it matches
    the model (`float_as_page`); otherwise training's, on the crops as they come."""
    flip = bool(inference.get("test_time_flip"))
    shipped_does = ["test-time flipping" + (" of unsure faces" if inference.get("flip_when_unsure") else "")] if flip else []
    if inference.get("class_bias"):
        shipped_does.append("the class bias")
    shipped = "As shipped" + (f" (with {' and '.join(shipped_does)})" if shipped_does else "")
    if float_as_page:
        return {"float": "Float (Keras, run as the page runs the shipped model)", "quantized": shipped}
    skipped = [step for step, used in (("standardizing", inference.get("standardize")),
                                       ("smoothing", inference.get("smoothing")), ("test-time flipping", flip),
                                       ("class bias", inference.get("class_bias"))) if used]
    lacks = ", ".join(skipped[:-1]) + (" or " if len(skipped) > 1 else "") + skipped[-1] if skipped else ""
    return {"float": "Float (Keras, as trained" + (f": no {lacks}" if lacks else "") + ")", "quantized": shipped}


def weakest_classes(per_class, count=2):
    """The `count` classes with the lowest recall, lowest first, as (label, recall): what the model
    card names as recognised least reliably (from the figures, so it holds for any model). A class
    with no image in the split has no recall to rank (its 0 is not one)."""
    ranked = sorted(((label, m) for label, m in per_class.items() if m.get("support", 1) > 0),
                    key=lambda item: item[1]["recall"])
    return [(label, m["recall"]) for label, m in ranked[:count]]


def rarest_class(counts):
    """(label, share) of the class with the fewest training images."""
    label = min(counts, key=counts.get)
    return label, counts[label] / sum(counts.values())


def _matching_report(report_path, metadata):
    """`build.py evaluate`'s figures per split, or None: without a report, or when it evaluated
    another conversion (other shards, or the page told to prepare or score faces otherwise), or,
    for a report that does not say what it evaluated, when its figures as shipped are not the model's."""
    if not report_path.is_file():
        return None
    report = read_json(report_path, "evaluation report")
    splits = report.get("splits", {})
    if "evaluated" in report:
        return (splits or None) if report["evaluated"] == as_the_page_runs_it(metadata) else None
    shipped = metadata.get("metrics", {}).get("quantized", {})
    for split, part in splits.items():
        if split not in shipped or part.get("quantized", {}).get("accuracy") != shipped[split]["accuracy"]:
            return None
    return splits or None


def _deduplicated(report):
    """{split: {accuracy, count, removed}} as shipped without the images that also occur in training."""
    if not report:
        return None
    return {split: {"accuracy": part["quantized_deduplicated"]["accuracy"],
                    "count": part["quantized_deduplicated"]["count"],
                    "removed": part["duplicates_of_training_removed"]} for split, part in report.items()}


def backbone_name(arch):
    """The backbone as a reader should know it: "mobilenet", or, when cut short, a message the page
    words in the reader's language ("mobilenet, 8 blocks")."""
    if not arch.get("blocks"):
        return arch["backbone"]
    return {"code": "backbone_blocks", "params": {"backbone": arch["backbone"], "blocks": arch["blocks"]}}


def _in_english(value, en):
    """A page text parameter as the English page shows it before its script runs."""
    return en[value["code"]].format(**value["params"]) if isinstance(value, dict) else value


def _context(metadata, metrics, runtime, report=None):
    en = json.loads((I18N / "en.json").read_text(encoding="utf-8"))
    inference = metadata.get("inference", {})
    flip = bool(inference.get("test_time_flip"))
    summary = metadata.get("metrics", {})
    shipped = summary.get("quantized") or summary.get("float") or {}
    if report:  # the float model as the page runs the shipped one: level with the shipped figures
        summary = {**summary, "float": {split: {"accuracy": part["float"]["accuracy"], "macro_f1": part["float"]["macro_f1"]}
                                        for split, part in report.items()}}
    detail_kind = "quantized" if "quantized" in metrics else "float"
    detail_split = "test" if "test" in metrics.get(detail_kind, {}) else "val"
    per_class = metrics.get(detail_kind, {}).get(detail_split, {}).get("per_class")
    return {
        "arch": metadata["architecture"], "input": metadata["input"], "crop": metadata["crop"],
        "tfjs": metadata["tfjs"], "kept_float16": kept_float16(metadata["tfjs"]),
        "training": metadata["training"], "data": metadata["training"]["data"],
        "stages": training_stages(metadata["training"]),
        "summary": summary,
        "per_class": per_class,
        "weakest": weakest_classes(per_class) if per_class else [],
        "rarest": rarest_class(metadata["training"]["data"]["counts"]["train"]),
        "per_class_source": f"{detail_kind} model, {'test' if detail_split == 'test' else 'validation'} split",
        # The split train.py plotted the confusion matrix of: test when the data has one.
        "confusion_split": "test" if "test" in metrics.get("float", {}) else "validation",
        "split_names": {"train": "training", "val": "validation", "test": "test"},
        "kind_names": _kind_names(inference, float_as_page=bool(report)),
        "deduplicated": _deduplicated(report),
        "flip": flip,
        "flip_rule": metadata.get("inference", {}).get("flip_when_unsure"),
        "standardize": metadata.get("inference", {}).get("standardize"),
        "smoothing": metadata.get("inference", {}).get("smoothing"),
        "class_bias": metadata.get("inference", {}).get("class_bias"),
        "pct": lambda v: f"{v * 100:.1f} %",
        "en": en,
        "in_english": lambda value: _in_english(value, en),
        "footer": {
            "backbone": backbone_name(metadata["architecture"]), "alpha": metadata["architecture"]["alpha"],
            "data": metadata["training"]["data"]["name"], "bytes": f"{metadata['tfjs']['weight_bytes']:,}",
            # Some tensors may be kept float16 under a uint8 quantization: both kinds named then.
            "quantize": metadata["tfjs"]["quantize"] + (" + float16" if kept_float16(metadata["tfjs"]) else ""),
            "labels": metadata["labels"],  # named in the reader's language
            **{split: f"{shipped[split]['accuracy'] * 100:.1f} %" if shipped.get(split, {}).get("accuracy")
               is not None else "—" for split in ("val", "test")},
        },
        "csp": CSP,
        "labels": metadata["labels"],
        # start-backend.js right after the runtime: the WASM binary compiles while the page's script loads.
        "scripts": [f"vendor/{RUNTIME_BUNDLE}", "assets/js/start-backend.js"],
    }
