"""bench.peers: face-api's expression net and mini-Xception scored in the browser on FER2013-format crops."""
import json
import re
import subprocess
import sys

import pytest

import faces
from conftest import CHROMIUM, ROOT, under_ci

VLADMANDIC = ROOT / "node_modules" / "@vladmandic"
MODELS = {"faceapi_expression": VLADMANDIC / "face-api/model/face_expression_model-weights_manifest.json",
          "mini_xception": VLADMANDIC / "human/models/emotion.json"}
FER_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _peers(*args, timeout=300):
    # Its own process: Playwright's sync API allows one driver per process, and a session may hold one.
    return subprocess.run([sys.executable, "-m", "bench.peers", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def _shipped_bytes(manifest):
    """The sizes of the .bin files a TF.js manifest names, read here apart from bench.peers."""
    spec = json.loads(manifest.read_text())
    groups = spec["weightsManifest"] if isinstance(spec, dict) else spec
    return sum((manifest.parent / p).stat().st_size for g in groups for p in g["paths"])


@pytest.mark.browser
def test_a_short_run_scores_every_face_with_both_peers(tmp_path):
    if not CHROMIUM.exists():  # as launch_chromium: a failure under CI, never a silent skip there
        (pytest.fail if under_ci() else pytest.skip)(f"{CHROMIUM} not found")
    csv = faces.write_fer_csv(tmp_path / "fer.csv", rows_per_usage=(6, 5, 3))
    out = tmp_path / "out"
    # 4 of PublicTest's 5 faces, all 3 of PrivateTest's, in batches of 3: one full batch and a remainder.
    run = _peers("--data", csv, "--count", 4, "--batch-size", 3, "--out", out)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((out / "peers.json").read_text())
    assert report["command"] == f"python -m bench.peers --data fer.csv --count 4 --batch-size 3 --out {out}"
    assert report["labels"] == FER_LABELS and report["backend"] == "wasm"
    assert re.fullmatch(r"\d+(\.\d+)+", report["chromium"]) and re.fullmatch(r"\d+\.\d+\.\d+", report["tfjs"])
    assert report["date"] and report["seconds"] > 0
    assert set(report["models"]) == set(MODELS)
    for name, model in report["models"].items():
        assert model["weight_bytes"] == _shipped_bytes(MODELS[name]) > 100_000
        assert sum((ROOT / f).stat().st_size for f in model["weight_files"]) == model["weight_bytes"]
        assert re.fullmatch(r"\d+\.\d+\.\d+", model["version"]) and model["input"]
        assert set(model["splits"]) == {"PublicTest", "PrivateTest"}
        for usage, expected in (("PublicTest", 4), ("PrivateTest", 3)):
            s = model["splits"][usage]
            assert s["count"] == expected and 0 <= s["correct"] <= expected
            assert 0 <= s["accuracy"] <= 1 and s["accuracy"] == round(s["correct"] / expected, 4)
            assert 0 <= s["macro_f1"] <= 1
            confusion = s["confusion"]  # rows: the true class; every face predicted once
            assert len(confusion) == 7 and sum(map(sum, confusion)) == expected
            assert sum(confusion[i][i] for i in range(7)) == s["correct"]
    table = (out / "peers.md").read_text()
    assert f"`{report['command']}`" in table and "How each model's input was prepared" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and "%" in line]
    assert len(rows) == 4 and all(f"{report['models'][m]['weight_bytes']:,}" in table for m in MODELS)
    assert run.stdout.strip() == table.strip()  # the table is printed too


def test_the_page_reads_every_label_face_api_gives():
    """Each FER2013 class is read from one of face-api's own expression names (a typo would read undefined)."""
    from bench.peers import PAGE

    source = (VLADMANDIC / "face-api/src/faceExpressionNet/FaceExpressions.ts").read_text()
    faceapi_labels = re.search(r"FACE_EXPRESSION_LABELS = \[([^\]]*)\]", source).group(1)
    as_fer = re.search(r"FACEAPI_AS_FER = \[([^\]]*)\]", PAGE).group(1)
    names = lambda text: re.findall(r"'(\w+)'", text)  # noqa: E731
    assert sorted(names(as_fer)) == sorted(names(faceapi_labels))
    assert all(a.startswith(f[:4]) for a, f in zip(names(as_fer), FER_LABELS))  # angry/angry, disgusted/disgust ...


def test_a_missing_data_file_is_a_one_line_error(tmp_path):
    run = _peers("--data", tmp_path / "nowhere.csv.gz", "--out", tmp_path, timeout=60)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.splitlines() == [f"error: {tmp_path / 'nowhere.csv.gz'}: data path does not exist"]
    assert not list(tmp_path.iterdir())  # nothing written


def test_data_is_required_and_help_shows_the_usage():
    run = _peers(timeout=60)
    assert run.returncode == 2 and "--data" in run.stderr.splitlines()[-1]
    shown = _peers("--help", timeout=60)
    assert shown.returncode == 0 and "--count" in shown.stdout and "python -m bench.peers" in shown.stdout
