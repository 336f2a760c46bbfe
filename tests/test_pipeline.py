"""The whole build on generated data: train -> convert -> site, through build.py as a user runs it."""
import json

import numpy as np
import pytest

import faces
from conftest import SHIPPED_MODEL, run_build
from train.data import load_dataset

pytestmark = pytest.mark.slow


def test_all_writes_model_metadata_plots_shards_and_site(tiny_build):
    model_dir, dist = tiny_build["model_dir"], tiny_build["dist"]
    for name in ("model.h5", "metadata.json", "metrics.json", "learning_curves.png", "confusion_matrix.png",
                 "tfjs/model.json"):
        assert (model_dir / name).is_file(), name
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["labels"] == ["frown", "open", "smile"]
    assert metadata["input"] == {**metadata["input"], "size": 48, "channels": 1, "range": [0, 255]}
    assert metadata["training"]["data"]["counts"]["train"] == {"frown": 80, "open": 80, "smile": 80}
    assert metadata["training"]["data"]["kind"] == "image-folder"
    for kind in ("float", "quantized"):
        for split in ("val", "test"):
            assert 0 <= metadata["metrics"][kind][split]["accuracy"] <= 1
    assert metadata["tfjs"]["quantize"] == "uint8"
    assert metadata["tfjs"]["weight_bytes"] == sum(
        p.stat().st_size for p in (model_dir / "tfjs").glob("*.bin"))
    # The closing summary names accuracy, shard bytes and where the site went.
    assert "accuracy" in tiny_build["stdout"] and "bytes (uint8)" in tiny_build["stdout"]
    assert str(dist) in tiny_build["stdout"]
    for name in ("index.html", "model/model.json", "model/metadata.json", "vendor/tf-runtime.min.js",
                 "vendor/tfjs-backend-wasm-simd.wasm", "assets/js/facemood.js", "detector/blazeface-front.json"):
        assert (dist / name).is_file(), name


def test_quantized_accuracy_is_measured_on_the_converted_graph(tiny_build):
    """Re-run the shipped graph in Python on the crops as the page prepares them and recompute the
    recorded quantized test accuracy."""
    from convert.graph_model import GraphModel, page_input

    model_dir = tiny_build["model_dir"]
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["inference"]["standardize"]  # new models standardize crops
    ds = load_dataset(tiny_build["data"], seed=metadata["training"]["config"]["seed"])
    probs = GraphModel(model_dir / "tfjs")(page_input(ds.test.images[..., None], metadata))
    accuracy = float((probs.argmax(1) == ds.test.labels).mean())
    assert accuracy == pytest.approx(metadata["metrics"]["quantized"]["test"]["accuracy"], abs=1e-4)


def test_test_time_flip_is_recorded_and_measured_as_the_page_runs_it(tiny_build, tmp_path):
    """`convert --test-time-flip on`: the page is told, and the quantized figures average each face
    with its mirror image exactly as the page does."""
    import shutil

    from convert.graph_model import GraphModel, page_input

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    (model_dir / "report").mkdir()
    (model_dir / "report" / "report.md").write_text("an earlier evaluation")
    run_build("convert", "--model-dir", model_dir, "--data", tiny_build["data"], "--test-time-flip", "on", "--quiet")
    assert (model_dir / "report" / "report.md").read_text() == "an earlier evaluation"  # sub-folders survive
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["inference"]["test_time_flip"] is True
    ds = load_dataset(tiny_build["data"], seed=metadata["training"]["config"]["seed"])
    x = page_input(ds.test.images[..., None], metadata)
    graph = GraphModel(model_dir / "tfjs")
    flipped = ((graph(x) + graph(x[:, :, ::-1])) / 2).argmax(1)
    assert metadata["metrics"]["quantized"]["test"]["accuracy"] == pytest.approx(
        float((flipped == ds.test.labels).mean()), abs=1e-4)
    run_build("convert", "--model-dir", model_dir, "--test-time-flip", "off", "--quiet")
    assert json.loads((model_dir / "metadata.json").read_text())["inference"]["test_time_flip"] is False


