"""Convert a trained model folder to a quantized TF.js graph model and measure what ships.

Why a graph model rather than a layers model: the converter folds BatchNorm into the
convolutions and fuses bias + ReLU6, so the browser runs fewer, faster ops, and the page needs
only tfjs-core + tfjs-converter (no tfjs-layers). Keras 3 configs are never involved.

Story: load model.h5 + metadata -> fold the grey-to-RGB copy into the first convolution
(convert/grey_stem.py) -> convert the network in memory with tensorflowjs -> rewrite its graph
into fewer ops (convert/lean_graph.py) -> run the converted graph (de-quantized weights) on
val/test -> write tfjs/, metadata and metrics, swapping the whole model folder at once.
"""
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from common.atomic import atomic_dir, atomic_write_bytes, atomic_write_json, check_replaceable, read_json
from common.metadata import MODEL_MARKER
from common.errors import FacemoodError
from convert.class_bias import fit_class_bias, recorded_bias, with_class_bias
from convert.graph_model import MAX_SMOOTHING, GraphModel, page_input, page_probabilities
from convert.grey_stem import with_grey_stem
from convert.lean_graph import lean_tfjs_dir
from convert.selective_flip import fit_flip_margin
from train.keras_env import keras, tf
from train.metrics import classification_report
from train.train import MODEL_FILE, load_trained, predict

QUANTIZE = {"uint8": "uint8", "uint16": "uint16", "float16": "float16", "none": None}
DEFAULT_QUANTIZE = "uint8"  # a model converted for the first time: a quarter of float32's bytes
# Weights that can stay float16 under 8 or 16-bit quantization, by kind (tensorflowjs' names after it
# folds batch normalization). Folding gives every channel of a depthwise kernel its own scale; in a
# network whose scales differ a hundredfold (MobileNet V1 with face-recognition weights) one 256-step
# range per tensor flattens the small channels. They are a few per cent of the weights.
FLOAT16_KINDS = {"depthwise": ["*/depthwise_weights"], "bias": ["*_bn_offset", "*/BiasAdd/ReadVariableOp"]}
# Below this top-1 agreement with the float network on validation faces, convert says so.
LOW_AGREEMENT = 0.97
TFJS_DIR = "tfjs"


