"""The face detector as the site ships it: BlazeFace's float32 weights stored as float16, and its
input opened to any height and width.

TF.js reads float16-quantized weights natively (`"quantization": {"dtype": "float16"}` in the
manifest) and widens them back to float32 on load, so the network runs exactly as before while its
shard is half the size. The vendored weights are float16 values already (they were converted from a
float16 model), so the conversion is checked to be lossless; a detector whose weights would change
is copied as it is instead.

BlazeFace is convolutional up to four reshapes that flatten its two anchor grids; only those
reshapes and the input placeholder fix the square it was converted for. With their sizes set to -1
the page can run it on a photo's own proportions (a 4:3 photo: 256x192 instead of 256x256 with a
quarter of black bars), a quarter less work for the same pixels of the photo. The square it was
trained at stays in the model's metadata (`trained_input_size`), since anchors scale with it.
"""
import json
import math
import shutil
import struct
from pathlib import Path

# The one change accepted: a value too small for any float16 (below half its smallest step, 2^-24)
# becomes zero. Every other value must come back from float16 exactly.
FLUSHED_TO_ZERO = 2.0 ** -25


def write_detector(model_json, out_dir):
    """Write `model_json` and its shard into `out_dir`, float32 weights as float16 when lossless
    and the input open to any size where the model has BlazeFace's form. Returns True when this
    rewritten version was written, False when the files were copied as they are."""
    model_json, out_dir = Path(model_json), Path(out_dir)
    spec = json.loads(model_json.read_text(encoding="utf-8"))
    groups = spec["weightsManifest"]
    if len(groups) != 1 or len(groups[0]["paths"]) != 1:
        return _copy_as_is(model_json, spec, out_dir)
    shard = model_json.parent / groups[0]["paths"][0]
    data = shard.read_bytes()
    reshape_shapes = _flattening_shapes(spec)
    parts, offset = [], 0
    for weight in groups[0]["weights"]:
        count = math.prod(weight["shape"])
        chunk = data[offset:offset + 4 * count]
        offset += 4 * count
        if weight["dtype"] == "float32" and "quantization" not in weight:
            half = _float16_if_lossless(chunk, count)
            if half is None:
                return _copy_as_is(model_json, spec, out_dir)
            weight["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            chunk = half
        elif weight["dtype"] not in ("float32", "int32") or "quantization" in weight:
            return _copy_as_is(model_json, spec, out_dir)
        elif reshape_shapes is not None and weight["name"] in reshape_shapes:
            chunk = _any_length(chunk)
            if chunk is None:
                return _copy_as_is(model_json, spec, out_dir)
        parts.append(chunk)
    if offset != len(data):
        return _copy_as_is(model_json, spec, out_dir)
    if reshape_shapes is not None:
        _open_input(spec)
    (out_dir / model_json.name).write_text(json.dumps(spec, separators=(",", ":")), encoding="utf-8")
    (out_dir / shard.name).write_bytes(b"".join(parts))
    return True


def _flattening_shapes(spec):
    """Names of the int32 shape weights of the reshapes that flatten the anchor grids, when the
    model has the form this rewrite knows (one square [1, S, S, 3] input, reshapes to [1, n, k]
    whose shapes are stored weights); None otherwise, and the model keeps its fixed input."""
    nodes = spec.get("modelTopology", {}).get("node", [])
    placeholders = [n for n in nodes if n["op"] == "Placeholder"]
    if len(placeholders) != 1:
        return None
    try:
        dims = [int(d["size"]) for d in placeholders[0]["attr"]["shape"]["shape"]["dim"]]
    except (KeyError, ValueError):  # no static shape recorded: nothing to open
        return None
    if len(dims) != 4 or dims[0] != 1 or dims[1] != dims[2] or dims[1] <= 0:
        return None
    weights = {w["name"]: w for w in spec["weightsManifest"][0]["weights"]}
    names = {n["input"][1].split(":")[0] for n in nodes if n["op"] == "Reshape"}
    if not names or any(weights.get(name, {}).get("shape") != [3] or weights[name]["dtype"] != "int32"
                        for name in names):
        return None
    return names


def _any_length(chunk):
    """A reshape target [1, n, k] as [1, -1, k]: as many anchors as the input has cells (None
    for a target of another form)."""
    batch, n, k = struct.unpack("<3i", chunk)
    return struct.pack("<3i", 1, -1, k) if batch == 1 and n > 0 else None


def _open_input(spec):
    """Input [1, S, S, 3] -> [1, -1, -1, 3], with S kept as `trained_input_size`; the signature,
    where the model states one, says the same (outputs [1, -1, k])."""
    placeholder = next(n for n in spec["modelTopology"]["node"] if n["op"] == "Placeholder")
    dims = placeholder["attr"]["shape"]["shape"]["dim"]
    metadata = spec.setdefault("userDefinedMetadata", {})
    metadata["trained_input_size"] = int(dims[1]["size"])
    for dim in dims[1:3]:
        dim["size"] = "-1"
    for signature in (spec.get("signature"), metadata.get("signature")):
        for tensor in (signature or {}).get("inputs", {}).values():
            for dim in tensor.get("tensorShape", {}).get("dim", [])[1:3]:
                dim["size"] = "-1"
        for tensor in (signature or {}).get("outputs", {}).values():
            for dim in tensor.get("tensorShape", {}).get("dim", [])[1:2]:
                dim["size"] = "-1"


def _float16_if_lossless(chunk, count):
    """`count` little-endian float32 values as float16 bytes, or None when any value would change.
    (struct's "e" format: the site build needs no numpy.)"""
    values = struct.unpack(f"<{count}f", chunk)
    try:
        half = struct.pack(f"<{count}e", *values)
    except (OverflowError, struct.error):
        return None
    widened = struct.unpack(f"<{count}e", half)
    if any(a != b and not (b == 0 and abs(a) < FLUSHED_TO_ZERO) for a, b in zip(values, widened)):
        return None
    return half


def _copy_as_is(model_json, spec, out_dir):
    shutil.copy(model_json, out_dir / model_json.name)
    for group in spec["weightsManifest"]:
        for path in group["paths"]:
            shutil.copy(model_json.parent / path, out_dir / path)
    return False
