"""A MobileNet expression classifier: grey face crop in, class probabilities out.

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
}
# Keras ships ImageNet weights for these input sizes only.
IMAGENET_SIZES = {"mobilenet": (128, 160, 192, 224), "mobilenet_v2": (96, 128, 160, 192, 224),
                  "mobilenet_v3_small": (224,), "mobilenet_v3_large": (224,)}
# From scratch, Keras' default BatchNorm momentum (0.99/0.999) lags the weights so far that
# validation sits at the majority class for epochs; 0.9 tracks them.
BATCHNORM_MOMENTUM = 0.9


def build_model(num_classes, image_size=48, input_size=96, backbone="mobilenet_v2", alpha=0.35,
                weights="none", dropout=0.2):
    """Return an uncompiled Keras model mapping (image_size, image_size, 1) grey 0-255 to softmax.

    `weights`: "none" (random), "imagenet" (Keras' download, cached in ~/.keras/models, so offline use works once cached), or a path
    to a weights file for the backbone (the same file Keras would fetch).
    """
    if backbone not in BACKBONES:
        raise FacemoodError(f"unknown backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
    if num_classes < 2:
        raise FacemoodError(f"need at least 2 classes, got {num_classes}")
    keras_weights = _resolve_weights(weights, backbone, input_size)
    inputs = keras.Input((image_size, image_size, 1), name="face")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit_range")(inputs)
    if input_size != image_size:
        x = keras.layers.Resizing(input_size, input_size, interpolation="bilinear", name="upsample")(x)
    # Three identical channels so ImageNet weights (RGB) apply; the cost is one tiny first conv.
    x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])
    base = _backbone(backbone, alpha, input_size, keras_weights)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=f"facemood_{backbone}")


def _resolve_weights(weights, backbone, input_size):
    if weights in (None, "none"):
        return None
    if weights == "imagenet":
        if input_size not in IMAGENET_SIZES[backbone]:
            sizes = ", ".join(map(str, IMAGENET_SIZES[backbone]))
            raise FacemoodError(f"ImageNet weights for {backbone} exist for input sizes {sizes}, not {input_size}")
        return "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise FacemoodError(f"{path}: weights file not found (use --weights imagenet|none|PATH)")
    return str(path)


def _backbone(backbone, alpha, input_size, weights):
    constructor = getattr(keras.applications, BACKBONES[backbone])
    kwargs = dict(input_shape=(input_size, input_size, 3), alpha=alpha, include_top=False, weights=weights)
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
