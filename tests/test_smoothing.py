"""Crops softened before the network sees them (metadata.json inference.smoothing): the same
filter in Python (convert/graph_model.page_input, which every accuracy figure goes through) and in
the page (model.js)."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SHIPPED_MODEL, run_build
from convert.export import load_evaluation_data
from convert.graph_model import GraphModel, page_input, page_probabilities, smoothed
from test_browser import PARITY_TOLERANCE, png_data_url, probe_images


def test_a_point_spreads_as_the_kernel_and_a_flat_crop_stays_flat():
    w = 0.2
    point = np.zeros((1, 9, 9, 1), np.float32)
    point[0, 4, 4, 0] = 100
    kernel = np.array([w, 1 - 2 * w, w])
    expected = np.zeros((9, 9))
    expected[3:6, 3:6] = 100 * np.outer(kernel, kernel)
    np.testing.assert_allclose(smoothed(point, w)[0, ..., 0], expected, atol=1e-4)
    flat = np.full((2, 48, 48, 1), 77, np.float32)
    np.testing.assert_allclose(smoothed(flat, w), flat, atol=1e-4)


def test_edges_repeat_outwards_so_a_border_keeps_its_level():
    """A bright first column stays as bright as its neighbours let it (zero padding would darken it)."""
    image = np.zeros((1, 6, 6, 1), np.float32)
    image[0, :, 0, 0] = 90
    out = smoothed(image, 0.25)[0, ..., 0]
    np.testing.assert_allclose(out[:, 0], 90 * 0.75, atol=1e-4)  # (w + 1 - 2w) of itself, w of column 1
    np.testing.assert_allclose(out[:, 1], 90 * 0.25, atol=1e-4)
    np.testing.assert_allclose(out[:, 2:], 0, atol=1e-4)


def test_page_input_standardizes_then_smooths_and_only_when_asked():
    rng = np.random.default_rng(3)
    crops = rng.uniform(20, 60, (2, 48, 48, 1)).astype(np.float32)  # dim: standardizing lifts it
    standardize = {"mean": [100.0, 150.0], "std": [40.0, 60.0], "min_std": 1.0}
    both = page_input(crops, {"inference": {"standardize": standardize, "smoothing": 0.15}})
    only_standardized = page_input(crops, {"inference": {"standardize": standardize}})
    np.testing.assert_allclose(both, smoothed(only_standardized, 0.15), atol=1e-3)
    assert np.array_equal(page_input(crops, {"inference": {"smoothing": 0}}), crops)
    assert np.array_equal(page_input(crops, {}), crops)


def test_convert_records_refuses_and_removes_it(tiny_build, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    before = (model_dir / "metadata.json").read_bytes()
    result = run_build("convert", "--model-dir", model_dir, "--smoothing", "0.5", "--quiet", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --smoothing must lie in 0-0.33 (the weight of each neighbour), not 0.5")
    assert (model_dir / "metadata.json").read_bytes() == before  # nothing half-written
    run_build("convert", "--model-dir", model_dir, "--smoothing", "0.2", "--quiet")
    assert json.loads((model_dir / "metadata.json").read_text())["inference"]["smoothing"] == 0.2
    run_build("convert", "--model-dir", model_dir, "--smoothing", "0", "--quiet")
    assert "smoothing" not in json.loads((model_dir / "metadata.json").read_text())["inference"]


@pytest.fixture(scope="module")
def smoothing_site(tmp_path_factory):
    """The shipped network told to smooth with another weight (a page-side setting: only
    metadata.json changes), its site rendered and served. The tiny test model would not do: its
    scores hardly depend on its input."""
    from web.render import render_site
    from web.serve import start_server

    root = tmp_path_factory.mktemp("smoothing")
    model_dir = root / "model"
    shutil.copytree(SHIPPED_MODEL, model_dir, ignore=shutil.ignore_patterns("report"))
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["inference"]["smoothing"] = 0.25
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    dist = render_site(model_dir, root / "dist")
    server, url = start_server(dist)
    yield {"url": url, "model_dir": model_dir}
    server.shutdown()


def test_the_page_smooths_as_python_does(smoothing_site, open_page):
    metadata = json.loads((smoothing_site["model_dir"] / "metadata.json").read_text())
    assert metadata["inference"]["smoothing"] == 0.25
    size = metadata["input"]["size"]
    images = np.stack(probe_images(size))[..., None]
    graph = GraphModel(smoothing_site["model_dir"] / "tfjs")
    expected = page_probabilities(graph, images, metadata)
    unsmoothed = page_probabilities(graph, images, {**metadata, "inference": {
        k: v for k, v in metadata["inference"].items() if k != "smoothing"}})
    # The probes include noise, which smoothing changes most: a page that skipped it would show.
    assert np.abs(expected - unsmoothed).max() > 100 * PARITY_TOLERANCE
    page, log = open_page(smoothing_site["url"])
    results = page.evaluate("urls => Promise.all(urls.map(u => facemood.classifyFace(u)))",
                            [png_data_url(im[..., 0]) for im in images])
    browser = np.array([[r["scores"][label] for label in metadata["labels"]] for r in results])
    difference = np.abs(browser - expected).max()
    assert difference < PARITY_TOLERANCE, f"max |browser - python| = {difference:.2e}"
    assert log.errors == []


def test_the_smoothing_benchmark_measures_the_page_on_the_validation_split(tiny_build, tmp_path):
    # The tiny model, told to flip the faces it is unsure of as the shipped one does.
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata.setdefault("inference", {}).update(test_time_flip=True, flip_when_unsure={"margin": 0.5})
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    command = [sys.executable, "-m", "bench.smoothing", "--data", str(tiny_build["data"]),
               "--model-dir", str(model_dir), "--out", str(tmp_path)]
    result = subprocess.run(command + ["--weights", "0", "0.2"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "smoothing.json").read_text())
    assert set(report["accuracy"]) == {"0.0", "0.2"}
    val = load_evaluation_data(tiny_build["data"], metadata, progress=False).val
    graph = GraphModel(model_dir / "tfjs")
    sharp_flipped = {**metadata, "inference": {**metadata.get("inference", {}), "smoothing": 0, "test_time_flip": True}}
    expected = page_probabilities(graph, val.images[..., None], sharp_flipped)
    assert report["accuracy"]["0.0"]["flipped"] == round(float((expected.argmax(1) == val.labels).mean()), 4)
    sharp_as_page = {**metadata, "inference": {**metadata.get("inference", {}), "smoothing": 0}}
    expected = page_probabilities(graph, val.images[..., None], sharp_as_page)
    assert report["accuracy"]["0.0"]["as_page"] == round(float((expected.argmax(1) == val.labels).mean()), 4)
    table = (tmp_path / "smoothing.md").read_text()
    assert ("| weight w | accuracy, one pass | accuracy, every face flipped | accuracy as the page reads faces "
            "(flipping as the model's rule says) |") in table and "flips only the faces it is unsure of" in table
    written = (tmp_path / "smoothing.json").read_bytes()
    refused = subprocess.run(command + ["--weights", "0.5"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "every --weights value must lie in 0-0.33" in refused.stderr
    assert (tmp_path / "smoothing.json").read_bytes() == written  # a refused run writes nothing
