"""The model's metadata.json: the one description of what the model expects, read by every step."""
from pathlib import Path

from common.atomic import Marker, read_json
from common.errors import FacemoodError

FORMAT = "facemood-model"
VERSION = 1
# How a model folder is recognised before it is replaced: another tool's metadata.json is not one.
MODEL_MARKER = Marker("metadata.json", f'"format": "{FORMAT}"')


def load_metadata(model_dir):
    """Read and check `model_dir/metadata.json`."""
    model_dir = Path(model_dir)
    metadata = read_json(model_dir / "metadata.json", "model metadata")
    check_metadata(metadata, model_dir)
    return metadata


def check_metadata(metadata, where):
    """Refuse metadata written by another tool or an incompatible version of this one."""
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise FacemoodError(f"{where}: metadata.json is not a facemood model description")
    if metadata.get("format_version") != VERSION:
        raise FacemoodError(f"{where}: metadata format version {metadata.get('format_version')} is not supported "
                            f"(expected {VERSION}); retrain with this version")
    labels = metadata.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise FacemoodError(f"{where}: metadata.json must list at least 2 string labels")


def kept_float16(tfjs):
    """The weights kept float16 in these shards (metadata's "tfjs"): the recorded choice, where the
    rest is quantized."""
    return tfjs.get("float16_kinds", []) if tfjs.get("quantize") in ("uint8", "uint16") else []


def weights_kind(tfjs):
    """How the shards store their weights, in words: "uint8", or "uint8, depthwise kept float16"."""
    kept = kept_float16(tfjs)
    return tfjs["quantize"] + (f", {', '.join(kept)} kept float16" if kept else "")
