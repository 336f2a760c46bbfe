"""Run a converted TF.js graph model in Python, from its model.json and (quantized) shards.

This executes the very graph and de-quantized weights the browser loads, node by node with
TensorFlow's own kernels, so the accuracy measured here is the accuracy of what ships. It covers
the ops the converter emits for MobileNet-style networks; any other op is a clear error.
"""
import base64
import json
from pathlib import Path

import numpy as np

from common.errors import FacemoodError
from convert.selective_flip import combined, unsure
from train.keras_env import tf  # first: it sets the environment tensorflowjs' imports read
from tensorflowjs.read_weights import read_weights  # noqa: E402  isort: skip

ACTIVATIONS = {
    b"Relu": tf.nn.relu, b"Relu6": tf.nn.relu6, b"Elu": tf.nn.elu, b"Sigmoid": tf.sigmoid,
    b"Tanh": tf.tanh,
}


class GraphModel:
    """Callable: float32 batch (n, h, w, c) -> outputs of the model's single output tensor."""

    def __init__(self, tfjs_dir, spec=None):
        """`spec`: a model.json dict to run instead of the folder's own (its shards still read there)."""
        tfjs_dir = Path(tfjs_dir)
        try:
            spec = spec or json.loads((tfjs_dir / "model.json").read_text(encoding="utf-8"))
            self.weights = read_weights(spec["weightsManifest"], str(tfjs_dir), flatten=True)
        except (OSError, ValueError, KeyError) as e:
            raise FacemoodError(f"{tfjs_dir}: cannot read TF.js graph model ({e})") from None
        self.weights = {w["name"]: w["data"] for w in self.weights}
        self.nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
        signature = spec["signature"]
        self.input_name = _tensor_node(next(iter(signature["inputs"].values()))["name"])
        self.output_name = _tensor_node(next(iter(signature["outputs"].values()))["name"])
        # No autograph: the walk over the nodes is plain Python on the static graph, and transpiling
        # its recursion took about 5 s a model.
        self._run = tf.function(self._evaluate, reduce_retracing=True, autograph=False)

    def __call__(self, batch, batch_size=256):
        batch = np.asarray(batch, np.float32)
        outs = [self._run(tf.constant(batch[i:i + batch_size])).numpy() for i in range(0, len(batch), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0,), np.float32)

    def _evaluate(self, x):
        values = {self.input_name: x}

        def value(name):
            name = _tensor_node(name)
            if name not in values:
                values[name] = self._node(self.nodes[name], value)
            return values[name]

        return value(self.output_name)

    def _node(self, node, value):
        op, attr = node["op"], node.get("attr", {})
        inputs = [value(i) for i in node.get("input", []) if not i.startswith("^")]
        if op == "Const":
            if node["name"] in self.weights:  # numpy, so shapes and axes stay static in the traced graph
                return self.weights[node["name"]]
            raise FacemoodError(f"graph model: constant {node['name']} has no weights")
        if op == "Identity":
            return inputs[0]
        if op == "_FusedConv2D":
            y = tf.raw_ops.Conv2D(input=inputs[0], filter=inputs[1], **_conv_attrs(attr))
            return _fused_tail(y, inputs[2:], attr)
        if op == "FusedDepthwiseConv2dNative":
            y = tf.raw_ops.DepthwiseConv2dNative(input=inputs[0], filter=inputs[1], **_conv_attrs(attr))
            return _fused_tail(y, inputs[2:], attr)
        if op in ("Conv2D", "DepthwiseConv2dNative"):
            return getattr(tf.raw_ops, op)(input=inputs[0], filter=inputs[1], **_conv_attrs(attr))
        if op == "_FusedMatMul":
            y = tf.linalg.matmul(inputs[0], inputs[1], transpose_a=_b(attr, "transpose_a"),
                                 transpose_b=_b(attr, "transpose_b"))
            return _fused_tail(y, inputs[2:], attr)
        if op == "MatMul":
            return tf.linalg.matmul(inputs[0], inputs[1], transpose_a=_b(attr, "transpose_a"),
                                    transpose_b=_b(attr, "transpose_b"))
        if op in ("Add", "AddV2", "BiasAdd"):
            return inputs[0] + inputs[1]
        if op == "Sub":
            return inputs[0] - inputs[1]
        if op == "Mul":
            return inputs[0] * inputs[1]
        if op == "RealDiv":
            return inputs[0] / inputs[1]
        if op in ("Maximum", "Minimum"):
            return getattr(tf.math, op.lower())(inputs[0], inputs[1])
        if op in ("Pad", "PadV2"):
            return tf.pad(inputs[0], inputs[1], constant_values=inputs[2] if len(inputs) > 2 else 0)
        if op == "ConcatV2":
            return tf.concat(inputs[:-1], axis=int(inputs[-1]))
        if op == "Mean":
            return tf.reduce_mean(inputs[0], axis=inputs[1], keepdims=_b(attr, "keep_dims"))
        if op == "Reshape":
            return tf.reshape(inputs[0], inputs[1])
        if op == "ResizeBilinear":
            return tf.raw_ops.ResizeBilinear(images=inputs[0], size=inputs[1],
                                             align_corners=_b(attr, "align_corners"),
                                             half_pixel_centers=_b(attr, "half_pixel_centers"))
        if op in ("MaxPool", "AvgPool"):
            return getattr(tf.raw_ops, op)(input=inputs[0], ksize=_ints(attr, "ksize"), strides=_ints(attr, "strides"),
                                           padding=attr_bytes(attr, "padding").decode())
        if op == "Softmax":
            return tf.nn.softmax(inputs[0])
        if op.encode() in ACTIVATIONS:
            return ACTIVATIONS[op.encode()](inputs[0])
        raise FacemoodError(f"graph model: op {op} ({node['name']}) is not supported by the Python runner")


