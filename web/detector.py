"""The face detector as the site ships it: BlazeFace's float32 weights stored as float16.

TF.js reads float16-quantized weights natively (`"quantization": {"dtype": "float16"}` in the
manifest) and widens them back to float32 on load, so the network runs exactly as before while its
shard is half the size. The vendored weights are float16 values already (they were converted from a
float16 model), so the conversion is checked to be lossless; a detector whose weights would change
is copied as it is instead.
"""
import json
import math
import shutil
import struct
from pathlib import Path

# Largest weight change accepted: float16 flushes float32 denormals (< 6e-8) to zero, nothing more.
LOSSLESS_TOLERANCE = 1e-7


def write_detector(model_json, out_dir):
    """Write `model_json` and its shard into `out_dir`, float32 weights as float16 when lossless.
    Returns True when the float16 version was written."""
    model_json, out_dir = Path(model_json), Path(out_dir)
    spec = json.loads(model_json.read_text())
    groups = spec["weightsManifest"]
    if len(groups) != 1 or len(groups[0]["paths"]) != 1:
        return _copy_as_is(model_json, spec, out_dir)
    shard = model_json.parent / groups[0]["paths"][0]
    data = shard.read_bytes()
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
        parts.append(chunk)
    if offset != len(data):
        return _copy_as_is(model_json, spec, out_dir)
    (out_dir / model_json.name).write_text(json.dumps(spec, separators=(",", ":")))
    (out_dir / shard.name).write_bytes(b"".join(parts))
    return True


def _float16_if_lossless(chunk, count):
    """`count` little-endian float32 values as float16 bytes, or None when any value would change.
    (struct's "e" format: the site build needs no numpy.)"""
    values = struct.unpack(f"<{count}f", chunk)
    try:
        half = struct.pack(f"<{count}e", *values)
    except (OverflowError, struct.error):
        return None
    widened = struct.unpack(f"<{count}e", half)
    if any(abs(a - b) > LOSSLESS_TOLERANCE for a, b in zip(values, widened)):
        return None
    return half


def _copy_as_is(model_json, spec, out_dir):
    shutil.copy2(model_json, out_dir / model_json.name)
    for group in spec["weightsManifest"]:
        for path in group["paths"]:
            shutil.copy2(model_json.parent / path, out_dir / path)
    return False