def test_converting_again_keeps_the_recorded_quantization_unless_told(tiny_build, tmp_path):
    """Like every other convert option, --quantize left out keeps what the model was converted with
    (a float16 model re-converted for a new crop margin stays float16)."""
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    quantized = lambda: json.loads((model_dir / "metadata.json").read_text())["tfjs"]  # noqa: E731
    assert quantized()["quantize"] == "uint8"
    run_build("convert", "--model-dir", model_dir, "--quantize", "float16", "--quiet")
    float16_bytes = quantized()["weight_bytes"]
    run_build("convert", "--model-dir", model_dir, "--crop-margin", 0.1, "--quiet")
    assert quantized()["quantize"] == "float16" and quantized()["weight_bytes"] == float16_bytes
    run_build("convert", "--model-dir", model_dir, "--quantize", "uint8", "--quiet")
    assert quantized()["quantize"] == "uint8" and quantized()["weight_bytes"] < float16_bytes


def test_flipping_only_unsure_faces_is_fitted_recorded_and_measured(tiny_build, tmp_path):
    """`convert --test-time-flip unsure`: a margin fitted on the validation split is recorded, the
    quantized figures flip exactly the test faces whose first pass falls below it, and `on` takes
    the margin away again."""
    import shutil

    from convert.graph_model import GraphModel, page_input

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    run_build("convert", "--model-dir", model_dir, "--data", tiny_build["data"], "--test-time-flip", "unsure",
              "--quiet")
    metadata = json.loads((model_dir / "metadata.json").read_text())
    rule = metadata["inference"]["flip_when_unsure"]
    assert metadata["inference"]["test_time_flip"] is True
    assert rule["fitted_on"] == "val" and 0 <= rule["margin"] <= 1 and 0 <= rule["share_flipped"] <= 1
    ds = load_dataset(tiny_build["data"], seed=metadata["training"]["config"]["seed"])
    x = page_input(ds.test.images[..., None], metadata)
    graph = GraphModel(model_dir / "tfjs")
    single, mirror = graph(x), graph(x[:, :, ::-1])
    ordered = np.sort(single, 1)
    flipped = ordered[:, -1] - ordered[:, -2] < rule["margin"]
    predicted = np.where(flipped[:, None], (single + mirror) / 2, single).argmax(1)
    assert metadata["metrics"]["quantized"]["test"]["accuracy"] == pytest.approx(
        float((predicted == ds.test.labels).mean()), abs=1e-4)
    assert "of unsure faces" in _model_card(model_dir, tmp_path)
    run_build("convert", "--model-dir", model_dir, "--test-time-flip", "on", "--quiet")
    assert "flip_when_unsure" not in json.loads((model_dir / "metadata.json").read_text())["inference"]


def _model_card(model_dir, tmp_path):
    """The model card's text for `model_dir`'s site."""
    run_build("site", "--model-dir", model_dir, "--out", tmp_path / "dist")
    return (tmp_path / "dist" / "model.html").read_text()


