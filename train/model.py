"""An expression classifier on a Keras Applications backbone (MobileNet by default): grey face
crop in, class probabilities out.

The network takes the crop exactly as the browser has it (grey, 0-255, `image_size` square), so
normalization and up-sampling live inside the model and are never repeated in JavaScript.
"""
from pathlib import Path

from common.errors import FacemoodError
from train.keras_env import keras

BACKBONES = {
    "mobilenet": "MobileNet",
    "mobilenet_v2": "MobileNetV2",
    "mobilenet_v3_small": "MobileNetV3Small",
    "mobilenet_v3_large": "MobileNetV3Large",
    "densenet121": "DenseNet121",
    "xception": "Xception",
    "vgg16": "VGG16",
    "efficientnet_b0": "EfficientNetB0",
}
# Keras ships ImageNet weights for these input sizes only (the others accept any size >= 32, or
# 71 for Xception, and load their 224/299 weights).
IMAGENET_SIZES = {"mobilenet": (128, 160, 192, 224), "mobilenet_v2": (96, 128, 160, 192, 224),
                  "mobilenet_v3_small": (224,), "mobilenet_v3_large": (224,)}
WIDTH_MULTIPLIER = {"mobilenet", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"}
MIN_INPUT_SIZE = {"xception": 71}
# What each backbone's ImageNet weights expect of an RGB pixel p in 0-255, as (scale, offset) per
# channel: p * scale + offset. Keras' `preprocess_input` modes "tf", "torch" and "caffe" (BGR means);
# EfficientNet normalizes inside itself and takes 0-255.
_TORCH_MEAN, _TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
INPUT_SCALING = {
    "tf": (1 / 127.5, -1.0),
    "torch": ([1 / (255 * s) for s in _TORCH_STD], [-m / s for m, s in zip(_TORCH_MEAN, _TORCH_STD)]),
    "caffe": (1.0, [-103.939, -116.779, -123.68]),
    "raw": (1.0, 0.0),
}
PREPROCESSING = {"densenet121": "torch", "vgg16": "caffe", "efficientnet_b0": "raw"}  # others: "tf"
MOBILENET_BLOCKS = 13  # depthwise-separable blocks of MobileNet V1
# From scratch, Keras' default BatchNorm momentum (0.99/0.999) lags the weights so far that
# validation sits at the majority class for epochs; 0.9 tracks them.
BATCHNORM_MOMENTUM = 0.9


def build_model(num_classes, image_size=48, input_size=96, backbone="mobilenet_v2", alpha=0.35,
                weights="none", dropout=0.2, grey_stem=False, blocks=0):
    """Return an uncompiled Keras model mapping (image_size, image_size, 1) grey 0-255 to softmax.

    `weights`: "none" (random), "imagenet" (Keras' download, cached in ~/.keras/models, so offline use works once cached), or a path
    to a weights file for the backbone (the same file Keras would fetch).
    `blocks`: keep only the backbone's first blocks (MobileNet V1: 1-13; 0 = all), so that weights
    learnt by a large network fit a small one: the early blocks hold few of the weights.
    `grey_stem`: the backbone takes the one grey channel itself instead of three copies of it (the
    form the browser runs: convert/grey_stem.py fills it with a trained model's weights).
    """
    if backbone not in BACKBONES:
        raise FacemoodError(f"unknown backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
    if num_classes < 2:
        raise FacemoodError(f"need at least 2 classes, got {num_classes}")
    if input_size < MIN_INPUT_SIZE.get(backbone, 32):
        raise FacemoodError(f"{BACKBONES[backbone]} needs an input size of at least "
                            f"{MIN_INPUT_SIZE.get(backbone, 32)}, not {input_size}")
    if blocks and (backbone != "mobilenet" or not 1 <= blocks <= MOBILENET_BLOCKS):
        raise FacemoodError(f"--blocks applies to the mobilenet backbone, 1 to {MOBILENET_BLOCKS}; "
                            f"not {blocks} with {backbone}")
    keras_weights = _resolve_weights(weights, backbone, input_size)
    inputs = keras.Input((image_size, image_size, 1), name="face")
    x = inputs
    if input_size != image_size:
        x = keras.layers.Resizing(input_size, input_size, interpolation="bilinear", name="upsample")(x)
    if not grey_stem:
        # Three identical channels so ImageNet weights (RGB) apply; the cost is one tiny first conv.
        x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])
    scale, offset = INPUT_SCALING[PREPROCESSING.get(backbone, "tf")]
    x = keras.layers.Rescaling(scale, offset=offset, name="backbone_input_range")(x)
    base = _backbone(backbone, alpha, input_size, keras_weights, channels=1 if grey_stem else 3)
    if blocks:
        base = keras.Model(base.input, base.get_layer(f"conv_pw_{blocks}_relu").output,
                           name=f"{base.name}_blocks_{blocks}")
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=f"facemood_{backbone}")


def _resolve_weights(weights, backbone, input_size):
    if weights in (None, "none"):
        return None
    if weights == "imagenet":
        if backbone in IMAGENET_SIZES and input_size not in IMAGENET_SIZES[backbone]:
            sizes = ", ".join(map(str, IMAGENET_SIZES[backbone]))
            raise FacemoodError(f"ImageNet weights for {backbone} exist for input sizes {sizes}, not {input_size}")
        return "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise FacemoodError(f"{path}: weights file not found (use --weights imagenet|none|PATH)")
    return str(path)


def _backbone(backbone, alpha, input_size, weights, channels=3):
    constructor = getattr(keras.applications, BACKBONES[backbone])
    kwargs = dict(input_shape=(input_size, input_size, channels), include_top=False, weights=weights)
    if backbone in WIDTH_MULTIPLIER:
        kwargs["alpha"] = alpha
    if backbone.startswith("mobilenet_v3"):
        kwargs["include_preprocessing"] = False  # inputs already in [-1, 1]
    try:
        base = constructor(**kwargs)
    except ValueError as e:  # Keras explains bad alpha/size combinations in its message
        raise FacemoodError(f"{BACKBONES[backbone]}: {str(e).splitlines()[0]}") from None
    except Exception as e:  # offline and not in Keras' cache, or a corrupt weights file
        first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FacemoodError(f"cannot load {weights} weights for {BACKBONES[backbone]}: {first_line}") from None
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BATCHNORM_MOMENTUM
    return base
