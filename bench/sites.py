"""The two pages the speed benchmark compares, each written into a folder and served on 127.0.0.1:
facemood's site as `build.py site` renders it, and a face-api harness page (bench/faceapi/) with
face-api's bundle, its tiny face detector + expression net and the TF.js WASM binaries, all copied
from node_modules. Nothing is fetched from the internet."""
import contextlib
import gzip
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from common.errors import FacemoodError

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(__file__).resolve().parent / "faceapi"
FACEAPI = ROOT / "node_modules" / "@vladmandic" / "face-api"
FACEAPI_FILES = ["dist/face-api.esm.js", "LICENSE"]
FACEAPI_MODELS = ["tiny_face_detector_model-weights_manifest.json", "tiny_face_detector_model.bin",
                  "face_expression_model-weights_manifest.json", "face_expression_model.bin"]
WASM_DIR = ROOT / "node_modules" / "@tensorflow" / "tfjs-backend-wasm" / "dist"


@dataclass(frozen=True)
class Contender:
    """One page under test and how to talk to it from Playwright."""
    name: str          # key in the results
    title: str         # column heading
    url: str
    ready: str         # JS expression: a promise that resolves once the page can classify
    classify: str      # JS function of one image source -> {faces: [...]}
    num_tensors: str   # JS expression: live tensors in the page's TF.js engine
    api: str           # the page's global object; defined once its scripts listen for a photo
    classify_only: str = ""  # JS function: the expression model alone on a whole image (no detection)
    threads: str = ""  # JS expression: a promise of the threads it runs on once settled (warm runs wait for it)
    returns: bool = False  # has a service worker that serves a second visit differently (measured too)


def facemood(url):
    return Contender("facemood", "facemood", url, "facemood.ready", "(src) => facemood.classify(src)",
                     "tf.memory().numTensors", "facemood", "(src) => facemood.classifyFace(src)", "facemood.threads",
                     returns=True)


def faceapi(url, backend):
    return Contender(f"faceapi_{backend}", f"face-api {'WASM' if backend == 'wasm' else 'WebGL'}",
                     f"{url}?backend={backend}", "harness.ready", "(src) => harness.classify(src)",
                     "harness.numTensors()", "harness")


def write_faceapi_harness(out):
    """The face-api page and everything it loads, in `out`."""
    out = Path(out)
    missing = [p for p in [FACEAPI / f for f in FACEAPI_FILES] + [FACEAPI / "model" / m for m in FACEAPI_MODELS]
               if not p.is_file()]
    if missing:
        raise FacemoodError(f"face-api is not installed ({missing[0]} missing); run `npm ci`")
    shutil.copytree(HARNESS, out)
    for name in FACEAPI_FILES:
        shutil.copy2(FACEAPI / name, out / Path(name).name)
    (out / "model").mkdir()
    for name in FACEAPI_MODELS:
        shutil.copy2(FACEAPI / "model" / name, out / "model" / name)
    (out / "wasm").mkdir()
    for wasm in WASM_DIR.glob("*.wasm"):
        shutil.copy2(wasm, out / "wasm" / wasm.name)
    return out


@contextlib.contextmanager
def served(folder, **options):
    """Serve `folder` with the project's server (gzip as a static host would); yields the base URL."""
    from web.serve import start_server

    server, url = start_server(folder, **options)
    try:
        _prime_gzip_cache(folder, url)
        yield url
    finally:
        server.shutdown()


def _prime_gzip_cache(folder, url):
    """Ask for every file once, gzip accepted, so no measured run pays for compressing it: a
    production host serves pre-compressed or cached bytes too."""
    for path in Path(folder).rglob("*"):
        if path.is_file():
            request = urllib.request.Request(url + urllib.parse.quote(path.relative_to(folder).as_posix()),
                                             headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request) as response:
                body = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                gzip.decompress(body)  # a broken encoding fails here, not silently in the browser
