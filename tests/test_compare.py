"""`build.py compare`: a tiny real run (two small backbones, a few steps, generated faces), its
table and chart, a failing backbone that does not stop the others, re-runs that skip finished work."""
import json

import pytest

import faces
from conftest import ready_page, run_build
from web.compare_page import comparison_context

NUMERIC = ["parameters", "keras_bytes", "tfjs_weight_bytes", "epochs_run", "images_seen", "train_seconds",
           "val_accuracy", "val_loss", "val_macro_f1", "test_accuracy", "test_macro_f1"]
BROWSER = ["load_ms", "first_inference_ms", "warm_median_ms", "warm_p90_ms"]
SMALL = "mobilenet_v3_small@0.5,mobilenet_v2@0.35"


@pytest.fixture(scope="module")
def tiny_comparison(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    data = faces.write_fer_csv(root / "fer.csv", rows_per_usage=(24, 8, 8))
    args = ["compare", "--data", data, "--backbones", SMALL + ",xception", "--input-size", 48, "--epochs", 1,
            "--budget", 0, "--browser-runs", 1, "--work-dir", root / "work", "--out", root / "out"]
    first = run_build(*args)
    return {"root": root, "args": args, "first": first,
            "results": json.loads((root / "out" / "compare.json").read_text())}


def test_every_column_holds_a_real_measurement(tiny_comparison):
    rows = tiny_comparison["results"]["rows"]
    for spec in SMALL.split(","):
        row = rows[spec]
        for key in NUMERIC:
            assert isinstance(row[key], (int, float)) and row[key] >= 0, (spec, key, row[key])
        for key in ("epochs_run", "images_seen", "train_seconds"):  # it really trained
            assert row[key] > 0, (spec, key, row[key])
        assert row["parameters"] > 100_000 and row["tfjs_weight_bytes"] > 100_000
        assert row["tfjs_weight_bytes"] < row["keras_bytes"]  # uint8 shards are smaller than the float h5
        assert 0 <= row["val_accuracy"] <= 1 and row["val_loss"] > 0
        assert row["weights"] == "none" and "ImageNet weights not usable here" in row["weights_note"]
        for key in BROWSER:
            assert row["browser"][key] > 0, (spec, key)
        assert row["browser"]["warm_p90_ms"] >= row["browser"]["warm_median_ms"]
        assert row["browser"]["backend"] in ("wasm", "cpu")
    # The two models differ, and so do their measured sizes.
    assert rows["mobilenet_v2@0.35"]["parameters"] != rows["mobilenet_v3_small@0.5"]["parameters"]


def test_a_failing_backbone_is_reported_in_its_row_and_the_others_finish(tiny_comparison):
    row = tiny_comparison["results"]["rows"]["xception"]
    assert "at least 71" in row["error"]
    table = (tiny_comparison["root"] / "out" / "compare.md").read_text()
    assert "| xception | failed: FacemoodError: Xception needs an input size of at least 71" in table
    assert "failed: xception" in tiny_comparison["first"].stdout
    assert (tiny_comparison["root"] / "out" / "compare.png").stat().st_size > 10_000


def test_a_rerun_skips_finished_backbones_and_refuses_other_settings(tiny_comparison):
    again = run_build(*tiny_comparison["args"])
    for spec in SMALL.split(","):
        assert f"{spec}: already in" in again.stderr
    assert "mobilenet_v2@0.35: training" not in again.stderr
    assert "[1/1] xception: training" in again.stderr  # the failed one is tried again
    results = json.loads((tiny_comparison["root"] / "out" / "compare.json").read_text())
    assert results["rows"]["mobilenet_v2@0.35"] == tiny_comparison["results"]["rows"]["mobilenet_v2@0.35"]
    changed = list(tiny_comparison["args"])
    changed[changed.index("--epochs") + 1] = 2
    refused = run_build(*changed, check=False)
    assert refused.returncode == 1 and "made with other settings" in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("error: ")
    # Other data under the same name and settings: its rows must not pass for this data's.
    other = tiny_comparison["root"] / "other" / "fer.csv"
    other.parent.mkdir()
    faces.write_fer_csv(other, rows_per_usage=(24, 8, 8), classes=(3, 5, 0))
    moved = list(tiny_comparison["args"])
    moved[moved.index("--data") + 1] = other
    refused = run_build(*moved, check=False)
    assert refused.returncode == 1 and "was made from other data (fer.csv)" in refused.stderr
    assert "training" not in refused.stderr
    assert json.loads((tiny_comparison["root"] / "out" / "compare.json").read_text())["rows"] == results["rows"]


def test_data_without_a_test_split_gets_a_row_without_test_figures(tmp_path, tiny_build):
    """A folder of train/ and val/ only: the row is a result with no test accuracy, not a failure,
    in the table and on the site's page alike."""
    from web.render import render_site

    data = tmp_path / "faces"
    faces.write_class_folders(data / "train", per_class=12)
    faces.write_class_folders(data / "val", per_class=4, first_seed=500)
    run_build("compare", "--data", data, "--backbones", "mobilenet_v3_small@0.5", "--input-size", 48, "--epochs", 1,
              "--budget", 0, "--browser-runs", 1, "--work-dir", tmp_path / "work", "--out", tmp_path / "out")
    row = json.loads((tmp_path / "out" / "compare.json").read_text())["rows"]["mobilenet_v3_small@0.5"]
    assert "error" not in row and row["test_accuracy"] is None and row["val_accuracy"] is not None
    table = (tmp_path / "out" / "compare.md").read_text()
    assert "PrivateTest" not in table and "the data's own held-out images" in table
    dist = render_site(tiny_build["model_dir"], tmp_path / "dist", tmp_path / "out" / "compare.json",
                       comparison_required=True)
    page = (dist / "compare.html").read_text()
    assert "PrivateTest" not in page and "the data's own held-out images" in page


def test_a_comparison_where_every_backbone_failed_exits_as_failed(tmp_path):
    data = faces.write_fer_csv(tmp_path / "fer.csv", rows_per_usage=(24, 8, 8))
    result = run_build("compare", "--data", data, "--backbones", "xception", "--input-size", 48, "--epochs", 1,
                       "--budget", 0, "--work-dir", tmp_path / "work", "--out", tmp_path / "out", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: every backbone failed; the reasons are in {tmp_path / 'out' / 'compare.md'}"
    assert "| xception | failed:" in (tmp_path / "out" / "compare.md").read_text()


def test_bad_backbone_names_fail_before_any_work(tmp_path):
    data = faces.write_fer_csv(tmp_path / "fer.csv")
    for spec, message in [("resnet50", "unknown backbone 'resnet50'"), ("mobilenet@wide", "must be a number"),
                          ("vgg16@0.5", "only MobileNets have a width multiplier")]:
        result = run_build("compare", "--data", data, "--backbones", spec, "--out", tmp_path / "out", check=False)
        assert result.returncode == 1 and message in result.stderr
    assert not (tmp_path / "out").exists()


def test_site_comparison_page_sorts_and_charts(tiny_comparison, browser, tiny_build, tmp_path):
    from web.render import render_site
    from web.serve import start_server

    comparison = tiny_comparison["root"] / "out" / "compare.json"
    dist = render_site(tiny_build["model_dir"], tmp_path / "dist", comparison)
    assert 'href="compare.html"' in (dist / "model.html").read_text()
    server, url = start_server(dist)
    try:
        with ready_page(browser, url + "compare.html", wait_ready=False) as page:
            names = lambda: page.eval_on_selector_all("#comparison tbody th", "e => e.map(x => x.textContent)")  # noqa: E731
            assert sorted(names()) == sorted(SMALL.split(",") + ["xception"])
            assert page.locator("svg .point").count() == 2
            assert page.locator("svg .point title").first.text_content().endswith("MB of shards")
            params = {r: tiny_comparison["results"]["rows"][r]["parameters"] for r in SMALL.split(",")}
            smaller, larger = sorted(params, key=params.get)
            page.click("button[data-key=parameters]")
            assert names() == [smaller, larger, "xception"]  # numbers sort as numbers; the failed row last
            page.click("button[data-key=parameters]")
            assert names() == [larger, smaller, "xception"]
            assert page.get_attribute("th:has(button[data-key=parameters])", "aria-sort") == "descending"
            assert not page.log.errors
    finally:
        server.shutdown()


def test_no_comparison_file_means_no_page(tmp_path):
    assert comparison_context(tmp_path / "missing.json") is None


def test_shipped_site_shows_the_committed_comparison(shipped_site, browser):
    """`make site` renders bench/results/compare.json: every backbone a row, every timed one a point."""
    from web.compare_page import DEFAULT_COMPARISON

    rows = json.loads(DEFAULT_COMPARISON.read_text())["rows"]
    timed = [r for r in rows.values() if "load_ms" in r.get("browser", {})]
    with ready_page(browser, shipped_site["url"] + "compare.html", wait_ready=False) as page:
        shown = page.eval_on_selector_all("#comparison tbody th", "e => e.map(x => x.textContent)")
        assert sorted(shown) == sorted(rows) and len(shown) >= 7
        assert page.locator("svg .point").count() == len(timed)
        assert not page.log.errors


@pytest.mark.parametrize("loads", [[317], [300, 330], [250, 420], [60, 900, 4000]])
def test_the_load_time_axis_always_has_labelled_ticks(loads):
    """One timed backbone, or several with close load times, still gets a readable axis."""
    from web.compare_page import _chart

    rows = [{"backbone": f"b{i}", "sort": {"load_ms": ms, "val_accuracy": 0.5 + i / 100, "tfjs_weight_bytes": 10 ** 6}}
            for i, ms in enumerate(loads)]
    chart = _chart(rows)
    assert len(chart["x_ticks"]) >= 2
    assert all(chart["x0"] <= tick["at"] <= chart["x1"] for tick in chart["x_ticks"])
