"""Render the static site into a folder, atomically, from a converted model folder.

Needs only jinja2 and the npm runtime in node_modules; never TensorFlow, so a fresh clone can
build the site with the shipped model in seconds.
"""
import hashlib
import json
import shutil
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from common.atomic import atomic_dir, read_json
from common.errors import FacemoodError
from common.metadata import load_metadata

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
I18N = Path(__file__).resolve().parent / "i18n"
NODE_MODULES = ROOT / "node_modules" / "@tensorflow"
# The browser runtime: tfjs-core, two backends (WASM first, plain JS as fallback) and the
# graph-model loader. Order matters: each UMD bundle extends the global `tf` of the ones before.
RUNTIME_SCRIPTS = [
    "tfjs-core/dist/tf-core.min.js",
    "tfjs-backend-cpu/dist/tf-backend-cpu.min.js",
    "tfjs-backend-wasm/dist/tf-backend-wasm.min.js",
    "tfjs-converter/dist/tf-converter.min.js",
]
RUNTIME_WASM = [
    "tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
    "tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm",
]
# Face detector: BlazeFace as converted to TF.js by @vladmandic/human (MIT), vendored as is.
DETECTOR_DIR = ROOT / "node_modules" / "@vladmandic" / "human"
DETECTOR_FILES = ["models/blazeface.json", "models/blazeface.bin", "LICENSE"]
PAGES = ["index.html", "model.html"]
# Only this site's own scripts, models and workers; images also from blob:/data: (the person's own
# photos); WebAssembly compiled from our vendored binaries; nothing inline, nothing elsewhere.
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
       "img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self' blob: data:; "
       "style-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'")
MODEL_PLOTS = ["learning_curves.png", "confusion_matrix.png"]


def render_site(model_dir, out):
    """Write the site for the model in `model_dir` to `out` (replaced as a whole). Returns `out`."""
    model_dir, out = Path(model_dir), Path(out)
    metadata = load_metadata(model_dir)
    tfjs_dir = model_dir / "tfjs"
    _check_shards(tfjs_dir, metadata)
    runtime, detector = _vendored_files()
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html.j2"]),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    metrics = read_json(model_dir / "metrics.json", "model metrics")
    context = _context(metadata, metrics, runtime)
    with atomic_dir(out) as tmp:
        for page in PAGES:
            (tmp / page).write_text(env.get_template(page + ".j2").render(**context))
        shutil.copytree(STATIC, tmp / "assets")
        shutil.copytree(I18N, tmp / "i18n")
        (tmp / "vendor").mkdir()
        for path in runtime:
            shutil.copy2(path, tmp / "vendor" / path.name)
        (tmp / "detector").mkdir()
        for path in detector:
            shutil.copy2(path, tmp / "detector" / path.name)
        shutil.copytree(tfjs_dir, tmp / "model")
        for name in MODEL_PLOTS:
            shutil.copy2(model_dir / name, tmp / "model" / name)
        (tmp / "model" / "metadata.json").write_text(json.dumps(metadata, indent=1, sort_keys=True))
        _write_integrity(tmp, ["model", "detector"])
        _write_service_worker(env, tmp)
    return out


def _write_integrity(site, folders):
    """integrity.json: SHA-256 of every model file, checked by the page before it loads a model."""
    hashes = {path.relative_to(site).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
              for folder in folders for path in sorted((site / folder).iterdir()) if path.is_file()}
    (site / "integrity.json").write_text(json.dumps(hashes, indent=1, sort_keys=True))


def _write_service_worker(env, site):
    """sw.js precaches every file of the site; its cache name is the hash of all their bytes."""
    digest = hashlib.sha256()
    files = []
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        relative = path.relative_to(site).as_posix()
        digest.update(relative.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        files += ["./", relative] if relative == "index.html" else [relative]
    # The three WASM builds are alternatives; the browser fetches only one, but any may be needed offline.
    (site / "sw.js").write_text(env.get_template("sw.js.j2").render(
        build_hash=digest.hexdigest()[:16], files_json=json.dumps(files, indent=2)))


def _check_shards(tfjs_dir, metadata):
    """Refuse to publish shards that are missing or differ from what conversion recorded."""
    if not (tfjs_dir / "model.json").is_file() or "tfjs" not in metadata:
        raise FacemoodError(f"{tfjs_dir}: no converted model; run `build.py convert` first")
    for name, expected in metadata["tfjs"]["files"].items():
        path = tfjs_dir / name
        if not path.is_file():
            raise FacemoodError(f"{path}: model file missing; run `build.py convert` again")
        if hashlib.sha256(path.read_bytes()).hexdigest() != expected["sha256"]:
            raise FacemoodError(f"{path}: does not match the SHA-256 recorded at conversion; run `build.py convert` again")


def _vendored_files():
    """(runtime files, detector files) from node_modules, or a clear error when npm has not run."""
    runtime = [NODE_MODULES / p for p in RUNTIME_SCRIPTS + RUNTIME_WASM]
    detector = [DETECTOR_DIR / p for p in DETECTOR_FILES]
    missing = [str(p) for p in runtime + detector if not p.is_file()]
    if missing:
        raise FacemoodError(f"browser runtime not installed ({missing[0]} missing); run `npm ci`")
    return runtime, detector


def _context(metadata, metrics, runtime):
    summary = metadata.get("metrics", {})
    shipped = summary.get("quantized") or summary.get("float") or {}
    detail_kind = "quantized" if "quantized" in metrics else "float"
    detail_split = "test" if "test" in metrics.get(detail_kind, {}) else "val"
    return {
        "arch": metadata["architecture"], "input": metadata["input"], "crop": metadata["crop"],
        "tfjs": metadata["tfjs"], "training": metadata["training"], "data": metadata["training"]["data"],
        "summary": summary,
        "per_class": metrics.get(detail_kind, {}).get(detail_split, {}).get("per_class"),
        "per_class_source": f"{detail_kind} model, {'test' if detail_split == 'test' else 'validation'} split",
        "split_names": {"train": "training", "val": "validation", "test": "test"},
        "kind_names": {"float": "Float (Keras)", "quantized": "As shipped"},
        "pct": lambda v: f"{v * 100:.1f} %",
        "en": json.loads((I18N / "en.json").read_text()),
        "footer": {
            "backbone": metadata["architecture"]["backbone"], "alpha": metadata["architecture"]["alpha"],
            "data": metadata["training"]["data"]["name"], "bytes": f"{metadata['tfjs']['weight_bytes']:,}",
            "quantize": metadata["tfjs"]["quantize"], "labels": ", ".join(metadata["labels"]),
            **{split: f"{shipped[split]['accuracy'] * 100:.1f} %" if shipped.get(split, {}).get("accuracy")
               is not None else "—" for split in ("val", "test")},
        },
        "csp": CSP,
        "labels": metadata["labels"],
        "scripts": [f"vendor/{p.name}" for p in runtime if p.suffix == ".js"],
    }
