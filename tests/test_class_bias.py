"""The class bias `build.py convert --min-recall` fits on the validation split and folds into the
shipped network (convert/class_bias.py)."""
import json
import shutil

import numpy as np
import pytest

from common.errors import FacemoodError
from conftest import SHIPPED_MODEL, run_build
from convert.class_bias import STEP, class_recall, fit_class_bias, shifted_probabilities, with_class_bias


def _scores(seed=0, n=600, under=2):
    """Log-probabilities of a 3-class classifier that seldom predicts class `under`: its logit is
    pulled down by 2.5, so most of its images go to the other classes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3)) + 2.0 * np.eye(3)[labels]
    logits[:, under] -= 2.5
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return log_probs, labels


def test_the_bias_lifts_the_weakest_class_to_the_floor_and_no_further():
    log_probs, labels = _scores()
    before = class_recall(np.exp(log_probs), labels, 3)
    assert before[2] < 0.4 < before.min(initial=1, where=np.arange(3) != 2)
    bias = fit_class_bias([log_probs], labels, 0.4)
    assert bias[2] > 0 and bias[0] == bias[1] == 0
    assert class_recall(shifted_probabilities([log_probs], bias), labels, 3).min() >= 0.4
    # The smallest such shift: one step less misses the floor.
    assert class_recall(shifted_probabilities([log_probs], bias - STEP * np.eye(3)[2]), labels, 3)[2] < 0.4


def test_the_bias_is_fitted_on_the_averaged_passes_the_page_uses():
    """With test-time flipping the page averages two passes' probabilities; the fit scores that."""
    first, labels = _scores(seed=1)
    # The mirror image's pass: the same images' scores, somewhat different.
    second = first + np.random.default_rng(2).normal(0, 0.5, first.shape)
    bias = fit_class_bias([first, second], labels, 0.4)
    averaged = (np.exp(first + bias) / np.exp(first + bias).sum(1, keepdims=True)
                + np.exp(second + bias) / np.exp(second + bias).sum(1, keepdims=True)) / 2
    assert np.allclose(shifted_probabilities([first, second], bias), averaged)
    assert class_recall(averaged, labels, 3).min() >= 0.4


def test_with_a_flip_margin_the_bias_is_fitted_as_the_page_flips_only_unsure_faces():
    """Faces of class 1 whose first pass reads class 0 with room to spare and whose mirror image
    reads class 1: averaging both views finds them, but the page flips only unsure faces, and
    these are not. Fitted with the margin, the bias raises class 1 until enough of them become
    unsure (flipped) or read right, from where the all-views fit left it."""
    log = lambda p: np.log(np.array(p, float))  # noqa: E731
    single = np.vstack([np.tile(log([0.8, 0.1, 0.1]), (10, 1)), np.tile(log([0.7, 0.25, 0.05]), (10, 1)),
                        np.tile(log([0.1, 0.1, 0.8]), (10, 1))])
    mirror = single.copy()
    mirror[10:20] = log([0.05, 0.9, 0.05])
    labels = np.repeat([0, 1, 2], 10)
    everyone = fit_class_bias([single, mirror], labels, 0.5)
    assert everyone.tolist() == [0, 0, 0]  # averaged, every class is read right already
    assert class_recall(shifted_probabilities([single, mirror], everyone, flip_margin=0.2), labels, 3)[1] == 0
    fitted = fit_class_bias([single, mirror], labels, 0.5, start=everyone, flip_margin=0.2)
    assert fitted[1] > 0 and fitted[0] == fitted[2] == 0
    assert class_recall(shifted_probabilities([single, mirror], fitted, flip_margin=0.2), labels, 3).min() >= 0.5
    # Not by reading class 1 from the first pass alone: by bringing those faces under the margin.
    assert fitted[1] < np.log(0.7 / 0.25)
    assert (fit_class_bias([single, mirror], labels, 0.5, start=[0, 0, 0.3], flip_margin=0.2)[2]) == 0.3