def _fused_tail(y, args, attr):
    """Apply a fused op's tail: BiasAdd (or FusedBatchNorm-free bias) and an optional activation."""
    ops = fused_ops(attr)
    for op in ops:
        if op == b"BiasAdd":
            y = y + args[0]
        elif op in ACTIVATIONS:
            y = ACTIVATIONS[op](y)
        elif op == b"LeakyRelu":
            y = tf.nn.leaky_relu(y, alpha=attr.get("leakyrelu_alpha", {}).get("f", 0.2))
        elif op == b"Prelu":
            y = tf.maximum(y, 0) + args[1] * tf.minimum(y, 0)
        else:
            raise FacemoodError(f"graph model: fused op {op.decode()} is not supported by the Python runner")
    return y


def _conv_attrs(attr):
    padding = attr_bytes(attr, "padding").decode()
    return dict(strides=_ints(attr, "strides"), padding=padding,
                explicit_paddings=_ints(attr, "explicit_paddings") if padding == "EXPLICIT" else [],
                data_format=(attr_bytes(attr, "data_format") or b"NHWC").decode(),
                dilations=_ints(attr, "dilations") or [1, 1, 1, 1])


def attr_bytes(attr, key):
    """A node attribute's string value (base64 in model.json), b"" when absent."""
    return base64.b64decode(attr[key]["s"]) if key in attr else b""


def fused_ops(attr):
    """A fused op's steps after its convolution or product: [b"BiasAdd", b"Relu6"]."""
    return [base64.b64decode(s) for s in attr.get("fused_ops", {}).get("list", {}).get("s", [])]


def _b(attr, key):
    return bool(attr.get(key, {}).get("b", False))


def _ints(attr, key):
    return [int(i) for i in attr.get(key, {}).get("list", {}).get("i", [])]


def _tensor_node(name):
    """'node:0' -> 'node' (the converter's graphs have one output per node we run)."""
    return name.split(":")[0]


def page_input(batch, metadata):
    """(n, size, size, 1) grey crops as the page feeds them to the network: standardized, then
    smoothed, each only when the model asks for it.

    Standardizing (metadata.json: inference.standardize): a crop whose mean grey level or contrast
    (standard deviation) lies outside the middle 80 % of the training faces' is shifted and scaled
    to the nearest edge of that range, then clipped to 0-255: a dim, washed-out or over-exposed
    photo reaches the network looking like the training faces, and a usual one is left as it is.

    Smoothing (inference.smoothing, a weight w): every pixel becomes the mean of its 3x3
    neighbourhood weighted by (w, 1 - 2w, w) along each axis, edge pixels repeated outwards. The
    network learned from augmented faces, which were all resampled (rotated, zoomed, shifted) and
    so slightly softened; a sharp crop straight from a photo is not what it saw.
    """
    batch = np.asarray(batch, np.float32)
    inference = metadata.get("inference", {})
    if inference.get("standardize"):
        batch = _standardized(batch, inference["standardize"])
    if inference.get("smoothing"):
        batch = smoothed(batch, inference["smoothing"])
    return batch


def _standardized(batch, target):
    flat = batch.reshape(len(batch), -1).astype(np.float64)
    mean = flat.mean(axis=1, keepdims=True)
    std = np.maximum(flat.std(axis=1, keepdims=True), target["min_std"])  # one grey stays one grey
    out = (flat - mean) * (np.clip(std, *target["std"]) / std) + np.clip(mean, *target["mean"])
    return np.clip(out, 0, 255).reshape(batch.shape).astype(np.float32)


# Above 1/3 a neighbour would weigh more than the pixel itself.
MAX_SMOOTHING = 1 / 3


def smoothed(batch, weight):
    """(n, h, w, c) images filtered with the separable kernel (weight, 1 - 2 weight, weight)."""
    out = np.asarray(batch, np.float64)
    for axis in (1, 2):
        padded = np.concatenate([np.take(out, [0], axis), out, np.take(out, [-1], axis)], axis)
        n = out.shape[axis]
        before, here, after = (np.take(padded, range(i, i + n), axis) for i in range(3))
        out = weight * (before + after) + (1 - 2 * weight) * here
    return out.astype(np.float32)


def page_probabilities(graph, batch, metadata):
    """Class probabilities as the page computes them for (n, size, size, 1) grey crops: the graph's
    output on page_input(batch), averaged with its output on the mirrored crops when the model
    asks for test-time flipping (metadata.json: inference.test_time_flip), only for the crops it
    is unsure of when it records a margin (convert/selective_flip.py)."""
    batch = page_input(batch, metadata)
    probs = graph(batch)
    flipped = unsure(probs, metadata)
    mirror = np.zeros_like(probs)
    if flipped.any():
        mirror[flipped] = graph(batch[flipped][:, :, ::-1])
    return combined(probs, mirror, flipped)
