"""The trained network in the form the browser runs: the grey face fed straight to the first
convolution instead of as three identical RGB channels.

Training keeps the three channels so ImageNet weights apply. For the same output the first
convolution needs only the sum of its kernel over the three input channels (conv(x, x, x; K) =
conv(x; K_r + K_g + K_b)), and the page is spared the concatenation, which TF.js' WASM backend
copies one value at a time (1.4 of the expression model's 5 ms per face, measured in the page).
"""
import numpy as np

from common.errors import FacemoodError
from train.keras_env import keras
from train.model import PREPROCESSING, build_model

# Largest change of a class probability accepted from the fold (float32 rounding is ~1e-6).
TOLERANCE = 1e-4


def with_grey_stem(model, metadata):
    """(model, "backbone/layer" name of its folded first convolution): an equivalent model
    without the grey-to-RGB concatenation, or (`model`, None) when it was built another way or its
    backbone treats the three channels apart before its first convolution (torch and caffe modes
    scale them differently; EfficientNet's "raw" input meets a per-channel normalization of its own)."""
    arch = metadata["architecture"]
    names = {layer.name for layer in model.layers}
    if "grey_to_rgb" not in names or PREPROCESSING.get(arch["backbone"], "tf") != "tf":
        return model, None
    folded = build_model(model.outputs[0].shape[-1], metadata["input"]["size"], arch["input_size"],
                         arch["backbone"], arch["alpha"], dropout=0.0, grey_stem=True, blocks=arch.get("blocks", 0))
    backbone, new_backbone = _backbone_of(model), _backbone_of(folded)
    stem = f"{new_backbone.name}/{_copy_weights(backbone.layers, new_backbone.layers)}"
    for name in ("pool", "dropout", "scores"):
        folded.get_layer(name).set_weights(model.get_layer(name).get_weights())
    _check_same_outputs(model, folded)
    return folded, stem


def _backbone_of(model):
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def _copy_weights(layers, new_layers):
    """Copy every layer's weights, the first convolution's summed over its input channels; returns
    that convolution's name."""
    if len(layers) != len(new_layers):
        raise FacemoodError("cannot fold the grey input: the rebuilt backbone has other layers")
    folded = None
    for layer, new_layer in zip(layers, new_layers):
        weights = layer.get_weights()
        new_shapes = [w.shape for w in new_layer.get_weights()]
        if [w.shape for w in weights] != new_shapes:
            # The first convolution: kernel (h, w, 3, out) -> (h, w, 1, out).
            if folded or not weights or weights[0].ndim != 4 or new_shapes[0][2] != 1:
                raise FacemoodError(f"cannot fold the grey input into {layer.name}: shapes {new_shapes} "
                                    f"vs {[w.shape for w in weights]}")
            weights = [weights[0].sum(axis=2, keepdims=True), *weights[1:]]
            folded = new_layer.name
        new_layer.set_weights(weights)
    if folded is None:
        raise FacemoodError("cannot fold the grey input: no first convolution takes three channels")
    return folded


def _check_same_outputs(model, folded):
    size = model.inputs[0].shape[1]
    faces = np.random.default_rng(0).uniform(0, 255, (8, size, size, 1)).astype(np.float32)
    difference = np.abs(model.predict(faces, verbose=0) - folded.predict(faces, verbose=0)).max()
    if difference > TOLERANCE:
        raise FacemoodError(f"folding the grey input changed the model's outputs by {difference:.2g}")
