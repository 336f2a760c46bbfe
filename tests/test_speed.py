"""What the speed work changed, checked without timing anything (this machine is shared, so speed
thresholds live in bench/results/speed.md, never in tests): gzip and isolation headers from the
server, the float16 detector finding the same faces, and the speed benchmark producing real numbers."""
import gzip
import hashlib
import json
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import CHROMIUM, ROOT, under_ci

DETECTOR = ROOT / "node_modules" / "@vladmandic" / "human" / "models" / "blazeface.json"


def threads_expected():
    """The threads an isolated page settles on here: one per logical core, up to 4 (one core: 1)."""
    cores = os.cpu_count() or 1
    return min(cores, 4) if cores > 1 else 1


def fetch(url, **headers):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def static_site(tmp_path):
    from web.serve import start_server

    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>" + "<p>hello</p>" * 200)
    (tmp_path / "app.js").write_text("console.log('hi');\n" * 500)
    (tmp_path / "tiny.json").write_text("{}")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG" + bytes(4000))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text("sub " * 400)
    servers = []

    def serve(**options):
        server, url = start_server(tmp_path, **options)
        servers.append(server)
        return url

    yield tmp_path, serve
    for server in servers:
        server.shutdown()


def test_compressible_files_are_sent_gzip_when_accepted(static_site):
    root, serve = static_site
    url = serve()
    status, headers, body = fetch(url + "app.js", **{"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in headers["Vary"]
    assert gzip.decompress(body) == (root / "app.js").read_bytes()
    assert int(headers["Content-Length"]) == len(body) < (root / "app.js").stat().st_size
    assert headers["Content-Type"].startswith("text/javascript")
    # Not to a client that does not ask, not for PNGs (compressed already), not for tiny files.
    assert "Content-Encoding" not in fetch(url + "app.js")[1]
    assert "Content-Encoding" not in fetch(url + "photo.png", **{"Accept-Encoding": "gzip"})[1]
    assert "Content-Encoding" not in fetch(url + "tiny.json", **{"Accept-Encoding": "gzip"})[1]
    # The page itself, by its folder URL, and the redirect of a folder without its slash still work.
    status, headers, body = fetch(url, **{"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and gzip.decompress(body) == (root / "index.html").read_bytes()
    assert gzip.decompress(fetch(url + "sub", **{"Accept-Encoding": "gzip"})[2]).startswith(b"sub ")
    # A revalidation gets 304, and a changed file new bytes.
    status, headers, _ = fetch(url + "app.js", **{"Accept-Encoding": "gzip", "If-Modified-Since": headers["Last-Modified"]})
    assert status == 304
    (root / "app.js").write_text("changed();\n" * 300)
    assert gzip.decompress(fetch(url + "app.js", **{"Accept-Encoding": "gzip"})[2]) == b"changed();\n" * 300
    assert fetch(url + "missing.js", **{"Accept-Encoding": "gzip"})[0] == 404


def test_cross_origin_isolation_headers_only_when_asked(static_site):
    _, serve = static_site
    plain = fetch(serve() + "app.js")[1]
    isolated = fetch(serve(isolate=True) + "app.js", **{"Accept-Encoding": "gzip"})[1]
    assert "Cross-Origin-Embedder-Policy" not in plain
    assert isolated["Cross-Origin-Opener-Policy"] == "same-origin"
    assert isolated["Cross-Origin-Embedder-Policy"] == "require-corp"


def test_detector_is_shipped_as_float16_with_the_same_weights(tmp_path):
    from web.detector import write_detector

    assert write_detector(DETECTOR, tmp_path)
    spec = json.loads((tmp_path / "blazeface.json").read_text())
    original = json.loads(DETECTOR.read_text())
    # The same graph, its input opened to any height and width (the trained square kept aside).
    nodes, original_nodes = spec["modelTopology"]["node"], original["modelTopology"]["node"]
    placeholder = original_nodes.index(next(n for n in original_nodes if n["op"] == "Placeholder"))
    assert [d["size"] for d in nodes[placeholder]["attr"]["shape"]["shape"]["dim"]] == ["1", "-1", "-1", "3"]
    assert nodes[:placeholder] + nodes[placeholder + 1:] == original_nodes[:placeholder] + original_nodes[placeholder + 1:]
    assert spec["userDefinedMetadata"]["trained_input_size"] == 256
    shapes = {name: [d["size"] for d in t["tensorShape"]["dim"]]
              for part in ("inputs", "outputs") for name, t in spec["userDefinedMetadata"]["signature"][part].items()}
    assert shapes == {"input:0": ["1", "-1", "-1", "3"], "Identity:0": ["1", "-1", "1"], "Identity_1:0": ["1", "-1", "1"],
                      "Identity_2:0": ["1", "-1", "16"], "Identity_3:0": ["1", "-1", "16"]}
    reshapes = {n["input"][1] for n in nodes if n["op"] == "Reshape"}
    half, full = (tmp_path / "blazeface.bin").read_bytes(), (DETECTOR.parent / "blazeface.bin").read_bytes()
    assert len(half) < 0.55 * len(full)
    offsets = [0, 0]
    for new, old in zip(spec["weightsManifest"][0]["weights"], original["weightsManifest"][0]["weights"]):
        n = math.prod(old["shape"])
        was = np.frombuffer(full, "<f4" if old["dtype"] == "float32" else "<i4", n, offsets[1])
        offsets[1] += 4 * n
        if new.get("quantization", {}).get("dtype") == "float16":
            now = np.frombuffer(half, "<f2", n, offsets[0]).astype(np.float32)
            offsets[0] += 2 * n
        else:
            now = np.frombuffer(half, was.dtype, n, offsets[0])
            offsets[0] += 4 * n
        if new["name"] in reshapes:  # [1, anchors, k] -> [1, -1, k]: as many anchors as the input has cells
            assert was[0] == 1 and was[1] in (512, 384) and list(now) == [1, -1, was[2]], new["name"]
            continue
        assert np.array_equal(now, was), new["name"]
    assert len(reshapes) == 4
    assert offsets == [len(half), len(full)]


# 1.0001 is not a float16; nor is 1e-6, though float16 comes within 1.4e-8 of it (1.3 % off); 2e-8
# lies below float16's smallest step and becomes 0, the one change allowed.
@pytest.mark.parametrize("value, lossless", [(1.0001, False), (1e-6, False), (3e-5, False), (2e-8, True), (0.5, True)])
def test_detector_that_float16_would_change_is_copied_as_is(tmp_path, value, lossless):
    from web.detector import write_detector

    source = tmp_path / "src"
    source.mkdir()
    (source / "m.json").write_text(json.dumps({"weightsManifest": [{"paths": ["m.bin"], "weights": [
        {"name": "w", "shape": [2], "dtype": "float32"}]}]}))
    (source / "m.bin").write_bytes(struct.pack("<2f", 1.0, value))
    out = tmp_path / "out"
    out.mkdir()
    assert write_detector(source / "m.json", out) is lossless
    if lossless:
        assert struct.unpack("<2e", (out / "m.bin").read_bytes()) == (1.0, 0.0 if value < 1e-7 else value)
    else:
        assert (out / "m.bin").read_bytes() == (source / "m.bin").read_bytes()


@pytest.mark.browser
def test_shipped_detector_finds_the_same_faces_as_the_original(shipped_site, browser, tmp_path):
    """The shipped site against a copy whose detector is the original one, same photos: float16
    weights and a photo run at its own proportions (256x192 for 4:3, 192x256 for 3:4) against
    float32 weights and the photo letterboxed into 256x256."""
    from bench.composites import composite_photos
    from web.serve import start_server

    original = tmp_path / "float32"
    shutil.copytree(shipped_site["dist"], original)
    for name in ("blazeface.json", "blazeface.bin"):
        shutil.copy2(DETECTOR.parent / name, original / "detector" / name)
    integrity = json.loads((original / "integrity.json").read_text())
    for name in ("blazeface.json", "blazeface.bin"):
        integrity[f"detector/{name}"] = hashlib.sha256((original / "detector" / name).read_bytes()).hexdigest()
    (original / "integrity.json").write_text(json.dumps(integrity))
    photos = [bytes(data) for _, data in composite_photos()]
    server, url = start_server(original)
    try:
        (found, shapes), (reference, reference_shapes) = [_faces(browser, site, photos)
                                                          for site in (shipped_site["url"], url)]
    finally:
        server.shutdown()
    assert [len(f) for f in found] == [1] * len(photos)
    assert shapes == [[1, 192, 256, 3], [1, 192, 256, 3], [1, 256, 192, 3]]  # 1024x768, 1024x768, 800x1067
    assert reference_shapes == [[1, 256, 256, 3]] * len(photos)
    for ours, theirs in zip(found, reference):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert np.abs(np.array(a["box"]) - np.array(b["box"])).max() <= 2
            assert abs(a["detection"] - b["detection"]) < 0.03 and a["label"] == b["label"]


def _faces(browser, url, photos):
    """Faces found in each photo, and the input shape the detector ran at for each."""
    import base64

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url)
        page.evaluate("facemood.ready.then(() => true)")
        result = page.evaluate("""async (photos) => {
            const shapes = [];
            const execute = tf.GraphModel.prototype.execute;
            tf.GraphModel.prototype.execute = function (inputs, outputs) {
              if (inputs.shape[3] === 3) shapes.push(inputs.shape);  // the detector's RGB input
              return execute.call(this, inputs, outputs);
            };
            const out = [];
            for (const data of photos) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                out.push((await facemood.classify(new Blob([bytes], { type: 'image/jpeg' }))).faces);
            }
            return [out, shapes];
        }""", [base64.b64encode(p).decode() for p in photos])
        return result
    finally:
        context.close()


@pytest.mark.browser
def test_speed_benchmark_smoke_run_gives_real_numbers(tmp_path):
    """One short run of bench.speed against the shipped model and face-api's WASM backend."""
    if not CHROMIUM.exists():  # as launch_chromium: a failure under CI, never a silent skip there
        (pytest.fail if under_ci() else pytest.skip)(f"{CHROMIUM} not found")
    # Its own process: Playwright's sync API allows one driver per process, and the session has one.
    run = subprocess.run([sys.executable, "-m", "bench.speed", "--runs", "1", "--warm-count", "4", "--warm-pages", "2",
                          "--peer-warm-count", "4", "--webcam-seconds", "1", "--only", "facemood",
                          "--only", "faceapi_wasm", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads((tmp_path / "speed.json").read_text())
    for name in ("facemood", "faceapi_wasm"):
        summary = result["summary"][name]
        for key in ("first_result_ms", "ready_ms", "bytes_gzip", "bytes_raw", "longest_task_after_load_ms",
                    "per_image_ms", "webcam_fps", "tensors_after_1", "tensors_after_n"):
            value = summary[key]
            assert isinstance(value, (int, float)) and math.isfinite(value) and value >= 0, (name, key, value)
        assert summary["first_result_ms"] > 0 and summary["bytes_gzip"] > 0 and summary["webcam_fps"] > 0
        assert summary["bytes_raw"] > summary["bytes_gzip"]  # gzip really was served
        assert summary["faces_in_first_photo"] == [1]
        # The photo was given from inside the page, before its result and after navigation began.
        assert 0 < summary["photo_given_ms"] < summary["first_result_ms"]
    # facemood's photo time split: the expression model alone is measured too (how it compares with a
    # whole photo is for the benchmark's real runs: these few runs share the cores with other tests).
    ours = result["summary"]["facemood"]
    table = (tmp_path / "speed.md").read_text()
    assert math.isfinite(ours["classify_only_ms"]) and ours["classify_only_ms"] > 0
    # Served isolated, as `build.py serve` does: a first visit moves to threads too; a second visit,
    # served by the page's service worker, is measured as well.
    assert result["meta"]["isolated"] is True and "every page served with the cross-origin isolation" in table
    assert ours["threads"] == ours["threads_second_visit"] == threads_expected()
    assert math.isfinite(ours["per_image_second_visit_ms"]) and ours["per_image_second_visit_ms"] > 0
    assert result["summary"]["faceapi_wasm"]["per_image_second_visit_ms"] is None
    assert len(ours["per_page_ms"]) == len(ours["per_page_second_visit_ms"]) == 2 and ours["tensors_grew"] is False
    # The shipped model flips only unsure faces: a face that is unsure (mirror image too) is measured apart.
    assert math.isfinite(ours["per_image_unsure_ms"]) and ours["per_image_unsure_ms"] > 0
    assert ours["threads_unsure"] == threads_expected() and len(ours["per_page_unsure_ms"]) == 2
    assert result["summary"]["faceapi_wasm"]["classify_only_ms"] is None
    assert {row["id"] for row in result["targets"]} >= {"first_result", "per_image", "per_image_second_visit",
                                                        "per_image_unsure", "classify_only", "webcam",
                                                        "bytes_gzip", "longest_task", "tensors"}
    assert table.startswith("| metric | facemood | face-api WASM | ratio | target | met? |")
    # Warm pages interleave: the first page of every kind (each page's first and second visit,
    # facemood's unsure faces) before the second of any.
    warm_pages = [line.split("warm page ", 1)[1] for line in run.stdout.splitlines() if "warm page " in line]
    kinds = [page.split(" ", 1)[1] for page in warm_pages]
    assert len(kinds) == 8 and kinds[:4] == kinds[4:] and len(set(kinds)) == 4
    assert [page.split(" ", 1)[0] for page in warm_pages] == ["1/2"] * 4 + ["2/2"] * 4
    assert "2 pages, every kind of page in turn, pooled" in table
    # Every run drawn beside the table.
    with Image.open(tmp_path / "speed.png") as chart:
        assert chart.format == "PNG" and chart.width > 2 * chart.height > 300
    # Rendered again from its runs, measuring nothing: the same table (one run: no interval to add),
    # and the chart drawn again.
    (tmp_path / "speed.png").unlink()
    again = subprocess.run([sys.executable, "-m", "bench.speed", "--render-only", "--out", str(tmp_path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "speed.md").read_text() == table
    assert json.loads((tmp_path / "speed.json").read_text())["summary"] == result["summary"]
    assert (tmp_path / "speed.png").read_bytes().startswith(b"\x89PNG")


def test_the_every_face_unsure_copy_flips_every_face_and_keeps_the_shipped_model(tmp_path):
    """bench.speed's copy for the cost of an unsure face: every face's mirror image runs, whatever
    its scores, and the shipped model's folder is left as it was."""
    from bench.speed import every_face_unsure
    from common.metadata import load_metadata
    from convert.selective_flip import unsure

    shipped = ROOT / "models" / "default"
    before = (shipped / "metadata.json").read_bytes()
    copy = every_face_unsure(shipped, tmp_path / "model")
    assert (shipped / "metadata.json").read_bytes() == before
    sure = np.zeros((3, 7), np.float32)
    sure[:, 3] = 1.0  # as sure as scores get: all on one class
    scores = np.random.default_rng(0).dirichlet(np.ones(7), 100).astype(np.float32)
    assert unsure(np.concatenate([sure, scores]), load_metadata(copy)).all()
    assert not unsure(sure, load_metadata(shipped)).any()  # the shipped margin flips none of these


def test_first_result_ratio_interval_is_a_seeded_paired_bootstrap():
    from bench import report

    # Every pair at the same ratio: nothing to be unsure of.
    assert report.ratio_interval([100, 200, 300], [150, 300, 450]) == pytest.approx((1.5, 1.5))
    ours = [300, 310, 290, 305, 350, 298, 320, 301, 315]
    theirs = [390, 400, 380, 410, 420, 385, 395, 402, 388]
    low, high = report.ratio_interval(ours, theirs)
    assert low < statistics.median(theirs) / statistics.median(ours) < high < low + 0.3
    assert report.ratio_interval(ours, theirs) == (low, high)
    assert report.ratio_interval(ours[:2], theirs[:2]) is None
    cold = {"facemood": [{"first_result_ms": v} for v in ours], "faceapi_wasm": [{"first_result_ms": v} for v in theirs],
            "faceapi_webgl": [{"first_result_ms": 10 * v} for v in theirs]}
    summaries = {name: {"first_result_ms": statistics.median(r["first_result_ms"] for r in runs)} for name, runs in cold.items()}
    assert report.first_result_interval(summaries, cold) == {"peer": "faceapi_wasm", "low": low, "high": high}


def test_render_only_without_a_run_says_so(tmp_path):
    run = subprocess.run([sys.executable, "-m", "bench.speed", "--render-only", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "no benchmark run to render" in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_render_only_sums_up_the_runs_again(tmp_path):
    """--render-only recomputes every figure from the stored runs (the committed run's, with
    facemood's cold runs made twice as slow), not only the table around the old figures."""
    from bench import speed

    stored = json.loads((ROOT / "bench" / "results" / "speed.json").read_text())
    before = stored["summary"]["facemood"]["first_result_ms"]
    for run in stored["cold_runs"]["facemood"]:
        run["first_result_ms"] *= 2
    (tmp_path / "speed.json").write_text(json.dumps(stored))
    assert speed.main(["--render-only", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "speed.json").read_text())
    assert again["summary"]["facemood"]["first_result_ms"] == pytest.approx(2 * before)
    first = next(row for row in again["targets"] if row["id"] == "first_result")
    assert first["ratio"] < next(row for row in stored["targets"] if row["id"] == "first_result")["ratio"] / 1.5
    assert f"| {2 * before:.0f} ms |" in (tmp_path / "speed.md").read_text()


def test_speed_refuses_to_measure_the_peers_alone(capsys):
    from bench import speed

    with pytest.raises(SystemExit) as info:
        speed.main(["--only", "faceapi_wasm"])
    assert info.value.code == 2 and "--only must include facemood" in capsys.readouterr().err


def test_side_by_side_refuses_a_folder_without_a_model_and_reports_medians(tmp_path, capsys):
    from bench import side_by_side

    with pytest.raises(SystemExit):
        side_by_side.parse_args([str(tmp_path), str(tmp_path)])
    assert "not a model folder" in capsys.readouterr().err
    models = [{"first_result_ms": [400, 420, 500], "per_photo_ms": [20, 30, 25], "expression_model_ms": [3, 4, 5]},
              {"first_result_ms": [450, 470, 460], "per_photo_ms": [27, 28, 26], "expression_model_ms": [6, 6, 7]}]
    table = side_by_side._markdown(["A: old", "B: new"], models, "python -m bench.side_by_side old new", "2026-01-01")
    assert "| Time to first result, cold (median of interleaved runs) | 420.0 ms | 460.0 ms |" in table
    assert "| Per photo, one face, warm (median) | 25.0 ms | 27.0 ms |" in table
    assert "3 cold runs per model" in table


@pytest.mark.browser
def test_isolation_benchmark_smoke_run_gives_real_numbers(tmp_path):
    """One short run of bench.isolation: the site served with and without the isolation headers."""
    if not CHROMIUM.exists():
        (pytest.fail if under_ci() else pytest.skip)(f"{CHROMIUM} not found")
    run = subprocess.run([sys.executable, "-m", "bench.isolation", "--runs", "1", "--warm-count", "4",
                          "--warm-pages", "2", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((tmp_path / "isolation.json").read_text())["summary"]
    for way in ("plain", "isolated"):
        for key in ("first_visit_ms", "second_visit_ms", "third_visit_ms", "per_photo_ms"):
            assert math.isfinite(summary[way][key]) and summary[way][key] > 0, (way, key)
        assert 0 <= summary[way]["longest_task_ms"] <= summary[way]["worst_task_ms"]
        assert math.isfinite(summary[way]["worst_task_ms"])
        # The service worker serves later visits isolated whatever the server sends.
        assert summary[way]["later_visits_isolated"] is True
    assert summary["plain"]["threads"] == 1 and summary["isolated"]["threads"] == threads_expected()
    runs = json.loads((tmp_path / "isolation.json").read_text())["runs"]
    assert all(len(runs[way]["warm"]["page_medians"]) == 2 and len(runs[way]["warm"]["ms"]) == 2 * (4 - 3)
               for way in ("plain", "isolated"))  # two pages pooled, each without its first three photos
    assert (tmp_path / "isolation.md").read_text().startswith("| metric | served without the headers (`--no-isolate`) |")


@pytest.mark.browser
def test_networks_benchmark_times_each_network_at_its_shapes(tmp_path):
    """One short run of bench.networks: every network alone, each case timed in every round."""
    if not CHROMIUM.exists():
        (pytest.fail if under_ci() else pytest.skip)(f"{CHROMIUM} not found")
    from bench import networks

    run = subprocess.run([sys.executable, "-m", "bench.networks", "--runs", "3", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "networks.json").read_text())
    assert (report["backend"], report["threads"]) == ("wasm", 1)
    assert [n["name"] for n in report["networks"]] == [c[0] for c in networks.CASES]
    shapes = {n["name"]: n["input_shape"] for n in report["networks"]}
    assert shapes["photo_detector_256x192"] == [1, 192, 256, 3]
    assert shapes["expression_model_2"][0] == 2 and shapes["expression_model_2"][1:] == shapes["expression_model_1"][1:]
    assert all(len(n["ms"]) == 3 and all(0 < ms < math.inf for ms in n["ms"]) for n in report["networks"])
    table = (tmp_path / "networks.md").read_text()
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 1 + len(networks.CASES)  # heading, a row each
    assert "| photo detector, 256×192 (a 4:3 photo, as the page runs it) |" in table and "| 100% |" in table


def test_networks_render_only_gives_the_quartiles_of_the_stored_runs(tmp_path, capsys):
    """--render-only sums the stored runs up again: the middle half is the first to the third
    quartile (as NumPy interpolates them), not the runs at n/4 and 3n/4."""
    from bench import networks

    report = json.loads((ROOT / "bench" / "results" / "networks.json").read_text())
    report["networks"] = [{**row, "what": "an old label", "ms": list(range(1, 9))} for row in report["networks"]]
    (tmp_path / "networks.json").write_text(json.dumps(report))
    assert networks.main(["--render-only", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "networks.md").read_text()
    import numpy as np

    q1, q3 = np.percentile(range(1, 9), [25, 75])  # 2.75 and 6.25; the runs at 8//4 and 24//4 are 3 and 7
    assert f"| 4.5 ms | {q1:.1f}–{q3:.1f} ms | 100% |" in table
    assert "an old label" not in table and networks.CASES[-1][3] in table
    assert json.loads((tmp_path / "networks.json").read_text())["markdown"] == table


def test_networks_render_only_without_a_run_says_so(tmp_path, capsys):
    from bench import networks

    assert networks.main(["--render-only", "--out", str(tmp_path)]) == 1
    assert "no benchmark run to render" in capsys.readouterr().err


def test_networks_benchmark_refuses_a_folder_without_a_model(tmp_path, capsys):
    from bench import networks

    with pytest.raises(SystemExit):
        networks.parse_args(["--model-dir", str(tmp_path)])
    assert "not a model folder" in capsys.readouterr().err
