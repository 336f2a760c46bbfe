"""The converted graph rewritten into fewer ops, exactly: the same outputs from the same shards.

TF.js pays a kernel call for every op, and some are passes over a whole feature map. The
converter leaves two kinds that the neighbouring convolutions can absorb.

Constant factors. MobileNetV3's activations come out as chains of small ops: hard-swish on a
feature map is four, (y * 1/6) * relu6(y + 3), and the squeeze-excite gate's hard-sigmoid three
more, relu6(z + 3) * 1/6 (45 of the expression model's 187 ops). Two rewrites remove them:

- hard-swish keeps y * relu6(y + 3) and drops the "* 1/6";
- the gate's "+ 3" goes into the bias of the convolution that makes z, its relu6 becomes that
  convolution's fused activation, and its "* 1/6" is dropped.

The tensors they make are then 6 times (both together: 36 times) what they were, and each
convolution or matrix product that reads them, through ops that commute with a positive factor
(padding with zeros, averaging, pooling, resizing, the gate's product), takes the factor back in
its weights. The shipped weights are affine-quantized (value = byte * scale + min): a weight
scaled or shifted is the same bytes under another scale and min, so the shards stay as they are
and only model.json changes.

Zero padding. Keras pads a map by hand before each strided depthwise convolution (a Pad op, a copy
of the map); the convolution can pad it itself (explicit padding, which TF.js and XNNPACK take).
"""
import base64
import copy
import json
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_bytes, read_json
from common.errors import FacemoodError
# graph_model first: it sets the environment TensorFlow reads.
from convert.graph_model import GraphModel, attr_bytes, fused_ops
from tensorflowjs.read_weights import read_weights  # noqa: E402  isort: skip

# Ops a positive factor on their first input passes through unchanged (Pad fills with zeros;
# PadV2, with a fill value, is not among them).
SCALE_THROUGH = {"Pad", "Mean", "Reshape", "ResizeBilinear", "MaxPool", "AvgPool"}
# Ops whose first input meets a weight tensor (their second input) in a linear product.
WEIGHTED = {"_FusedConv2D", "FusedDepthwiseConv2dNative", "Conv2D", "DepthwiseConv2dNative", "_FusedMatMul", "MatMul"}
AFFINE = ("uint8", "uint16")
# Largest change of an output accepted from the rewrite (float32 rounding is ~1e-6).
TOLERANCE = 1e-4


class CannotFold(Exception):
    """The graph has a pattern this pass does not know how to rewrite exactly."""


def lean_graph(spec, weights):
    """(new model.json dict, ops removed) for a TF.js graph model's `spec` and its de-quantized
    `weights` ({name: array}). Constant factors are folded only if every one can be taken back
    exactly; otherwise none is."""
    graph = _Graph(copy.deepcopy(spec), weights)
    try:
        scales = graph.drop_hard_sigmoid_factors()
        scales.update(graph.drop_hard_swish_factors())
        graph.take_back(scales)
    except CannotFold:
        graph = _Graph(copy.deepcopy(spec), weights)
    graph.fold_padding()
    return graph.spec, graph.removed


