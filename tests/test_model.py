"""The classifier: shapes, backbones, and the ImageNet weight path through Keras' own cache."""
import numpy as np
import pytest

from common.errors import FacemoodError
from train.keras_env import keras
from train.metrics import classification_report
from train.model import build_model


@pytest.mark.parametrize("backbone, alpha", [("mobilenet", 0.25), ("mobilenet_v2", 0.35),
                                             ("mobilenet_v3_small", 0.75)])
def test_backbones_map_grey_crops_to_probabilities(backbone, alpha):
    model = build_model(4, image_size=48, input_size=64, backbone=backbone, alpha=alpha)
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 4)
    probs = model.predict(np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 1)), verbose=0)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("backbone, alpha, blocks", [("mobilenet_v2", 0.35, 0), ("mobilenet_v3_small", 0.75, 0),
                                                     ("mobilenet", 0.25, 4)])
def test_grey_stem_fold_computes_what_the_three_channel_model_computes(backbone, alpha, blocks):
    from convert.grey_stem import with_grey_stem

    model = build_model(4, image_size=48, input_size=64, backbone=backbone, alpha=alpha, blocks=blocks)
    # Trained-looking weights: a first convolution whose three input channels differ.
    rng = np.random.default_rng(1)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()])
    metadata = {"input": {"size": 48}, "architecture": {"backbone": backbone, "alpha": alpha, "input_size": 64,
                                                        "blocks": blocks}}
    folded, stem = with_grey_stem(model, metadata)
    assert "grey_to_rgb" not in {layer.name for layer in folded.layers}
    assert stem.split("/")[1] in {"Conv1", "Conv", "conv1"}
    faces = rng.uniform(0, 255, (6, 48, 48, 1)).astype(np.float32)
    assert np.abs(model.predict(faces, verbose=0) - folded.predict(faces, verbose=0)).max() < 1e-5


def test_blocks_keep_the_first_blocks_of_a_mobilenet_and_their_weights(tmp_path):
    whole = keras.applications.MobileNet(input_shape=(64, 64, 3), alpha=0.5, include_top=False, weights=None)
    path = tmp_path / "backbone.h5"
    whole.save_weights(path)
    model = build_model(3, image_size=48, input_size=64, backbone="mobilenet", alpha=0.5, weights=str(path),
                        blocks=8)
    backbone = model.get_layer("mobilenet_0.50_64_blocks_8")
    # Block 8 is the second of the 512-channel (at width 0.5: 256) blocks; nothing after it is kept.
    assert backbone.output_shape == (None, 4, 4, 256)
    assert "conv_pw_9" not in {layer.name for layer in backbone.layers}
    assert np.array_equal(backbone.get_layer("conv_pw_8").get_weights()[0],
                          whole.get_layer("conv_pw_8").get_weights()[0])
    assert model.count_params() < build_model(3, input_size=64, backbone="mobilenet", alpha=0.5).count_params() / 2
    for backbone_name, blocks in (("mobilenet_v2", 8), ("mobilenet", 14), ("mobilenet", -1)):
        with pytest.raises(FacemoodError, match="--blocks applies to the mobilenet backbone, 1 to 13"):
            build_model(3, input_size=64, backbone=backbone_name, blocks=blocks)


def test_grey_stem_leaves_a_model_of_another_form_alone():
    from convert.grey_stem import with_grey_stem

    inputs = keras.Input((48, 48, 1))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)))
    assert with_grey_stem(model, {"architecture": {"backbone": "mobilenet_v2"}}) == (model, None)


def test_grey_stem_leaves_efficientnet_alone():
    """EfficientNet normalizes each input channel inside its backbone, before its first convolution:
    there is nothing to fold, and its conversion (one of `compare`'s backbones) must not fail."""
    from convert.grey_stem import with_grey_stem

    model = build_model(3, image_size=48, input_size=32, backbone="efficientnet_b0", alpha=1.0)
    metadata = {"input": {"size": 48}, "architecture": {"backbone": "efficientnet_b0", "alpha": 1.0, "input_size": 32}}
    assert with_grey_stem(model, metadata) == (model, None)


def test_batchnorm_momentum_is_lowered_for_training_from_scratch():
    model = build_model(3, input_size=48)
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)


def test_imagenet_weights_come_from_keras_cache(tmp_path, monkeypatch):
    """Offline, `--weights imagenet` must load the file Keras would have downloaded into ~/.keras."""
    monkeypatch.setenv("HOME", str(tmp_path))
    reference = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False,
                                               weights=None)
    cache = tmp_path / ".keras" / "models"
    cache.mkdir(parents=True)
    reference.save_weights(cache / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5")
    model = build_model(7, image_size=48, input_size=96, alpha=0.35, weights="imagenet")
    backbone = model.get_layer("mobilenetv2_0.35_96")
    for loaded, expected in zip(backbone.get_weights(), reference.get_weights()):
        assert np.array_equal(loaded, expected)


def test_imagenet_weights_missing_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    # No cache file and (in tests) no network: Keras' fetch fails; the user gets one line.
    monkeypatch.setattr("tf_keras.src.utils.data_utils.urlretrieve",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network is unreachable")))
    with pytest.raises(FacemoodError, match="cannot load imagenet weights for MobileNetV2"):
        build_model(7, input_size=96, weights="imagenet")


def test_weights_file_path_and_bad_choices(tmp_path):
    reference = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False,
                                               weights=None)
    path = tmp_path / "backbone.h5"
    reference.save_weights(path)
    model = build_model(3, input_size=64, weights=str(path))
    assert np.array_equal(model.get_layer("mobilenetv2_0.35_64").get_weights()[0], reference.get_weights()[0])
    with pytest.raises(FacemoodError, match="weights file not found"):
        build_model(3, weights=str(tmp_path / "nope.h5"))
    with pytest.raises(FacemoodError, match="ImageNet weights for mobilenet_v2 exist for input sizes"):
        build_model(3, input_size=64, weights="imagenet")
    with pytest.raises(FacemoodError, match="unknown backbone"):
        build_model(3, backbone="resnet")


def test_classification_report_figures():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    report = classification_report(probs, labels, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert report["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert report["per_class"]["b"] == {"precision": pytest.approx(2 / 3, abs=1e-4), "recall": 1.0,
                                        "f1": pytest.approx(0.8, abs=1e-4), "support": 2}
    f1_a = 2 * 0.5 * 0.5 / 1.0
    f1_c = 2 * 1.0 * 0.5 / 1.5
    assert report["macro_f1"] == pytest.approx((f1_a + 0.8 + f1_c) / 3, abs=1e-4)


def test_macro_f1_counts_a_class_that_was_only_predicted():
    """As scikit-learn's f1_score(average="macro"): the classes among the labels or the predictions."""
    report = classification_report(np.eye(3)[[0, 2, 1, 1]], [0, 0, 1, 1], ["a", "b", "c"])
    assert report["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3, abs=1e-4) == 0.5556
    # A class neither present nor predicted still counts for nothing.
    assert classification_report(np.eye(3)[[0, 1]], [0, 1], ["a", "b", "c"])["macro_f1"] == 1.0


def test_classification_report_loss_is_the_true_class_cross_entropy():
    report = classification_report([[0.5, 0.5], [0.25, 0.75]], [0, 1], ["a", "b"])
    assert report["loss"] == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2, abs=1e-4)
