"""`make recipe` runs the shipped model's whole recipe: FaceRes rebuilt as backbone weights, the
teacher, the 8-block student, the student taught, converted as shipped and reported. Here on a tiny
FER2013-format file, its FER+ votes and a FaceRes of random weights, two steps per training run."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import faces
from conftest import ROOT
from faceres import faceres_weights, write_faceres


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    data = faces.write_fer_csv(root / "fer.csv", rows_per_usage=(24, 8, 8))
    votes = faces.write_ferplus_csv(root / "ferplus.csv", data)
    (root / "faceres").mkdir()
    source = write_faceres(root / "faceres", faceres_weights(np.random.default_rng(0)))
    out = root / "out"

    # A make of its own: not the one running the tests (`make test ARGS=...` would hand it its variables).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}

    def make():
        # -o setup-ml: this interpreter's packages are the ones under test; nothing is installed.
        return subprocess.run(
            ["make", "-o", "setup-ml", "recipe", f"PY={sys.executable}", f"DATA={data}", f"FERPLUS={votes}",
             f"FACERES={source}", f"RECIPE={out}", "RECIPE_ARGS=--epochs 1 --max-steps 2 --quiet", "MIN_RECALL=0"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)

    first = make()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return out, make


def test_the_recipe_makes_a_taught_converted_and_reported_student(recipe):
    out, _ = recipe
    assert sorted(p.name for p in out.iterdir()) == ["faceres_mobilenet_112.h5", "model", "student", "teacher"]
    metadata = json.loads((out / "model" / "metadata.json").read_text())
    assert (metadata["architecture"]["blocks"], metadata["architecture"]["input_size"]) == (8, 96)
    teacher = metadata["training"]["teacher"]
    assert (teacher["name"], teacher["weight"], teacher["architecture"]["input_size"]) == ("teacher", 0.5, 112)
    assert metadata["training"]["config"]["ferplus_weight"] == 0.2
    assert metadata["training"]["resumed_from"]["config"]["ferplus_weight"] == 0.3  # the student's own run first
    # converted as the shipped model is
    assert metadata["tfjs"]["quantize"] == "uint8"
    assert "conv_pw_5" in metadata["tfjs"]["float16_kinds"] and "conv_pw_6" not in metadata["tfjs"]["float16_kinds"]
    assert metadata["crop"]["margin"] == 0.0
    assert metadata["inference"]["smoothing"] == 0.1 and "flip_when_unsure" in metadata["inference"]
    assert (out / "model" / "tfjs" / "model.json").is_file()
    assert (out / "model" / "report" / "report.md").is_file()


def test_a_finished_recipe_runs_nothing_again(recipe):
    _, make = recipe
    again = make()
    assert again.returncode == 0, again.stderr[-3000:]
    assert "build.py" not in again.stdout and "done:" in again.stdout