class _Graph:
    def __init__(self, spec, weights):
        self.spec = spec
        self.values = weights
        self.nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
        self.manifest = {w["name"]: w for group in spec["weightsManifest"] for w in group["weights"]}
        self.removed = 0

    # -- reading the graph
    def inputs(self, node):
        return [i.split(":")[0] for i in node.get("input", []) if not i.startswith("^")]

    def consumers(self, name):
        return [n for n in self.nodes.values() if name in self.inputs(n)]

    def only_consumer(self, name):
        users = self.consumers(name)
        return users[0] if len(users) == 1 else None

    def scalar(self, name):
        node = self.nodes[name]
        value = self.values.get(name) if node["op"] == "Const" else None
        return float(value) if value is not None and np.size(value) == 1 else None

    def split_scalar(self, node):
        """(scalar constant, other input's name) of a two-input op with one scalar constant."""
        ins = self.inputs(node)
        if len(ins) != 2:
            return None, None
        for k, other in ((0, 1), (1, 0)):
            value = self.scalar(ins[k])
            if value is not None and self.scalar(ins[other]) is None:
                return value, ins[other]
        return None, None

    # -- rewriting it
    def remove(self, node):
        self.spec["modelTopology"]["node"].remove(node)
        del self.nodes[node["name"]]
        self.removed += 1

    def rewire(self, old, new):
        for node in self.consumers(old):
            node["input"] = [new if i.split(":")[0] == old else i for i in node["input"]]

    def affine_weight(self, name, user):
        """The manifest entry of weight `name`, if only `user` reads it and it is affine-quantized."""
        entry = self.manifest.get(name)
        if entry is None or entry.get("quantization", {}).get("dtype") not in AFFINE:
            raise CannotFold(f"{name} is not an affine-quantized weight")
        if [n["name"] for n in self.consumers(name)] != [user]:
            raise CannotFold(f"{name} is shared")
        return entry

    def drop_hard_sigmoid_factors(self):
        """Gates relu6(z + c) * k with z a convolution's output: c into its bias, relu6 into its
        fused activation, the factor dropped. Returns {tensor: factor it now carries (1/k)}."""
        scales = {}
        for mul in [n for n in self.nodes.values() if n["op"] == "Mul"]:
            k, relu = self.split_scalar(mul)
            if k is None or k <= 0 or self.nodes[relu]["op"] != "Relu6" or self.only_consumer(relu) is not mul:
                continue
            add = self.nodes[self.inputs(self.nodes[relu])[0]]
            c, conv_name = self.split_scalar(add) if add["op"] == "AddV2" else (None, None)
            if c is None or self.only_consumer(add["name"]) is not self.nodes[relu]:
                continue
            conv = self.nodes[conv_name]
            if (conv["op"] != "_FusedConv2D" or fused_ops(conv.get("attr", {})) != [b"BiasAdd"]
                    or self.only_consumer(conv_name) is not add):
                continue
            bias = self.affine_weight(self.inputs(conv)[2], conv_name)
            bias["quantization"]["min"] += c
            _set_fused_ops(conv, [b"BiasAdd", b"Relu6"])
            self.rewire(mul["name"], conv_name)
            for node in (mul, self.nodes[relu], add):
                self.remove(node)
            scales[conv_name] = 1 / k
        return scales

    def drop_hard_swish_factors(self):
        """(y * k) * relu6(y + c) becomes y * relu6(y + c). Returns {tensor: 1/k}."""
        scales = {}
        for inner in [n for n in self.nodes.values() if n["op"] == "Mul"]:
            k, y = self.split_scalar(inner)
            outer = self.only_consumer(inner["name"]) if k is not None and k > 0 else None
            if outer is None or outer["op"] != "Mul":
                continue
            others = [i for i in self.inputs(outer) if i != inner["name"]]
            if len(others) != 1 or self.nodes[others[0]]["op"] != "Relu6":
                continue
            add = self.nodes[self.inputs(self.nodes[others[0]])[0]]
            if add["op"] != "AddV2" or self.split_scalar(add)[1] != y:
                continue
            self.rewire(inner["name"], y)
            self.remove(inner)
            scales[outer["name"]] = 1 / k
        return scales

    def take_back(self, scales):
        """Follow each scaled tensor through ops that pass a factor on to the weighted ops that
        read it, and divide their weights by it."""
        for node in self._in_order():
            ins = [i for i in self.inputs(node) if self.nodes[i]["op"] != "Const"]
            factors = [scales.get(i, 1.0) for i in ins]
            if all(f == 1.0 for f in factors):
                continue
            op, name = node["op"], node["name"]
            first = self.inputs(node)[0]
            if op in SCALE_THROUGH and factors == [scales.get(first, 1.0)]:
                scales[name] = factors[0]
            elif op == "Mul":
                scales[name] = float(np.prod(factors))
            elif op in WEIGHTED and len(ins) == 1 and ins[0] == first:
                weight = self.affine_weight(self.inputs(node)[1], name)
                weight["quantization"]["min"] /= factors[0]
                weight["quantization"]["scale"] /= factors[0]
            else:
                raise CannotFold(f"{op} {name} cannot take a factor back")

    def fold_padding(self):
        """A zero Pad read only by a VALID convolution becomes that convolution's explicit padding."""
        for pad in [n for n in self.nodes.values() if n["op"] == "Pad"]:
            conv = self.only_consumer(pad["name"])
            if conv is None or conv["op"] not in WEIGHTED - {"_FusedMatMul", "MatMul"}:
                continue
            attr = conv.setdefault("attr", {})
            if (self.inputs(conv)[0] != pad["name"] or attr_bytes(attr, "padding") != b"VALID"
                    or attr_bytes(attr, "data_format") not in (b"", b"NHWC")):
                continue
            paddings = self.values.get(self.inputs(pad)[1])
            if paddings is None or np.shape(paddings) != (4, 2) or np.any(np.asarray(paddings)[[0, 3]]):
                continue  # only the rows and columns may be padded
            conv["input"][0] = pad["input"][0]
            attr["padding"] = {"s": base64.b64encode(b"EXPLICIT").decode()}
            attr["explicit_paddings"] = {"list": {"i": [str(int(v)) for v in np.ravel(paddings)]}}
            self.remove(pad)

    def _in_order(self):
        """Nodes, every one after its inputs."""
        done, order = set(), []
        for start in list(self.nodes):
            stack = [(start, False)]
            while stack:
                name, expanded = stack.pop()
                if name in done:
                    continue
                if expanded:
                    done.add(name)
                    order.append(self.nodes[name])
                    continue
                stack.append((name, True))
                stack.extend((i, False) for i in self.inputs(self.nodes[name]) if i not in done)
        return order


def _set_fused_ops(node, ops):
    node["attr"]["fused_ops"]["list"]["s"] = [base64.b64encode(op).decode() for op in ops]


def lean_tfjs_dir(tfjs_dir, seed=0):
    """Rewrite `tfjs_dir`/model.json in place with lean_graph; returns how many ops it removed.
    The rewritten graph is checked against the original on random input before it is written."""
    tfjs_dir = Path(tfjs_dir)
    spec = read_json(tfjs_dir / "model.json", "TF.js model")
    weights = {w["name"]: w["data"] for w in read_weights(spec["weightsManifest"], str(tfjs_dir), flatten=True)}
    lean, removed = lean_graph(spec, weights)
    if removed == 0:
        return 0
    dims = next(iter(spec["signature"]["inputs"].values()))["tensorShape"]["dim"][1:]
    batch = np.random.default_rng(seed).uniform(0, 255, [4] + [int(d["size"]) for d in dims]).astype(np.float32)
    difference = np.abs(GraphModel(tfjs_dir)(batch) - GraphModel(tfjs_dir, lean)(batch)).max()
    if not difference < TOLERANCE:
        raise FacemoodError(f"{tfjs_dir}: the leaner graph's outputs differ by {difference:.2g}; not written")
    atomic_write_bytes(tfjs_dir / "model.json", json.dumps(lean).encode())  # compact, as tensorflowjs writes it
    return removed
