"""A stand-in for FaceRes' TF.js files (`build.py face-backbone`'s source): random weights under
FaceRes' names and shapes, in a weights manifest written by tensorflowjs itself."""
import json

import numpy as np

import train.keras_env  # noqa: F401  (Keras 2 chosen before tensorflowjs imports Keras)
from tensorflowjs.write_weights import write_weights  # noqa: E402

POINTWISE_CHANNELS = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)  # MobileNet, width 1.0


def faceres_weights(rng):
    """Random weights under the names and shapes of FaceRes' folded graph."""
    shapes = {"conv1/convolution/merged_input": (3, 3, 3, 32), "conv1_bn/batchnorm_1/sub": (32,)}
    channels = 32
    for i, out in enumerate(POINTWISE_CHANNELS, start=1):
        shapes[f"conv_dw_{i}/depthwise_kernel"] = (3, 3, channels, 1)
        shapes[f"conv_dw_{i}_bn/batchnorm_1/mul"] = (channels,)
        shapes[f"conv_dw_{i}_bn/batchnorm_1/sub"] = (channels,)
        shapes[f"conv_pw_{i}/convolution/merged_input"] = (1, 1, channels, out)
        shapes[f"conv_pw_{i}_bn/batchnorm_1/sub"] = (out,)
        channels = out
    weights = {}
    for name, shape in shapes.items():
        if name.endswith("mul"):
            weights[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif name.endswith("sub"):
            weights[name] = rng.normal(0, 0.2, shape).astype(np.float32)
        else:
            fan_in = np.prod(shape[:-1]) if "depthwise" not in name else 9
            scale = 1 / 255 if name.startswith("conv1/") else 1.0
            weights[name] = (rng.normal(0, np.sqrt(2 / fan_in), shape) * scale).astype(np.float32)
    # FaceRes' own top, which the conversion drops
    weights["feats/kernel"] = rng.normal(0, 0.03, (1024, 256)).astype(np.float32)
    return weights


def write_faceres(folder, weights):
    """`weights` as FaceRes' files in `folder` (faceres.json, its shard beside it); returns the JSON's path."""
    manifest = write_weights([[{"name": n, "data": w} for n, w in weights.items()]], str(folder))
    path = folder / "faceres.json"
    path.write_text(json.dumps({"format": "graph-model", "weightsManifest": manifest}))
    return path