def test_the_model_card_gives_the_deduplicated_accuracy_of_the_models_own_report(tmp_path):
    """The shipped model's evaluation report: the card shows its accuracy without the images that
    also occur in training; a report of another conversion (other figures as shipped) is not shown."""
    import re
    import shutil

    from conftest import SHIPPED_MODEL

    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model_dir)
    report = json.loads((model_dir / "report" / "report.json").read_text())
    test = report["splits"]["test"]
    card = _model_card(model_dir, tmp_path)
    row = re.search(r"without the images that also occur in training, accuracy</th><td>([^<]+)</td><td>([^<]+)</td>", card)
    assert row and row.group(2) == f"{test['quantized_deduplicated']['accuracy'] * 100:.1f} %"
    assert f"{test['duplicates_of_training_removed']:,} test images also occur" in card
    # The float row is the report's too: the float model run as the page runs the shipped one.
    row = re.search(r"Float \(Keras, run as the page runs the shipped model\) accuracy</th><td>([^<]+)</td><td>([^<]+)</td>", card)
    assert row and row.group(2) == f"{test['float']['accuracy'] * 100:.1f} %"
    # A report from before reports said what they evaluated: its figures as shipped must be the model's.
    del report["evaluated"]
    test["quantized"]["accuracy"] += 0.01  # as if evaluated before the model was converted again
    (model_dir / "report" / "report.json").write_text(json.dumps(report))
    card = _model_card(model_dir, tmp_path)
    assert "also occur in training" not in card
    # Then the float figures are training's, on crops as they come, and the row says what they lack.
    metadata = json.loads((model_dir / "metadata.json").read_text())
    row = re.search(r"Float \(Keras, as trained: no standardizing, smoothing, test-time flipping or class bias\) "
                    r"accuracy</th><td>([^<]+)</td><td>([^<]+)</td>", card)
    assert row and row.group(2) == f"{metadata['metrics']['float']['test']['accuracy'] * 100:.1f} %"


def test_a_report_of_another_conversion_is_not_shown_though_its_figures_match(tmp_path):
    """A report says what it evaluated (the shards and how the page prepares and scores faces):
    converted again with other smoothing, the model's figures as shipped may come out the same,
    and the report must still not pass for this conversion's."""
    import shutil

    from common.metadata import as_the_page_runs_it
    from conftest import SHIPPED_MODEL

    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    report = json.loads((model_dir / "report" / "report.json").read_text())
    report["evaluated"] = as_the_page_runs_it(metadata)
    (model_dir / "report" / "report.json").write_text(json.dumps(report))
    assert "also occur in training" in _model_card(model_dir, tmp_path)
    metadata["inference"]["smoothing"] = 0.2  # the figures as shipped left as they were
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    assert "also occur in training" not in _model_card(model_dir, tmp_path)


def test_the_model_cards_per_class_table_follows_the_label_order(tmp_path):
    import re
    import shutil

    from conftest import SHIPPED_MODEL

    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model_dir)
    labels = json.loads((model_dir / "metadata.json").read_text())["labels"]
    card = _model_card(model_dir, tmp_path)
    table = card[card.index("<h3>Per class"):]
    table = table[:table.index("</table>")]
    assert re.findall(r"<tr><th>([^<]+)</th><td>", table) == labels


def test_the_model_card_names_the_first_runs_weights_and_each_runs_teacher(tiny_build, tmp_path):
    """A model resumed from one that started from a weights file, taught by two models at once."""
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    first = json.loads(json.dumps(metadata["training"]))
    first["config"]["weights"] = "runs/faces.h5"
    metadata["training"]["config"]["weights"] = "none"
    metadata["training"]["resumed_from"] = first
    member = {"name": "t1", "architecture": metadata["architecture"], "metrics": None}
    metadata["training"]["teacher"] = {"name": "t1 + t2", "members": [member, {**member, "name": "t2"}],
                                       "weight": 0.5, "temperature": 3.0}
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    card = _model_card(model_dir, tmp_path)
    assert "started from the weights file runs/faces.h5" in card and "from scratch" not in card
    assert "taught by the mean of t1 and t2, whose prediction makes 50 % of each target, at temperature 3.0" in card