def convert(model_dir, quantize=None, data=None, progress=True, crop_margin=None, test_time_flip=None,
            standardize=None, smoothing=None, min_recall=None, keep_float16=None):
    """Write `model_dir/tfjs/` and the quantized metrics. Returns the updated metadata.

    `crop_margin` replaces the margin recorded at training (how much context the browser adds
    around a detected face); it changes no weight, only what the page is told. `test_time_flip`
    (True/False/"unsure"; None keeps the recorded choice, refitting an unsure margin where `data`
    is given) tells the page to average each face's
    scores with those of its mirror image, with "unsure" only for the faces whose first pass has
    its two best classes closer than a margin fitted on the validation split of `data` with the
    converted graph (convert/selective_flip.py); the quantized metrics are then measured that way too. `standardize`
    (True/False; None keeps the recorded choice) tells the page to bring a crop whose grey level or
    contrast is unusual into the training faces' range first (convert/graph_model.page_input);
    turning it on for a model that does not record that range needs `data`. `smoothing` (a weight
    in 0-1/3; None keeps the recorded choice, 0 removes it) tells the page to soften each crop with
    the kernel (w, 1 - 2w, w) along both axes first (page_input says why). `min_recall` (0-1;
    None keeps the recorded choice, fitted again where `data` is given; 0 removes it) fits a per-class logit bias on the validation
    split of `data` so that every class reaches that recall as the page scores faces
    (convert/class_bias.py), and folds it into the shipped network. `keep_float16` (kinds from
    FLOAT16_KINDS, or layer names; None keeps the recorded choice, [] removes it) keeps those weights
    float16. `quantize` (a key of QUANTIZE; None keeps the recorded choice, uint8 for a model not
    converted before) is the shards' weight type.
    """
    if quantize is not None and quantize not in QUANTIZE:
        raise FacemoodError(f"--quantize must be one of {', '.join(QUANTIZE)}, not {quantize!r}")
    model_dir = Path(model_dir)
    model, metadata = load_trained(model_dir)
    check_replaceable(model_dir, MODEL_MARKER)  # now, not after fitting and converting
    # Earlier choices: the shards' own, or those a resumed training kept (train._keep_page_choices).
    recorded = metadata.get("tfjs") or metadata.get("conversion") or {}
    quantize = quantize or recorded.get("quantize", DEFAULT_QUANTIZE)
    if keep_float16 is None:
        keep_float16 = recorded.get("float16_kinds", [])
    unknown = sorted(set(keep_float16) - set(FLOAT16_KINDS) - _layer_names(model))
    if unknown:
        raise FacemoodError(f"--keep-float16 takes {', '.join(FLOAT16_KINDS)} or the network's layer names "
                            f"(comma-separated), or none; {', '.join(unknown)} is neither")
    metadata["crop"].setdefault("alignment", "none")  # folders trained before the field existed: none was used
    if crop_margin is not None:
        if not 0 <= crop_margin <= 1:
            raise FacemoodError(f"--crop-margin must lie in 0-1, not {crop_margin}")
        metadata["crop"]["margin"] = crop_margin
    if test_time_flip == "unsure" and data is None:
        raise FacemoodError("--test-time-flip unsure needs --data: the margin is fitted on its validation split")
    if min_recall is None and data is not None:
        # A recorded bias was fitted to the scores before this conversion's changes: fitted again.
        min_recall = metadata.get("inference", {}).get("class_bias", {}).get("min_recall")
    if test_time_flip is None and data is not None and "flip_when_unsure" in metadata.get("inference", {}):
        # The recorded margin was fitted to the scores before this conversion's changes (a class
        # bias, smoothing, standardizing): fitted again, with the bias, as when first chosen.
        test_time_flip = "unsure"
    if test_time_flip is not None:
        metadata.setdefault("inference", {})["test_time_flip"] = bool(test_time_flip)
        metadata["inference"].pop("flip_when_unsure", None)
    dataset = load_evaluation_data(data, metadata, progress)
    if standardize is not None:
        _set_standardize(metadata, standardize, dataset)
    if smoothing is not None:
        _set_smoothing(metadata, smoothing)
    if min_recall is not None:
        _set_class_bias(model, metadata, min_recall, dataset, progress)
    shipped_network(model, metadata)
    with atomic_dir(model_dir, marker=MODEL_MARKER) as tmp:
        for item in model_dir.iterdir():  # everything but the old shards carries over (report/ too)
            if item.name == TFJS_DIR:
                continue
            if item.is_dir():
                shutil.copytree(item, tmp / item.name)
            else:
                shutil.copy2(item, tmp / item.name)
        out = tmp / TFJS_DIR
        _say(progress, f"converting {model_dir / MODEL_FILE} to a TF.js graph model ({quantize}) ...")
        _convert_graph(model, metadata, out, quantize, keep_float16, progress)
        if test_time_flip == "unsure":
            _set_flip_margin(GraphModel(out), metadata, dataset, progress)
            raised = _bias_for_flipping_unsure(GraphModel(out), metadata, dataset, progress)
            if raised is not None:  # the graph must carry the bias the page is checked with
                with_class_bias(model, raised)
                shutil.rmtree(out)
                _convert_graph(model, metadata, out, quantize, keep_float16, progress)
        if keep_float16:  # recorded even where nothing is quantized, for the next conversion to keep
            metadata["tfjs"]["float16_kinds"] = sorted(keep_float16)
        metrics = read_json(model_dir / "metrics.json", "metrics") if (model_dir / "metrics.json").exists() else {}
        if dataset is not None:
            _say(progress, "measuring the converted model on the validation and test splits ...")
            quantized, agreement = _evaluate_converted(model, GraphModel(out), dataset, metadata)
            metrics["quantized"] = quantized
            metrics["float_vs_quantized"] = agreement
            metadata.setdefault("metrics", {})["quantized"] = {
                split: {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "count": r["count"]}
                for split, r in quantized.items()}
            metadata["tfjs"]["agreement_with_float"] = agreement
            _warn_if_quantization_hurts(quantize, agreement, keep_float16)
        else:  # figures of the old shards would pass for the new ones
            metadata.get("metrics", {}).pop("quantized", None)
            metrics.pop("quantized", None)
            metrics.pop("float_vs_quantized", None)
            print("note: no --data given and the training data is not known here; quantized accuracy not "
                  "measured (pass --data to measure it)", file=sys.stderr)
        atomic_write_json(tmp / "metadata.json", metadata)
        atomic_write_json(tmp / "metrics.json", metrics)
    return metadata


