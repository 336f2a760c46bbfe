"""The converted graph rewritten into fewer ops computes what the converter's graph computes."""
import collections
import json
import shutil

import numpy as np
import pytest

from convert.graph_model import GraphModel
from convert.lean_graph import lean_tfjs_dir
from train.model import build_model


@pytest.fixture(scope="module")
def converted_v3(tmp_path_factory):
    """A MobileNetV3-Small with trained-looking weights, converted to a uint8 and a float32 graph."""
    from tensorflowjs.converters import converter

    root = tmp_path_factory.mktemp("lean")
    model = build_model(4, image_size=48, input_size=64, backbone="mobilenet_v3_small", alpha=0.75)
    rng = np.random.default_rng(2)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()])
    model.save(root / "model.h5", include_optimizer=False)
    out = {}
    for name, dtypes in (("uint8", {"uint8": True}), ("float32", None)):
        converter.dispatch_keras_h5_to_tfjs_graph_model_conversion(
            str(root / "model.h5"), str(root / name), quantization_dtype_map=dtypes)
        out[name] = root / name
    return out


def ops(tfjs_dir):
    spec = json.loads((tfjs_dir / "model.json").read_text())
    return collections.Counter(n["op"] for n in spec["modelTopology"]["node"] if n["op"] != "Const")


def faces(n=8):
    return np.random.default_rng(3).uniform(0, 255, (n, 48, 48, 1)).astype(np.float32)


def rewritten_copy(tfjs_dir, tmp_path):
    copy = tmp_path / tfjs_dir.name
    shutil.copytree(tfjs_dir, copy)
    return copy, lean_tfjs_dir(copy)


def test_hard_swish_and_gate_constants_and_pads_are_folded_with_the_same_outputs(converted_v3, tmp_path):
    original = converted_v3["uint8"]
    before = ops(original)
    lean, removed = rewritten_copy(original, tmp_path)
    after = ops(lean)
    assert before["Pad"] > 0 and after["Pad"] == 0
    # Every gate loses its "+ 3", relu6 and "* 1/6", every hard-swish its "* 1/6".
    assert before["Mean"] > 1 and after["Relu6"] < before["Relu6"] and after["Mul"] < before["Mul"]
    assert removed == sum((before - after).values()) > 0
    assert np.abs(GraphModel(original)(faces()) - GraphModel(lean)(faces())).max() < 1e-5
    # The shards are untouched: only scales, offsets and the graph changed.
    for shard in original.glob("*.bin"):
        assert (lean / shard.name).read_bytes() == shard.read_bytes()
    assert lean_tfjs_dir(lean) == 0  # nothing left to fold


def test_factors_stay_where_weights_cannot_take_them_back(converted_v3, tmp_path):
    # Float weights are not stored as bytes under a scale, so no factor is folded (all or none);
    # the pads still go.
    original = converted_v3["float32"]
    before = ops(original)
    lean, removed = rewritten_copy(original, tmp_path)
    after = ops(lean)
    assert after["Mul"] == before["Mul"] and after["Relu6"] == before["Relu6"]
    assert after["Pad"] == 0 and removed == before["Pad"]
    assert np.abs(GraphModel(original)(faces()) - GraphModel(lean)(faces())).max() < 1e-5