def test_flipping_unsure_faces_needs_data(tiny_build, tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    before = (model_dir / "metadata.json").read_bytes()
    result = run_build("convert", "--model-dir", model_dir, "--test-time-flip", "unsure", check=False)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == "error: --test-time-flip unsure needs --data: the margin is fitted on its validation split"
    assert "Traceback" not in result.stderr
    assert (model_dir / "metadata.json").read_bytes() == before


def test_unquantized_graph_matches_keras_closely(tiny_build, tmp_path):
    """With --quantize none the converted graph computes what Keras computes (BN folding aside)."""
    import shutil

    from convert.graph_model import GraphModel
    from train.train import load_trained

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    run_build("convert", "--model-dir", model_dir, "--quantize", "none", "--quiet")
    model, _ = load_trained(model_dir)
    images = np.stack([np.asarray(faces.face(m, seed=s)) for m in faces.MOUTHS for s in range(4)])
    x = images[..., None].astype(np.float32)
    keras_probs = model.predict(x, verbose=0)
    graph_probs = GraphModel(model_dir / "tfjs")(x)
    assert np.abs(keras_probs - graph_probs).max() < 1e-4


def test_the_page_gets_the_grey_face_straight_into_the_first_convolution(tiny_build):
    """The shipped graph has no grey-to-RGB concatenation; its first convolution takes one channel,
    and under uint8 that folded kernel alone stays float16."""
    spec = json.loads((tiny_build["model_dir"] / "tfjs" / "model.json").read_text())
    assert not [n for n in spec["modelTopology"]["node"] if n["op"] == "ConcatV2"]
    weights = spec["weightsManifest"][0]["weights"]
    kernels = [w for w in weights if len(w["shape"]) == 4]
    stem = [w for w in kernels if w["shape"][2] == 1]
    assert len(stem) == 1 and stem[0]["shape"][:3] == [3, 3, 1]
    assert stem[0]["quantization"]["dtype"] == "float16"
    assert all(w["quantization"]["dtype"] == "uint8" for w in kernels if w is not stem[0])


def test_the_graph_signature_names_the_face_and_its_scores(tiny_build):
    """model.json's signature is keyed by the network's input and output layers, as a SavedModel's
    is, for anyone who runs the shards with their own TF.js code."""
    signature = json.loads((tiny_build["model_dir"] / "tfjs" / "model.json").read_text())["signature"]
    assert list(signature["inputs"]) == ["face"] and signature["inputs"]["face"]["name"] == "face:0"
    assert list(signature["outputs"]) == ["scores"]
    assert signature["inputs"]["face"]["tensorShape"]["dim"][1:] == [{"size": "48"}, {"size": "48"}, {"size": "1"}]


def test_the_shipped_graph_pads_inside_its_convolutions(tiny_build):
    """convert/lean_graph.py ran on the pipeline's graph: MobileNetV2's hand-made pads before its
    strided convolutions became the convolutions' own padding (tests/test_lean_graph.py checks
    the outputs)."""
    from convert.graph_model import attr_bytes

    spec = json.loads((tiny_build["model_dir"] / "tfjs" / "model.json").read_text())
    metadata = json.loads((tiny_build["model_dir"] / "metadata.json").read_text())
    nodes = spec["modelTopology"]["node"]
    assert not [n for n in nodes if n["op"] == "Pad"]
    explicit = [n for n in nodes if attr_bytes(n.get("attr", {}), "padding") == b"EXPLICIT"]
    assert len(explicit) == metadata["tfjs"]["ops_removed"] > 0

def test_convert_refuses_other_data(tiny_build, tmp_path):
    other = faces.write_class_folders(tmp_path / "other", per_class=9)
    result = run_build("convert", "--model-dir", tiny_build["model_dir"], "--data", other, check=False)
    assert result.returncode == 1
    assert "not the data this model was trained on" in result.stderr
    assert "Traceback" not in result.stderr


def test_convert_without_data_drops_the_old_shards_figures(tiny_build, tmp_path):
    """Without --data the new shards are not measured: no figure of the old ones may pass for theirs."""
    import shutil

    from convert.export import convert

    model_dir = shutil.copytree(tiny_build["model_dir"], tmp_path / "model")
    assert {"quantized", "float_vs_quantized"} <= set(json.loads((model_dir / "metrics.json").read_text()))
    convert(model_dir, quantize="float16", progress=False)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert "quantized" not in metrics and "float_vs_quantized" not in metrics and "float" in metrics
    assert "quantized" not in metadata["metrics"] and metadata["tfjs"]["quantize"] == "float16"


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "/no/such/data"], "data path does not exist"),
    (["site", "--model-dir", "/no/such/model"], "metadata.json: model metadata not found"),
    (["convert", "--model-dir", "/no/such/model"], "metadata.json: model metadata not found"),
    (["train", "--data", "{tmp}", "--backbone", "resnet"], "need at least 2 class folders"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    result = run_build(*[a.format(tmp=tmp_path) for a in args], check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in result.stderr


def test_every_command_has_help():
    """Each option's default is given once: not after help that states it, never as None or empty."""
    import re

    for command in ("train", "face-backbone", "convert", "evaluate", "site", "all", "serve", "compare"):
        result = run_build(command, "--help")
        assert "usage: build.py " + command in result.stdout
        for option in re.split(r"\n  (?=-)", result.stdout):
            text = " ".join(option.split())
            assert "(default: None)" not in text and "(default: )" not in text, text
            if "(default: " in text:  # then the help itself says nothing of a default
                assert len(re.findall(r"(?<![/\w])default(?![/\w])", text)) == 1, text


def test_site_render_failure_leaves_previous_site(tiny_build, tmp_path):
    from common.errors import FacemoodError
    from web.render import render_site

    dist = render_site(tiny_build["model_dir"], tmp_path / "dist")
    before = sorted(p.relative_to(dist) for p in dist.rglob("*"))
    broken = tmp_path / "broken"
    import shutil
    shutil.copytree(tiny_build["model_dir"], broken)
    shard = next((broken / "tfjs").glob("*.bin"))
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(FacemoodError, match="does not match the SHA-256"):
        render_site(broken, dist)
    assert sorted(p.relative_to(dist) for p in dist.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dist")]


def test_evaluate_writes_a_report_with_deduplicated_accuracy(tiny_build, tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    data = tmp_path / "data"
    shutil.copytree(tiny_build["data"], data)
    result = run_build("evaluate", "--data", data, "--model-dir", model_dir, "--quiet")
    report = json.loads((model_dir / "report" / "report.json").read_text())
    test = report["splits"]["test"]
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert test["quantized"]["accuracy"] == metadata["metrics"]["quantized"]["test"]["accuracy"]
    assert report["evaluated"] == {"files": metadata["tfjs"]["files"], "inference": metadata["inference"]}
    # The generated faces are all distinct, so nothing is removed as a duplicate of training.
    assert test["duplicates_of_training_removed"] == 0
    assert test["quantized_deduplicated"]["count"] == test["quantized"]["count"]
    assert (model_dir / "report" / "confusion_matrix.png").stat().st_size > 1000
    assert "without training duplicates" in result.stdout and "test-time flipping" in result.stdout
    # Flip averaging: the mean of the shipped graph on each test face, prepared as the page prepares
    # it, and on its mirror image.
    from convert.graph_model import GraphModel, page_input
    from train.data import load_dataset

    part = load_dataset(data, image_size=48, seed=metadata["training"]["config"]["seed"]).test
    x = page_input(part.images[..., None].astype(np.float32), metadata)
    graph = GraphModel(model_dir / "tfjs")
    predicted = ((graph(x) + graph(x[:, :, ::-1])) / 2).argmax(1)
    assert test["quantized_flip_averaged"]["accuracy"] == pytest.approx((predicted == part.labels).mean(), abs=1e-4)


def test_evaluate_removes_test_images_seen_in_training(tiny_build, tmp_path):
    import shutil

    from convert.evaluate import evaluate

    # Explicit train/val/test folders, where one test image is a byte-for-byte copy of a training one.
    data = tmp_path / "data"
    for split, per_class, first_seed in (("train", 8, 0), ("val", 2, 100), ("test", 2, 200)):
        faces.write_class_folders(data / split, per_class=per_class, first_seed=first_seed)
    shutil.copy(data / "train" / "smile" / "003.png", data / "test" / "smile" / "copy.png")
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["training"]["data"]["sha256"] = load_dataset(data).sha256  # as if trained on it
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    report = evaluate(model_dir, data, progress=False)
    test = report["splits"]["test"]
    assert test["duplicates_of_training_removed"] == 1
    assert test["quantized_deduplicated"]["count"] == test["quantized"]["count"] - 1 == 6
    assert report["splits"]["val"]["duplicates_of_training_removed"] == 0


def test_a_mobilenet_cut_after_its_first_blocks_goes_through_the_whole_build(synthetic_folder, tmp_path):
    """`--blocks`: training records the cut, the grey stem folds into it, the uint8 graph computes what
    the trained network computes, and the site names it."""
    from convert.graph_model import GraphModel
    from train.train import load_trained

    model_dir, dist = tmp_path / "model", tmp_path / "dist"
    run_build("all", "--data", synthetic_folder, "--model-dir", model_dir, "--out", dist, "--backbone", "mobilenet",
              "--alpha", 0.25, "--blocks", 4, "--epochs", 1, "--max-steps", 2, "--batch-size", 16,
              "--input-size", 48)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["architecture"]["blocks"] == 4
    spec = json.loads((model_dir / "tfjs" / "model.json").read_text())
    kernels = [w for w in spec["weightsManifest"][0]["weights"] if len(w["shape"]) == 4]
    assert not [n for n in spec["modelTopology"]["node"] if n["op"] == "ConcatV2"]
    # Block 4 (strided) is the last kept: its pointwise kernel at width 0.25 maps 32 to 64 channels.
    assert max(w["shape"][3] for w in kernels) == 64
    model, _ = load_trained(model_dir)
    images = np.stack([np.asarray(faces.face(m, seed=s)) for m in faces.MOUTHS for s in range(3)])
    x = images[..., None].astype(np.float32)
    assert np.abs(model.predict(x, verbose=0) - GraphModel(model_dir / "tfjs")(x)).max() < 0.05
    assert "its first 4 blocks" in (dist / "model.html").read_text()
    assert "mobilenet, 4 blocks" in (dist / "index.html").read_text()


def dtypes_by_kind(model_dir):
    """The quantization dtypes of depthwise kernels, biases and pointwise kernels, the first
    convolution (always float16) left out."""
    weights = json.loads((model_dir / "tfjs" / "model.json").read_text())["weightsManifest"][0]["weights"]
    stem = next(w["name"] for w in weights if len(w["shape"]) == 4 and w["shape"][2] == 1).rsplit("/", 1)[0]
    kinds = {}
    for w in weights:
        if w["name"].startswith(stem + "/"):
            continue
        kind = ("depthwise" if w["name"].endswith("/depthwise_weights") else
                "bias" if w["name"].endswith(("_bn_offset", "/BiasAdd/ReadVariableOp")) else
                "pointwise" if w["name"].endswith("Conv2D_weights") and w["shape"][:2] == [1, 1] else None)
        if kind:
            kinds.setdefault(kind, set()).add(w.get("quantization", {}).get("dtype"))
    return kinds


def test_keep_float16_keeps_depthwise_kernels_and_biases_and_is_remembered(tiny_build, tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    assert dtypes_by_kind(model_dir) == {"depthwise": {"uint8"}, "bias": {"uint8"}, "pointwise": {"uint8"}}
    run_build("convert", "--model-dir", model_dir, "--keep-float16", "depthwise,bias", "--quiet")
    kept = {"depthwise": {"float16"}, "bias": {"float16"}, "pointwise": {"uint8"}}
    assert dtypes_by_kind(model_dir) == kept
    assert json.loads((model_dir / "metadata.json").read_text())["tfjs"]["float16_kinds"] == ["bias", "depthwise"]
    run_build("convert", "--model-dir", model_dir, "--quiet")  # not given: kept
    assert dtypes_by_kind(model_dir) == kept
    # Through a conversion that quantizes nothing, the choice is still kept for the next one.
    run_build("convert", "--model-dir", model_dir, "--quantize", "none", "--quiet")
    assert "kept float16" not in _model_card(model_dir, tmp_path / "unquantized")
    run_build("convert", "--model-dir", model_dir, "--quantize", "uint8", "--quiet")
    assert dtypes_by_kind(model_dir) == kept
    assert "uint8 weights (bias, depthwise kept float16)" in _model_card(model_dir, tmp_path / "quantized")
    # A layer by name: tiny_build's MobileNetV2 has a pointwise "expand" convolution in block 1.
    run_build("convert", "--model-dir", model_dir, "--keep-float16", "block_1_expand", "--quiet")
    spec = json.loads((model_dir / "tfjs" / "model.json").read_text())
    dtypes = {w["name"]: w.get("quantization", {}).get("dtype") for w in spec["weightsManifest"][0]["weights"]}
    assert {d for n, d in dtypes.items() if "/block_1_expand/" in n} == {"float16"}
    assert dtypes_by_kind(model_dir)["depthwise"] == {"uint8"}
    run_build("convert", "--model-dir", model_dir, "--keep-float16", "none", "--quiet")
    assert "float16_kinds" not in json.loads((model_dir / "metadata.json").read_text())["tfjs"]
    assert dtypes_by_kind(model_dir) == {"depthwise": {"uint8"}, "bias": {"uint8"}, "pointwise": {"uint8"}}
    result = run_build("convert", "--model-dir", model_dir, "--keep-float16", "depth", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == ("error: --keep-float16 takes depthwise, bias or the "
                                                      "network's layer names (comma-separated), or none; depth "
                                                      "is neither")
    assert dtypes_by_kind(model_dir)["depthwise"] == {"uint8"}  # the refused conversion changed nothing


def test_convert_warns_when_quantization_changes_answers(capsys):
    from convert.export import _warn_if_quantization_hurts

    _warn_if_quantization_hurts("uint8", {"val": {"top1_agreement": 0.99}}, [])
    assert capsys.readouterr().err == ""
    _warn_if_quantization_hurts("uint8", {"val": {"top1_agreement": 0.61}}, [])
    err = capsys.readouterr().err
    assert "agrees with the float network on only 61.0% of validation faces" in err
    assert "--keep-float16 depthwise,bias" in err
    _warn_if_quantization_hurts("uint8", {"val": {"top1_agreement": 0.61}}, ["bias", "depthwise"])
    assert "--keep-float16" not in capsys.readouterr().err


def test_the_model_card_names_the_split_its_confusion_matrix_shows(tiny_build, tmp_path):
    """train.py plots the test split's confusion matrix, or the validation split's for data without
    a test split; the picture's description says which."""
    import shutil

    assert 'alt="Confusion matrix of the float model on the test split"' in _model_card(tiny_build["model_dir"],
                                                                                         tmp_path / "a")
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    for kind in ("float", "quantized"):
        metrics.get(kind, {}).pop("test", None)
    (model_dir / "metrics.json").write_text(json.dumps(metrics))
    assert 'alt="Confusion matrix of the float model on the validation split"' in _model_card(model_dir, tmp_path / "b")


def test_the_build_summary_says_what_each_accuracy_measures(capsys):
    """The float and shipped figures differ in more than quantization (standardizing, smoothing,
    flipping, the class bias): the summary names each for what it is, and the float16 weights a
    quantized model keeps."""
    import time

    import build
    from common.metadata import weights_kind

    metadata = json.loads((SHIPPED_MODEL / "metadata.json").read_text())
    build._summary("converted", metadata, SHIPPED_MODEL, time.time())
    out = capsys.readouterr().out
    assert "  trained   test accuracy" in out and "  shipped   test accuracy" in out
    assert "(trained: the float network on crops as they come; shipped: the converted model as the page runs it)" in out
    assert f"({weights_kind(metadata['tfjs'])})" in out and "kept float16" in out
    assert weights_kind({"quantize": "float16", "float16_kinds": ["depthwise"]}) == "float16"
    assert weights_kind({"quantize": "uint8", "float16_kinds": ["depthwise", "bias"]}) == "uint8, depthwise, bias kept float16"