def _convert_graph(model, metadata, out, quantize, keep_float16, progress):
    """`model` (its bias folded in) as a lean TF.js graph model in `out`, described in metadata."""
    from tensorflowjs.converters import tf_saved_model_conversion_v2

    folded, stem = with_grey_stem(model, metadata)
    dtype_map = _quantization_map(quantize, stem, keep_float16)
    # Straight from the network in memory: the same graph and shards as through an .h5 file and
    # a Keras SavedModel, without serializing every layer (most of a small network's time).
    try:
        tf_saved_model_conversion_v2.convert_keras_model_to_graph_model(
            folded, str(out), quantization_dtype_map=dtype_map, weight_shard_size_bytes=4 * 1024 * 1024)
    except (ValueError, OSError) as e:
        raise FacemoodError(f"TF.js conversion failed: {str(e).splitlines()[0]}") from None
    _name_signature(out, folded)
    removed = lean_tfjs_dir(out)
    _say(progress, f"the graph rewritten with {removed} fewer ops, same outputs (convert/lean_graph.py)")
    metadata["tfjs"] = _describe_shards(out, quantize)
    metadata.pop("conversion", None)  # the choices now live in "tfjs"
    metadata["tfjs"]["ops_removed"] = removed


def _bias_for_flipping_unsure(graph, metadata, dataset, progress):
    """The class bias is fitted with every validation face flipped (the margin that decides which
    faces the page flips is fitted after it, on the graph that carries it). Where, as the page
    scores faces (only the unsure ones flipped), a class falls below the floor, its bias is raised
    until none does: the increase to fold into the network (metadata updated), or None."""
    recorded = metadata.get("inference", {}).get("class_bias")
    if not recorded:
        return None
    part = dataset.split("val")
    x = page_input(part.images[..., None], metadata)
    bias = recorded_bias(metadata)
    # The graph's log-probabilities less the folded bias: the network's own, as the fit takes them.
    passes = [np.log(np.clip(graph(batch), 1e-12, 1)) - bias for batch in (x, x[:, :, ::-1])]
    margin = metadata["inference"]["flip_when_unsure"]["margin"]
    fitted = fit_class_bias(passes, part.labels, recorded["min_recall"], metadata["labels"],
                            start=bias, flip_margin=margin)
    fitted = np.round(fitted, 4)
    if np.array_equal(fitted, np.round(bias, 4)):
        return None
    _say(progress, "raising the class bias: flipping only unsure faces left a class below the floor ...")
    recorded["bias"] = {label: float(b) for label, b in zip(metadata["labels"], fitted)}
    return fitted - bias


def _set_standardize(metadata, on, dataset):
    inference = metadata.setdefault("inference", {})
    if not on:
        inference.pop("standardize", None)
    elif not inference.get("standardize"):
        if dataset is None:
            raise FacemoodError("--standardize on needs --data: this model does not record its training "
                                "faces' grey statistics")
        inference["standardize"] = dataset.grey_statistics()


def _set_smoothing(metadata, weight):
    if not 0 <= weight <= MAX_SMOOTHING:
        raise FacemoodError(f"--smoothing must lie in 0-0.33 (the weight of each neighbour), not {weight}")
    inference = metadata.setdefault("inference", {})
    if weight == 0:
        inference.pop("smoothing", None)
    else:
        inference["smoothing"] = weight


def _set_class_bias(model, metadata, min_recall, dataset, progress):
    """Fit (or with 0 remove) the class bias on the validation split, as the page will score it;
    `model` is the trained network without any bias yet."""
    inference = metadata.setdefault("inference", {})
    if not 0 <= min_recall < 1:
        raise FacemoodError(f"--min-recall must lie in 0-1, not {min_recall}")
    if min_recall == 0:
        inference.pop("class_bias", None)
        return
    if dataset is None:
        raise FacemoodError("--min-recall needs --data: the bias is fitted on its validation split")
    _say(progress, f"fitting a class bias so that every class reaches {min_recall:.0%} recall on the validation split ...")
    part = dataset.split("val")
    x = page_input(part.images[..., None], metadata)
    passes = [x, x[:, :, ::-1]] if inference.get("test_time_flip") else [x]
    log_probs = [np.log(np.clip(predict(model, batch[..., 0]), 1e-12, 1)) for batch in passes]
    bias = fit_class_bias(log_probs, part.labels, min_recall, metadata["labels"])
    inference["class_bias"] = {"min_recall": min_recall, "fitted_on": "val",
                               "bias": {label: round(float(b), 4) for label, b in zip(metadata["labels"], bias)}}


def _set_flip_margin(graph, metadata, dataset, progress):
    """Fit the margin below which the page also runs a face's mirror image (convert/selective_flip.py)
    on the validation split, with `graph` the converted network the page runs."""
    _say(progress, "fitting which faces are worth their mirror image on the validation split ...")
    part = dataset.split("val")
    x = page_input(part.images[..., None], metadata)
    margin, share = fit_flip_margin(graph(x), graph(x[:, :, ::-1]), part.labels)
    metadata["inference"]["flip_when_unsure"] = {"margin": margin, "fitted_on": "val",
                                                 "share_flipped": round(share, 4)}