def test_a_floor_no_bias_can_reach_is_refused():
    log_probs, labels = _scores()
    with pytest.raises(FacemoodError, match="min-recall 0.99"):
        fit_class_bias([log_probs], labels, 0.99)
    with pytest.raises(FacemoodError, match="min-recall 0.99: [a-z]+ reaches only"):
        fit_class_bias([log_probs], labels, 0.99, ["a", "b", "c"])


def test_the_folded_bias_shifts_the_network_logits_exactly():
    from train.keras_env import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="scores")(inputs))
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    before = model.predict(x, verbose=0)
    bias = np.array([0.0, 0.3, -0.2])
    after = with_class_bias(model, bias).predict(x, verbose=0)
    assert np.allclose(after, shifted_probabilities([np.log(before)], bias), atol=1e-5)


@pytest.mark.slow
def test_convert_records_folds_reports_and_removes_the_bias(tiny_build, tmp_path, monkeypatch):
    """`convert --min-recall R` fits on the validation split's scores as the page computes them
    (one pass per view: the crop and, for a model that flips, its mirror image), records the bias in metadata.json, ships a graph whose scores are the
    unbiased graph's shifted by it, `evaluate` reports the figures without it, and 0 removes it.
    (The fit itself is replaced here by a fixed bias, so the figures are known; the tests above
    cover the fit.)"""
    from convert import export
    from convert.evaluate import evaluate
    from convert.graph_model import GraphModel, page_input
    from train.data import load_dataset
    from train.train import load_trained, predict

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata.setdefault("inference", {})["test_time_flip"] = True  # so the mirror image is a view too
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    ds = load_dataset(tiny_build["data"], seed=metadata["training"]["config"]["seed"])
    x = page_input(ds.val.images[..., None], metadata)
    unbiased = GraphModel(model_dir / "tfjs")(x)
    unbiased_mirror = GraphModel(model_dir / "tfjs")(x[:, :, ::-1])
    seen = {}

    def fixed_fit(log_probs, labels, min_recall, names=None):
        seen.update(views=len(log_probs), shape=log_probs[0].shape, labels=labels, floor=min_recall,
                    probs=np.exp(log_probs[0]), mirror_probs=np.exp(log_probs[-1]), names=names)
        return np.array([0.0, 0.5, -0.25])

    monkeypatch.setattr(export, "fit_class_bias", fixed_fit)
    export.convert(model_dir, data=tiny_build["data"], min_recall=0.3, progress=False)
    assert seen["views"] == 2
    assert seen["shape"] == (len(ds.val), 3) and seen["floor"] == 0.3
    assert seen["names"] == ["frown", "open", "smile"]
    assert np.array_equal(seen["labels"], ds.val.labels)
    floating = load_trained(model_dir)[0]
    # The float network on the page's crops, and on their mirror images.
    assert np.abs(seen["probs"] - predict(floating, x[..., 0])).max() < 1e-5
    assert np.abs(seen["mirror_probs"] - predict(floating, x[:, :, ::-1, 0])).max() < 1e-5
    metadata = json.loads((model_dir / "metadata.json").read_text())
    recorded = metadata["inference"]["class_bias"]
    assert recorded == {"min_recall": 0.3, "fitted_on": "val", "bias": {"frown": 0.0, "open": 0.5, "smile": -0.25}}
    biased = GraphModel(model_dir / "tfjs")(x)
    bias = np.array([0.0, 0.5, -0.25])
    # The same graph with its last bias moved (re-quantized: within a step of its 8-bit range).
    assert np.abs(biased - unbiased).max() > 0.05
    assert np.abs(biased - shifted_probabilities([np.log(unbiased)], bias)).max() < 0.02
    report = evaluate(model_dir, tiny_build["data"], progress=False)
    assert report["class_bias"] == recorded
    without = report["splits"]["val"]["quantized_without_class_bias"]
    flipped = (unbiased + unbiased_mirror) / 2  # as the page scores a model that flips every face
    assert without["accuracy"] == pytest.approx(float((flipped.argmax(1) == ds.val.labels).mean()), abs=1e-4)
    assert "class bias (open +0.50, smile -0.25)" in (model_dir / "report" / "report.md").read_text()
    run_build("convert", "--model-dir", model_dir, "--min-recall", 0, "--quiet")
    assert "class_bias" not in json.loads((model_dir / "metadata.json").read_text())["inference"]
    assert np.abs(GraphModel(model_dir / "tfjs")(x) - unbiased).max() < 0.02


