"""The site's TF.js runtime bundle (web/runtime/bundle.mjs): built for the models it will run,
smaller than the stock bundles, and a clear error for a model it cannot run. The browser tests
run every page on it, the plain JavaScript fallback included."""
import hashlib
import json
import shutil

import pytest

from common.errors import FacemoodError
from web import render

SHIPPED_MODEL = render.ROOT / "models" / "default"
STOCK_BUNDLES = ["tfjs-core/dist/tf-core.es2017.min.js", "tfjs-backend-wasm/dist/tf-backend-wasm.es2017.min.js",
                 "tfjs-converter/dist/tf-converter.es2017.min.js"]


@pytest.fixture(scope="module")
def shipped_site(tmp_path_factory):
    return render.render_site(SHIPPED_MODEL, tmp_path_factory.mktemp("site") / "dist")


def test_the_bundle_is_a_fraction_of_the_stock_bundles(shipped_site):
    bundle = (shipped_site / "vendor" / render.RUNTIME_BUNDLE).read_bytes()
    stock = sum((render.NODE_MODULES / p).stat().st_size for p in STOCK_BUNDLES)
    assert len(bundle) < 0.5 * stock, (len(bundle), stock)
    assert bundle.startswith(b"/**\n * TensorFlow.js 4.22.0") and b"Apache License" in bundle[:400]
    assert b"var tf=" in bundle[:1000]
    # The multi-threaded build's glue is a file of its own, patched to use every core it counts.
    glue = (shipped_site / "vendor" / "tf-wasm-threads.min.js").read_bytes()
    threads = b"Math.min(navigator.hardwareConcurrency,4)"
    assert threads + b"-1" in glue and b"2*" + threads in glue and threads not in bundle
    assert b"useThreadedGlue" in glue


def test_the_bundle_follows_the_models_ops(tmp_path):
    """A model with one more kind of op gets a bigger bundle: the ops come from its graph."""
    model_json = tmp_path / "model.json"
    spec = json.loads((SHIPPED_MODEL / "tfjs" / "model.json").read_text())
    model_json.write_text(json.dumps(spec))
    small = tmp_path / "small.js"
    render._bundle_runtime(small, [model_json])
    spec["modelTopology"]["node"].append({"name": "extra", "op": "Einsum", "input": [], "attr": {}})
    model_json.write_text(json.dumps(spec))
    bigger = tmp_path / "bigger.js"
    render._bundle_runtime(bigger, [model_json])
    assert bigger.stat().st_size > small.stat().st_size


def test_a_model_with_an_op_tfjs_lacks_is_refused_and_the_old_site_kept(tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model_dir)
    spec_path = model_dir / "tfjs" / "model.json"
    spec = json.loads(spec_path.read_text())
    spec["modelTopology"]["node"].append({"name": "odd", "op": "NoSuchOp", "input": [], "attr": {}})
    spec_path.write_text(json.dumps(spec))
    # The shards' recorded hashes still match; only model.json changed, so record its new hash.
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["tfjs"]["files"]["model.json"]["sha256"] = hashlib.sha256(spec_path.read_bytes()).hexdigest()
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("previous site")
    (dist / "sw.js").write_text("const CACHE = 'facemood-0123456789abcdef';")  # how a site of ours is known
    with pytest.raises(FacemoodError, match="could not bundle the TF.js runtime: TF.js cannot run the graph op"):
        render.render_site(model_dir, dist)
    assert (dist / "index.html").read_text() == "previous site"


def test_without_node_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    with pytest.raises(FacemoodError, match="Node.js not found"):
        render.render_site(SHIPPED_MODEL, tmp_path / "dist")
    assert not (tmp_path / "dist").exists()


def test_a_bundler_failure_says_what_went_wrong(tmp_path):
    """esbuild's message ends with a count of errors; the error itself is what is shown."""
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("")
    model = SHIPPED_MODEL / "tfjs" / "model.json"
    with pytest.raises(FacemoodError, match="could not bundle the TF.js runtime: .*(not a directory|output directory)"):
        render._bundle_runtime(in_the_way / "runtime.js", [model])
    js = tmp_path / "js"
    js.mkdir()
    (js / render.PAGE_ENTRY).write_text("import { gone } from './missing.js';\nconsole.log(gone);\n")
    with pytest.raises(FacemoodError, match="could not bundle the page's scripts: Could not resolve \"./missing.js\""):
        render._bundle_page(js)
