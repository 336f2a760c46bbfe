"""FaceRes' folded graph weights become a Keras MobileNet that computes what FaceRes computes.

The FaceRes files are made by tests/faceres.py: random weights under FaceRes' names and shapes.
The expected values come from a plain TensorFlow forward pass of the folded network as FaceRes'
graph runs it (0-255 input, SAME padding).
"""
import numpy as np
import pytest

from common.errors import FacemoodError
from train.keras_env import tf
from train import face_backbone
from faceres import faceres_weights, write_faceres

SIZE = 64  # every stride-2 layer meets an even side, where SAME and Keras' padding agree
STRIDE_2 = {2, 4, 6, 12}


def _faceres_forward(weights, raw, border=0.0):
    """FaceRes' folded graph on 0-255 RGB, as its TF.js graph runs it (its first convolution's SAME
    padding, one row and column below and right of an even-sized input, is filled with `border`)."""
    def act(v):
        return tf.clip_by_value(v, 0.0, 6.0)

    raw = np.pad(raw, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=border)
    y = act(tf.nn.conv2d(raw, weights["conv1/convolution/merged_input"], 2, "VALID")
            + weights["conv1_bn/batchnorm_1/sub"])
    for i in range(1, face_backbone.BLOCKS + 1):
        s = 2 if i in STRIDE_2 else 1
        y = tf.nn.depthwise_conv2d(y, weights[f"conv_dw_{i}/depthwise_kernel"], [1, s, s, 1], "SAME")
        y = act(y * weights[f"conv_dw_{i}_bn/batchnorm_1/mul"] + weights[f"conv_dw_{i}_bn/batchnorm_1/sub"])
        y = act(tf.nn.conv2d(y, weights[f"conv_pw_{i}/convolution/merged_input"], 1, "SAME")
                + weights[f"conv_pw_{i}_bn/batchnorm_1/sub"])
    return y.numpy()


@pytest.fixture(scope="module")
def faceres(tmp_path_factory):
    rng = np.random.default_rng(3)
    weights = faceres_weights(rng)
    folder = tmp_path_factory.mktemp("faceres")
    crops = rng.integers(0, 256, (12, 48, 48)).astype(np.uint8)
    source = face_backbone.read_faceres(write_faceres(folder, weights))
    out = face_backbone.write_face_backbone(source, folder / "backbone.h5", crops, SIZE)
    return weights, crops, out


def test_the_backbone_computes_what_faceres_computes(faceres):
    weights, crops, out = faceres
    from train.keras_env import keras

    base = keras.applications.MobileNet(input_shape=(SIZE, SIZE, 3), alpha=1.0, include_top=False, weights=str(out))
    x = face_backbone.backbone_input(crops, SIZE)
    # FaceRes pads its first convolution's input with black (0), the backbone with its own zero, which is
    # mid-grey (127.5) in FaceRes' terms: give FaceRes that border and the two must agree everywhere.
    expected = _faceres_forward(weights, (x + 1) * 127.5, border=127.5)
    got = base(x, training=False).numpy()
    assert got.shape == expected.shape
    assert expected.std() > 0.05  # not a network saturated into constants
    np.testing.assert_allclose(got, expected, atol=2e-3 * np.abs(expected).max())


def test_training_starts_where_inference_is(faceres):
    """The normalization statistics are those of the faces they were measured on, so on those faces
    batch statistics (training) and moving statistics (inference) give the same activations."""
    _, crops, out = faceres
    from train.keras_env import keras

    base = keras.applications.MobileNet(input_shape=(SIZE, SIZE, 3), alpha=1.0, include_top=False, weights=str(out))
    x = face_backbone.backbone_input(crops, SIZE)
    inference, training = base(x, training=False).numpy(), base(x, training=True).numpy()
    np.testing.assert_allclose(training, inference, atol=1e-3 * np.abs(inference).max())


def test_the_weights_file_is_what_train_loads(faceres):
    _, _, out = faceres
    from train.model import build_model

    model = build_model(7, 48, SIZE, "mobilenet", 1.0, str(out))
    backbone = model.get_layer("mobilenet_1.00_64")
    assert np.allclose(backbone.get_layer("conv_pw_13").get_weights()[0],
                       face_backbone.read_faceres(out.parent / "faceres.json")["conv_pw_13/convolution/merged_input"])


def test_other_networks_are_refused_clearly(tmp_path):
    rng = np.random.default_rng(4)
    weights = faceres_weights(rng)
    del weights["conv_dw_7/depthwise_kernel"]
    with pytest.raises(FacemoodError, match="not a FaceRes MobileNet.*conv_dw_7/depthwise_kernel"):
        face_backbone.read_faceres(write_faceres(tmp_path, weights))
    narrow = faceres_weights(rng)
    narrow["conv_pw_13/convolution/merged_input"] = narrow["conv_pw_13/convolution/merged_input"][..., :512]
    (tmp_path / "narrow").mkdir()
    with pytest.raises(FacemoodError, match="not a width-1.0 MobileNet: conv_pw_13"):
        face_backbone.read_faceres(write_faceres(tmp_path / "narrow", narrow))
    with pytest.raises(FacemoodError, match="cannot read TF.js graph model"):
        face_backbone.read_faceres(tmp_path / "missing.json")


def test_a_bad_source_is_refused_before_the_data_set_is_loaded(tmp_path):
    # Loading FER2013 takes a while; a mistyped --source must not wait for it (the data path here
    # does not exist either, so an error about it would mean the data came first).
    with pytest.raises(FacemoodError, match="missing.json: cannot read TF.js graph model"):
        face_backbone.face_backbone(tmp_path / "missing.json", tmp_path / "no-data.csv", tmp_path / "out.h5")
    with pytest.raises(FacemoodError, match="input size of at least 32"):
        face_backbone.face_backbone(tmp_path / "missing.json", tmp_path / "no-data.csv", tmp_path / "out.h5",
                                    input_size=16)
    assert list(tmp_path.iterdir()) == []
