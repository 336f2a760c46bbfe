"""Crops whose grey level or contrast lies outside the training faces' usual range are brought
into it before the network sees them (convert/graph_model.page_input; model.js does the same in
the page, which the browser parity test checks)."""
import json
import shutil

import numpy as np
import pytest

from conftest import run_build
from convert.graph_model import page_input
from train.data import load_dataset

TARGET = {"mean": [100.0, 150.0], "std": [40.0, 60.0], "min_std": 1.0}
METADATA = {"inference": {"standardize": TARGET}}


def crop(mean, std, seed=0):
    values = np.random.default_rng(seed).uniform(size=(48, 48))  # bounded: nothing clipped below
    values = (values - values.mean()) / values.std()
    return (values * std + mean).astype(np.float32)[None, ..., None]


def stats(batch):
    flat = batch.reshape(len(batch), -1).astype(np.float64)
    return flat.mean(axis=1)[0], flat.std(axis=1)[0]


def test_a_usual_crop_is_left_as_it_is():
    usual = crop(120, 50)
    np.testing.assert_allclose(page_input(usual, METADATA), usual, atol=1e-4)
    assert np.array_equal(page_input(usual, {}), usual)  # models that do not ask for it


@pytest.mark.parametrize("mean, std, expected", [
    (45, 17, (100, 40)),     # dim and flat: both raised to the range's lower edges
    (190, 50, (150, 50)),    # too bright, usual contrast: only shifted
    (125, 70, (125, 60)),    # harsh contrast: only its spread reduced
])
def test_an_unusual_crop_is_brought_to_the_nearest_edge(mean, std, expected):
    out = page_input(crop(mean, std, seed=1), METADATA)
    assert stats(out) == pytest.approx(expected, abs=0.05)
    assert np.corrcoef(out.ravel(), crop(mean, std, seed=1).ravel())[0, 1] > 0.9999  # same picture


def test_a_flat_crop_stays_flat_and_values_stay_in_range():
    flat = np.full((1, 48, 48, 1), 10, np.float32)
    assert np.array_equal(page_input(flat, METADATA), np.full_like(flat, 100))
    bright = crop(240, 55, seed=2)
    out = page_input(bright, METADATA)
    assert out.min() >= 0 and out.max() <= 255


def test_the_recorded_range_is_the_middle_80_percent_of_the_training_faces(tiny_build):
    metadata = json.loads((tiny_build["model_dir"] / "metadata.json").read_text())
    target = metadata["inference"]["standardize"]
    train = load_dataset(tiny_build["data"], seed=metadata["training"]["config"]["seed"]).train.images
    flat = train.reshape(len(train), -1).astype(np.float64)
    for key, values in (("mean", flat.mean(axis=1)), ("std", flat.std(axis=1))):
        low, high = target[key]
        inside = ((values >= low) & (values <= high)).mean()
        assert low < high and 0.75 <= inside <= 0.85


def test_convert_turns_it_off_and_on(tiny_build, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    recorded = json.loads((model_dir / "metadata.json").read_text())["inference"]["standardize"]
    run_build("convert", "--model-dir", model_dir, "--standardize", "off", "--quiet")
    assert "standardize" not in json.loads((model_dir / "metadata.json").read_text())["inference"]
    before = (model_dir / "metadata.json").read_bytes()
    result = run_build("convert", "--model-dir", model_dir, "--standardize", "on", "--quiet", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == ("error: "
                                                      "--standardize on needs --data: this model does not "
                                                           "record its training faces' grey statistics")
    assert (model_dir / "metadata.json").read_bytes() == before  # nothing half-written
    run_build("convert", "--model-dir", model_dir, "--standardize", "on", "--data", tiny_build["data"], "--quiet")
    assert json.loads((model_dir / "metadata.json").read_text())["inference"]["standardize"] == recorded
