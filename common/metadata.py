"""The model's metadata.json: the one description of what the model expects, read by every step."""
import hashlib
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
    if len(set(labels)) != len(labels):
        raise FacemoodError(f"{where}: metadata.json lists a label twice")
    # What every step reads: a damaged description is told here, not by a KeyError deep in one step.
    for key, field, kinds in (("architecture", "backbone", str), ("input", "size", int), ("crop", "margin", (int, float))):
        part = metadata.get(key)
        if not isinstance(part, dict) or not isinstance(part.get(field), kinds) or isinstance(part.get(field), bool):
            raise FacemoodError(f"{where}: metadata.json has no valid {key}.{field}")
    # The training record: its settings (seed) and data (name, hash, class counts) are read when
    # converting, evaluating, resuming and on the model card.
    for path, kinds in (("training.config", dict), ("training.data.name", str), ("training.data.sha256", str),
                        ("training.data.counts.train", dict)):
        if not isinstance(_part(metadata, path), kinds):
            raise FacemoodError(f"{where}: metadata.json has no valid {path}")


def _part(metadata, path):
    """metadata["a"]["b"] for "a.b", None where a part is missing or not a dictionary."""
    for key in path.split("."):
        metadata = metadata.get(key) if isinstance(metadata, dict) else None
    return metadata


def check_converted(tfjs_dir, metadata):
    """Refuse a converted model whose files are missing or differ from what conversion recorded."""
    tfjs_dir = Path(tfjs_dir)
    converted = metadata.get("tfjs")
    if not (tfjs_dir / "model.json").is_file() or not isinstance(converted, dict) \
            or not isinstance(converted.get("files"), dict):
        raise FacemoodError(f"{tfjs_dir}: no converted model; run `build.py convert` first")
    for name, expected in converted["files"].items():
        path = tfjs_dir / name
        if not path.is_file():
            raise FacemoodError(f"{path}: model file missing; run `build.py convert` again")
        if hashlib.sha256(path.read_bytes()).hexdigest() != expected.get("sha256"):
            raise FacemoodError(f"{path}: does not match the SHA-256 recorded at conversion; run `build.py convert` again")


def as_the_page_runs_it(metadata):
    """A converted model as the page runs it: its shards' recorded hashes and how the page prepares
    and scores faces. An evaluation records it, so that one of another conversion is told apart."""
    return {"files": metadata["tfjs"]["files"], "inference": metadata.get("inference", {})}


def kept_float16(tfjs):
    """The weights kept float16 in these shards (metadata's "tfjs"): the recorded choice, where the
    rest is quantized."""
    return tfjs.get("float16_kinds", []) if tfjs.get("quantize") in ("uint8", "uint16") else []


def weights_kind(tfjs):
    """How the shards store their weights, in words: "uint8", or "uint8, depthwise kept float16"."""
    kept = kept_float16(tfjs)
    return tfjs["quantize"] + (f", {', '.join(kept)} kept float16" if kept else "")
