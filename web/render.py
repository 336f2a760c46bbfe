"""Render the static site into a folder, atomically, from a converted model folder.

Needs only jinja2 and the npm runtime in node_modules; never TensorFlow, so a fresh clone can
build the site with the shipped model in seconds.
"""
import hashlib
import json
import shutil
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from common.atomic import atomic_dir
from common.errors import FacemoodError
from common.metadata import load_metadata

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
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
PAGES = ["index.html"]


def render_site(model_dir, out):
    """Write the site for the model in `model_dir` to `out` (replaced as a whole). Returns `out`."""
    model_dir, out = Path(model_dir), Path(out)
    metadata = load_metadata(model_dir)
    tfjs_dir = model_dir / "tfjs"
    _check_shards(tfjs_dir, metadata)
    runtime, detector = _vendored_files()
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    context = _context(metadata, runtime)
    with atomic_dir(out) as tmp:
        for page in PAGES:
            (tmp / page).write_text(env.get_template(page + ".j2").render(**context))
        shutil.copytree(STATIC, tmp / "assets")
        (tmp / "vendor").mkdir()
        for path in runtime:
            shutil.copy2(path, tmp / "vendor" / path.name)
        (tmp / "detector").mkdir()
        for path in detector:
            shutil.copy2(path, tmp / "detector" / path.name)
        shutil.copytree(tfjs_dir, tmp / "model")
        (tmp / "model" / "metadata.json").write_text(json.dumps(metadata, indent=1, sort_keys=True))
    return out


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


def _context(metadata, runtime):
    metrics = metadata.get("metrics", {})
    shipped = metrics.get("quantized") or metrics.get("float") or {}
    return {
        "labels": metadata["labels"],
        "scripts": [f"vendor/{p.name}" for p in runtime if p.suffix == ".js"],
        "accuracy": {split: shipped[split]["accuracy"] for split in ("val", "test")
                     if shipped.get(split, {}).get("accuracy") is not None},
        "data_name": metadata["training"]["data"]["name"],
        "backbone": metadata["architecture"]["backbone"],
        "alpha": metadata["architecture"]["alpha"],
        "weight_bytes": metadata["tfjs"]["weight_bytes"],
        "quantize": metadata["tfjs"]["quantize"],
    }