def test_convert_raises_the_bias_where_flipping_only_unsure_faces_needs_more(tiny_build, tmp_path, monkeypatch):
    """With `--test-time-flip unsure`, the bias fitted on every face flipped is checked again as
    the page will score faces (the converted graph, the fitted margin): where it needs more, the
    higher bias is recorded and the graph converted again with it. (The fits are fixed here.)"""
    from convert import export
    from convert.graph_model import GraphModel, page_input
    from train.data import load_dataset

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    ds = load_dataset(tiny_build["data"], seed=metadata["training"]["config"]["seed"])
    x = page_input(ds.val.images[..., None], metadata)
    unbiased = GraphModel(model_dir / "tfjs")(x)
    calls = []

    def fixed_fit(log_probs, labels, min_recall, names=None, start=None, flip_margin=None):
        calls.append({"start": None if start is None else np.round(start, 4).tolist(), "flip_margin": flip_margin})
        return np.array([0.0, 0.5, 0.0]) if start is None else np.asarray(start) + [0.0, 0.0, 0.75]

    monkeypatch.setattr(export, "fit_class_bias", fixed_fit)
    export.convert(model_dir, data=tiny_build["data"], min_recall=0.3, test_time_flip="unsure", progress=False)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    margin = metadata["inference"]["flip_when_unsure"]["margin"]
    assert calls == [{"start": None, "flip_margin": None}, {"start": [0.0, 0.5, 0.0], "flip_margin": margin}]
    assert metadata["inference"]["class_bias"]["bias"] == {"frown": 0.0, "open": 0.5, "smile": 0.75}
    biased = GraphModel(model_dir / "tfjs")(x)
    assert np.abs(biased - shifted_probabilities([np.log(unbiased)], np.array([0.0, 0.5, 0.75]))).max() < 0.02


def test_a_bias_added_to_a_model_that_flips_unsure_faces_is_fitted_as_it_flips(tiny_build, tmp_path, monkeypatch):
    """`convert --min-recall R --data D` on a model already set to flip only unsure faces fits as
    `--test-time-flip unsure` does: the margin again on the biased graph, and the bias checked
    with it (not left fitted as if every face were flipped, beside a margin for the old scores)."""
    from convert import export

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    export.convert(model_dir, data=tiny_build["data"], test_time_flip="unsure", progress=False)
    calls = []

    def fixed_fit(log_probs, labels, min_recall, names=None, start=None, flip_margin=None):
        calls.append({"start": None if start is None else np.round(start, 4).tolist(), "flip_margin": flip_margin})
        return np.array([0.0, 0.5, 0.0]) if start is None else np.asarray(start) + [0.0, 0.0, 0.75]

    monkeypatch.setattr(export, "fit_class_bias", fixed_fit)
    metadata = export.convert(model_dir, data=tiny_build["data"], min_recall=0.3, progress=False)
    margin = metadata["inference"]["flip_when_unsure"]["margin"]
    assert calls == [{"start": None, "flip_margin": None}, {"start": [0.0, 0.5, 0.0], "flip_margin": margin}]
    assert metadata["inference"]["class_bias"]["bias"] == {"frown": 0.0, "open": 0.5, "smile": 0.75}