def shipped_network(model, metadata):
    """The trained Keras model with the class bias metadata.json records folded in (in place):
    the float network the shipped graph is converted from and compared with."""
    bias = recorded_bias(metadata)
    return model if bias is None else with_class_bias(model, bias)


def load_evaluation_data(data, metadata, progress):
    """The data set the model was trained on, split the same way, or None when `data` is None.

    Refuses other data: its validation and test images would not be held out from training.
    """
    if data is None:
        return None
    from train.data import load_dataset

    seed = metadata["training"]["config"]["seed"]
    dataset = load_dataset(data, image_size=metadata["input"]["size"], seed=seed, progress=progress)
    recorded = metadata["training"]["data"]["sha256"]
    if not dataset.is_named_by(recorded):
        raise FacemoodError(f"{data}: not the data this model was trained on (sha256 {dataset.sha256[:12]}... "
                            f"!= {recorded[:12]}...); its val/test split would not be held out")
    if dataset.labels != metadata["labels"]:
        raise FacemoodError(f"{data}: classes {dataset.labels} differ from the model's {metadata['labels']}")
    return dataset


def _evaluate_converted(model, graph, dataset, metadata):
    """The converted model as the page runs it (test-time flipping included) against the float one."""
    labels = metadata["labels"]
    reports, agreement = {}, {}
    for split in ("val", "test"):
        part = dataset.split(split)
        if not len(part):
            continue
        x = part.images[..., None]
        float_probs = page_probabilities(lambda batch: predict(model, batch[..., 0]), x, metadata)
        quant_probs = page_probabilities(graph, x, metadata)
        reports[split] = classification_report(quant_probs, part.labels, labels)
        agreement[split] = {
            "top1_agreement": round(float((float_probs.argmax(1) == quant_probs.argmax(1)).mean()), 4),
            "max_abs_probability_difference": round(float(np.abs(float_probs - quant_probs).max()), 4),
        }
    return reports, agreement


def _name_signature(tfjs_dir, network):
    """model.json's signature keyed by the network's input and output layer names ("face",
    "scores"), as a SavedModel's would be, not by tensor names ("face:0", "Identity:0")."""
    path = Path(tfjs_dir) / "model.json"
    spec = read_json(path, "TF.js model")
    signature = spec["signature"]
    for key, layers in (("inputs", network.input_names), ("outputs", network.output_names)):
        (entry,) = signature[key].values()
        signature[key] = {layers[0]: entry}
    atomic_write_bytes(path, json.dumps(spec).encode())  # compact, as tensorflowjs writes it


def _quantization_map(quantize, stem, keep_float16=()):
    """tensorflowjs' per-weight dtypes: `quantize` for all, except that a folded first convolution
    and the kinds in `keep_float16` stay float16 under 8 or 16-bit quantization. The first
    convolution's kernel, summed over three channels, spans about three times the range with the
    same 256 steps; 144 weights, ~150 bytes more."""
    dtype = QUANTIZE[quantize]
    if dtype is None:
        return None
    kept = ([f"*/{stem}/*"] if stem else []) + [
        p for item in sorted(keep_float16) for p in FLOAT16_KINDS.get(item, [f"*/{item}/*"])]
    if not kept or dtype == "float16":
        return {dtype: True}
    return {dtype: True, "float16": kept}


def _layer_names(model):
    names = set()
    for layer in model.layers:
        names.add(layer.name)
        if isinstance(layer, keras.Model):
            names |= _layer_names(layer)
    return names


def _warn_if_quantization_hurts(quantize, agreement, keep_float16):
    share = agreement.get("val", {}).get("top1_agreement")
    if quantize in ("none", "float16") or share is None or share >= LOW_AGREEMENT:
        return
    hint = ("" if set(keep_float16) == set(FLOAT16_KINDS)
            else f"; --keep-float16 {','.join(FLOAT16_KINDS)} keeps the weights {quantize} flattens most at float16")
    print(f"warning: the {quantize} graph agrees with the float network on only {share:.1%} of validation "
          f"faces{hint}", file=sys.stderr)


def _describe_shards(out, quantize):
    """Files of the graph model with sizes and SHA-256, for the site's integrity manifest."""
    files = {}
    for path in sorted(out.iterdir()):
        data = path.read_bytes()
        files[path.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    weight_bytes = sum(f["bytes"] for name, f in files.items() if name.endswith(".bin"))
    return {"format": "graph-model", "quantize": quantize, "files": files, "weight_bytes": weight_bytes,
            "tensorflow": tf.__version__}


def _say(progress, message):
    if progress:
        print(message, file=sys.stderr, flush=True)