def test_a_recorded_bias_is_fitted_again_to_what_the_page_now_scores(tiny_build, tmp_path, monkeypatch):
    """`convert --smoothing W --data D` changes the crops the page scores: a recorded bias is fitted
    again on them, with its recorded floor. Without --data it is kept as it was."""
    from convert import export
    from convert.graph_model import page_input
    from train.data import load_dataset
    from train.train import load_trained, predict

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    fits = []

    def fixed_fit(log_probs, labels, min_recall, names=None):
        fits.append({"floor": min_recall, "probs": np.exp(log_probs[0])})
        return np.array([0.0, 0.5, -0.25]) if len(fits) == 1 else np.array([0.0, 0.25, 0.0])

    monkeypatch.setattr(export, "fit_class_bias", fixed_fit)
    export.convert(model_dir, data=tiny_build["data"], min_recall=0.3, progress=False)
    export.convert(model_dir, smoothing=0.2, progress=False)  # no data: nothing to fit on
    assert len(fits) == 1
    metadata = export.convert(model_dir, data=tiny_build["data"], smoothing=0.25, progress=False)
    assert [fit["floor"] for fit in fits] == [0.3, 0.3]
    ds = load_dataset(tiny_build["data"], seed=metadata["training"]["config"]["seed"])
    smoothed = page_input(ds.val.images[..., None], metadata)
    assert np.abs(fits[1]["probs"] - predict(load_trained(model_dir)[0], smoothed[..., 0])).max() < 1e-5
    assert metadata["inference"]["class_bias"]["bias"] == {"frown": 0.0, "open": 0.25, "smile": 0.0}


@pytest.mark.parametrize("args, message", [
    (["--min-recall", "0.4"], "--min-recall needs --data"),
    (["--min-recall", "1.5"], "--min-recall must lie in 0-1"),
])
def test_convert_min_recall_errors_are_one_line(tiny_build, tmp_path, args, message):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    before = (model_dir / "metadata.json").read_bytes()
    result = run_build("convert", "--model-dir", model_dir, *args, check=False)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]  # TensorFlow's start-up log may come before it
    assert last.startswith("error: ") and message in last and "Traceback" not in result.stderr
    assert (model_dir / "metadata.json").read_bytes() == before  # nothing half-written


def test_the_model_card_names_the_shipped_bias(shipped_site):
    """The shipped model carries a class bias: its card says which, and that the shipped figures
    include it; the float ones are run as the page runs the shipped model (its own report)."""
    metadata = json.loads((shipped_site["dist"] / "model" / "metadata.json").read_text())
    raised = {label: v for label, v in metadata["inference"]["class_bias"]["bias"].items() if v}
    card = (shipped_site["dist"] / "model.html").read_text()
    assert "<dt>Class bias</dt>" in card
    for label, value in raised.items():
        assert f"{label} {value:+.2f}" in card
    assert "As shipped (with test-time flipping of unsure faces and the class bias) accuracy" in card
    assert "Float (Keras, run as the page runs the shipped model) accuracy" in card


def test_the_model_card_names_its_weakest_classes_from_the_figures(shipped_site):
    """The card's known limits name the classes with the lowest recall in the shipped model's own
    report, and the rarest training class with its share, not a sentence fixed for one model."""
    dist = shipped_site["dist"]
    metrics = json.loads((SHIPPED_MODEL / "metrics.json").read_text())
    metadata = json.loads((dist / "model" / "metadata.json").read_text())
    per_class = metrics["quantized"]["test"]["per_class"]
    lowest = sorted(per_class, key=lambda label: per_class[label]["recall"])[:2]
    card = (dist / "model.html").read_text()
    expected = ", ".join(f"{label} ({per_class[label]['recall'] * 100:.1f} % recall)" for label in lowest)
    assert f"The classes it recognises least reliably (quantized model, test split): {expected}." in card
    train_counts = metadata["training"]["data"]["counts"]["train"]
    rarest = min(train_counts, key=train_counts.get)
    share = train_counts[rarest] / sum(train_counts.values())
    assert f"{rarest} has {share * 100:.1f} % of the training images" in card


def test_a_class_absent_from_the_split_is_not_named_weakest():
    """A class with no image in the split has a recall of 0 by convention, not a poor one."""
    from web.render import weakest_classes

    per_class = {"angry": {"recall": 0.5, "support": 10}, "disgust": {"recall": 0.0, "support": 0},
                 "fear": {"recall": 0.3, "support": 12}, "happy": {"recall": 0.9, "support": 40}}
    assert weakest_classes(per_class) == [("fear", 0.3), ("angry", 0.5)]
